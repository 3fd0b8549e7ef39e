package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version overrides the module version when set at build time with
// -ldflags "-X main.version=…".
var version = ""

// buildVersion is the module version and VCS revision the binary was built
// from, as its build info says: "v1.2.3", "(devel)+0123456789ab", with
// "-dirty" when the tree had changes. Every manifest records it.
func buildVersion() (module, revision string, dirty bool) {
	module = version
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		if module == "" {
			module = "(unknown)"
		}
		return module, "", false
	}
	if module == "" {
		module = bi.Main.Version
	}
	if module == "" {
		module = "(devel)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	return module, revision, dirty
}

// codeVersion names the code that wrote a manifest: the module version, and
// the revision when the build info has one.
func codeVersion() string {
	module, rev, dirty := buildVersion()
	v := module
	if len(rev) >= 12 {
		v += "+" + rev[:12]
	}
	if dirty {
		v += "-dirty"
	}
	return v
}

func cmdVersion(_ context.Context, args []string, e *env) int {
	fs := newFlagSet("version", "version\n\nPrints the module version and VCS revision the binary was built from (its build info), as every manifest records it.")
	if code, ok := parse(fs, args, e); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "zuora-erp-etl version: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	module, rev, dirty := buildVersion()
	fmt.Fprintf(e.stdout, "zuora-erp-etl %s\n", codeVersion())
	fmt.Fprintf(e.stdout, "module:   %s\n", module)
	if rev == "" {
		rev = "(not recorded: built without VCS information)"
	}
	fmt.Fprintf(e.stdout, "revision: %s\n", rev)
	fmt.Fprintf(e.stdout, "modified: %t\n", dirty)
	fmt.Fprintf(e.stdout, "go:       %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}
