// Package audits holds the saved audit queries that query --saved runs by
// name: one DuckDB SQL file each, over the views of every committed window
// (docs/design.md "Query"), embedded so the binary runs without them on disk.
// The first line of each file, a comment, says what it finds.
package audits

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

//go:embed *.sql
var files embed.FS

// Audit is one saved query.
type Audit struct {
	Name        string // the file name without .sql
	Description string // its first comment line
	SQL         string
	File        string // where it came from: the built-in set or a folder
}

// List returns the saved audits by name: the built-in ones, replaced or
// joined by the .sql files of dir when it is not empty.
func List(dir string) ([]Audit, error) {
	byName := map[string]Audit{}
	builtin, err := fs.Glob(files, "*.sql")
	if err != nil {
		return nil, err
	}
	for _, f := range builtin {
		data, err := files.ReadFile(f)
		if err != nil {
			return nil, err
		}
		a := parse(f, string(data))
		a.File = "built-in " + f
		byName[a.Name] = a
	}
	if dir != "" {
		own, err := filepath.Glob(filepath.Join(dir, "*.sql"))
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("audits folder: %w", err)
		}
		for _, f := range own {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("audit %s: %w", f, err)
			}
			a := parse(filepath.Base(f), string(data))
			a.File = f
			byName[a.Name] = a
		}
	}
	out := make([]Audit, 0, len(byName))
	for _, a := range byName {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b Audit) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Find returns the saved audit called name.
func Find(dir, name string) (Audit, bool, error) {
	all, err := List(dir)
	if err != nil {
		return Audit{}, false, err
	}
	for _, a := range all {
		if a.Name == name {
			return a, true, nil
		}
	}
	return Audit{}, false, nil
}

func parse(file, sql string) Audit {
	a := Audit{Name: strings.TrimSuffix(file, ".sql"), SQL: sql}
	first, _, _ := strings.Cut(strings.TrimSpace(sql), "\n")
	if d, ok := strings.CutPrefix(first, "--"); ok {
		a.Description = strings.TrimSpace(d)
	}
	return a
}
