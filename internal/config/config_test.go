package config

import (
	"errors"
	"slices"
	"testing"
)

func known(k string) bool { return k == "stage" || k == "doc-types" || k == "breaker" }

func TestParse(t *testing.T) {
	f, err := Parse("c.yaml", []byte("# settings\nstage: mem://x\ndoc-types: [invoice, payment]\nbreaker: 3\n"), known)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := f.Lookup("stage"); !ok || v.Line != 2 || !slices.Equal(v.Items, []string{"mem://x"}) || v.List {
		t.Errorf("stage: %+v", v)
	}
	if v, _ := f.Lookup("doc-types"); !v.List || !slices.Equal(v.Items, []string{"invoice", "payment"}) {
		t.Errorf("doc-types: %+v", v)
	}
	if v, _ := f.Lookup("breaker"); v.Items[0] != "3" {
		t.Errorf("breaker: %+v", v)
	}
	for _, empty := range []string{"", "# only comments\n", "\n\n"} {
		if f, err := Parse("c.yaml", []byte(empty), known); err != nil || len(f.Values) != 0 {
			t.Errorf("%q: %v %v", empty, f, err)
		}
	}
}

func TestParseRefusals(t *testing.T) {
	var unknown *UnknownKeyError
	if _, err := Parse("c.yaml", []byte("stage: x\nstaeg: y\n"), known); !errors.As(err, &unknown) || unknown.Key != "staeg" || unknown.Line != 2 {
		t.Errorf("unknown key: %v", err)
	}
	for _, bad := range []string{"stage: {a: 1}\n", "- stage\n", "stage: x\nstage: y\n", "stage: [a, {b: 1}]\n", "stage: x\n---\nbreaker: 1\n", "stage: [unclosed\n"} {
		if _, err := Parse("c.yaml", []byte(bad), known); !IsFileError(err) {
			t.Errorf("%q: %v; want a file error", bad, err)
		}
	}
}
