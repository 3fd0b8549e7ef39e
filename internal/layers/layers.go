// Package layers holds the import rules of docs/design.md as code, checked
// by its test against `go list`: stages never import each other, one package
// imports each heavy dependency, and only the two clients speak HTTP.
package layers

import (
	"fmt"
	"slices"
	"strings"
)

const module = "github.com/zuora-erp-etl/zuora-erp-etl/"

// Package is what the rules read of one package (from go list, tests left out).
type Package struct {
	ImportPath string
	Imports    []string // direct
	Deps       []string // transitive
	// HTTPClient is true when its code builds requests or clients of net/http.
	HTTPClient bool
}

// stages are the packages that never import one another.
var stages = []string{module + "extract", module + "transform", module + "load"}

// owners names, per dependency (an import path and what starts with it), the
// only packages that import it.
var owners = map[string][]string{
	"gocloud.dev/blob":                     {module + "stage", module + "internal/s3test"},
	"gocloud.dev/gcerrors":                 {module + "stage"},
	"github.com/duckdb/duckdb-go":          {module + "internal/warehouse"},
	"github.com/duckdb/duckdb-go-bindings": {module + "internal/warehouse"},
	"github.com/prometheus/client_golang":  {module + "internal/metrics"},
	"go.yaml.in/yaml":                      {module + "internal/config"},
	"github.com/bytedance/sonic":           {module + "internal/fastjson"},
	// Terminal handling lives in the command: the library packages report
	// progress through an interface (pipeline.Progress).
	"github.com/vbauerster/mpb": {module + "cmd/zuora-erp-etl"},
	"golang.org/x/term":         {module + "cmd/zuora-erp-etl"},
}

// httpSpeakers may build HTTP requests and clients: the two clients, the
// simulators and the in-process S3 server.
var httpSpeakers = []string{module + "internal/zuora", module + "internal/erp",
	module + "internal/zuorasim", module + "internal/erpsim", module + "internal/s3test"}

// Violations returns every rule the packages break, one sentence each.
func Violations(pkgs []Package) []string {
	var out []string
	for _, p := range pkgs {
		if slices.Contains(stages, p.ImportPath) {
			for _, d := range p.Deps {
				if d != p.ImportPath && slices.Contains(stages, d) {
					out = append(out, fmt.Sprintf("stage %s imports stage %s", short(p.ImportPath), short(d)))
				}
			}
		}
		for _, imp := range p.Imports {
			for dep, allowed := range owners {
				if (imp == dep || strings.HasPrefix(imp, dep+"/")) && !slices.Contains(allowed, p.ImportPath) {
					out = append(out, fmt.Sprintf("%s imports %s, which only %s may import", short(p.ImportPath), imp, shortAll(allowed)))
				}
			}
		}
		if p.HTTPClient && !slices.Contains(httpSpeakers, p.ImportPath) {
			out = append(out, fmt.Sprintf("%s builds HTTP requests or clients; only %s speak HTTP", short(p.ImportPath), shortAll(httpSpeakers[:2])))
		}
	}
	slices.Sort(out)
	return out
}

func short(path string) string { return strings.TrimPrefix(path, module) }

func shortAll(paths []string) string {
	s := make([]string, len(paths))
	for i, p := range paths {
		s[i] = short(p)
	}
	return strings.Join(s, " and ")
}
