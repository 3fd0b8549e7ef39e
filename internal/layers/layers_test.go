package layers

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestTheModuleKeepsItsLayers runs the rules over every package of the module.
func TestTheModuleKeepsItsLayers(t *testing.T) {
	pkgs := list(t)
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages; want the whole module", len(pkgs))
	}
	for _, v := range Violations(pkgs) {
		t.Error(v)
	}
}

// TestEveryRuleCatchesItsViolation: each rule fires on a module that breaks it.
func TestEveryRuleCatchesItsViolation(t *testing.T) {
	bad := []Package{
		{ImportPath: module + "load", Deps: []string{module + "stage", module + "extract"}},
		{ImportPath: module + "transform", Imports: []string{"gocloud.dev/blob/fileblob"}},
		{ImportPath: module + "internal/pipeline", Imports: []string{"github.com/duckdb/duckdb-go/v2"}},
		{ImportPath: module + "extract", HTTPClient: true},
		{ImportPath: module + "stage", Imports: []string{"gocloud.dev/blob"}, Deps: []string{module + "internal/money"}},
	}
	got := strings.Join(Violations(bad), "\n")
	for _, want := range []string{"stage load imports stage extract", "transform imports gocloud.dev/blob/fileblob",
		"internal/pipeline imports github.com/duckdb/duckdb-go/v2", "extract builds HTTP requests"} {
		if !strings.Contains(got, want) {
			t.Errorf("the rules miss %q; they say:\n%s", want, got)
		}
	}
	if strings.Contains(got, "stage imports") {
		t.Errorf("the rules refuse what stage may import:\n%s", got)
	}
}

// list reads every package of the module with go list, and whether its
// non-test files build HTTP requests or clients.
func list(t *testing.T) []Package {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Dir,GoFiles,Imports,Deps", "./...")
	cmd.Dir = filepath.Join("..", "..")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, stderr.String())
	}
	var pkgs []Package
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p struct {
			Package
			Dir     string
			GoFiles []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		for _, f := range p.GoFiles {
			if buildsHTTP(t, filepath.Join(p.Dir, f)) {
				p.HTTPClient = true
			}
		}
		pkgs = append(pkgs, p.Package)
	}
	return pkgs
}

// httpClientNames are the net/http names that make or send a request.
var httpClientNames = map[string]bool{"NewRequest": true, "NewRequestWithContext": true, "Get": true, "Head": true,
	"Post": true, "PostForm": true, "Client": true, "DefaultClient": true, "Transport": true, "DefaultTransport": true}

// buildsHTTP reports whether the file uses one of httpClientNames of net/http.
func buildsHTTP(t *testing.T, path string) bool {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	name := ""
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == "net/http" {
			name = "http"
			if imp.Name != nil {
				name = imp.Name.Name
			}
		}
	}
	if name == "" {
		return false
	}
	found := false
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == name && httpClientNames[sel.Sel.Name] {
				found = true
			}
		}
		return !found
	})
	return found
}
