// Package config reads the tool's configuration file: YAML whose keys are the
// long flag names and whose values are what those flags would be given, so
// that a file, the environment and the command line say the same things.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"go.yaml.in/yaml/v3"
)

// File is a parsed configuration file.
type File struct {
	Path   string
	Values []Value // in the order of the file
}

// Value is one setting of the file: a scalar, or a list for a setting that
// takes several values.
type Value struct {
	Key   string
	Line  int
	Items []string // one item for a scalar
	List  bool     // written as a YAML sequence
}

// Lookup returns the value of key, if the file sets it.
func (f *File) Lookup(key string) (Value, bool) {
	if f == nil {
		return Value{}, false
	}
	for _, v := range f.Values {
		if v.Key == key {
			return v, true
		}
	}
	return Value{}, false
}

// UnknownKeyError is a key that names no setting.
type UnknownKeyError struct {
	Path string
	Line int
	Key  string
}

func (e *UnknownKeyError) Error() string {
	return fmt.Sprintf("%s:%d: %q is not a setting (the keys are the long flag names, such as stage or zuora-base-url)", e.Path, e.Line, e.Key)
}

// SyntaxError is a file that is not the YAML mapping of settings it must be.
type SyntaxError struct {
	Path string
	Line int // 0 when unknown
	Msg  string
}

func (e *SyntaxError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Path, e.Msg)
}

// Load reads and parses the file at path; known says which keys are settings.
func Load(path string, known func(key string) bool) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the configuration file: %w", err)
	}
	return Parse(path, data, known)
}

// Parse parses a configuration file's content. Every key must be known; a
// value is a scalar or a list of scalars, never a mapping.
func Parse(path string, data []byte, known func(key string) bool) (*File, error) {
	f := &File{Path: path}
	if len(bytes.TrimSpace(data)) == 0 {
		return f, nil
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return f, nil // comments only
	} else if err != nil {
		return nil, &SyntaxError{Path: path, Msg: err.Error()}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &SyntaxError{Path: path, Line: extra.Line, Msg: "holds a second YAML document; want one mapping of settings"}
	}
	if len(doc.Content) == 0 {
		return f, nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return f, nil // only comments
	}
	if root.Kind != yaml.MappingNode {
		return nil, &SyntaxError{Path: path, Line: root.Line, Msg: "want a mapping of settings (key: value), one per line"}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, &SyntaxError{Path: path, Line: k.Line, Msg: "a key must be a setting's name"}
		}
		if !known(k.Value) {
			return nil, &UnknownKeyError{Path: path, Line: k.Line, Key: k.Value}
		}
		if seen[k.Value] {
			return nil, &SyntaxError{Path: path, Line: k.Line, Msg: fmt.Sprintf("%q is set twice", k.Value)}
		}
		seen[k.Value] = true
		val, err := value(path, k.Value, v)
		if err != nil {
			return nil, err
		}
		f.Values = append(f.Values, val)
	}
	return f, nil
}

// value reads one setting's node.
func value(path, key string, n *yaml.Node) (Value, error) {
	v := Value{Key: key, Line: n.Line}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			v.Items = []string{""}
		} else {
			v.Items = []string{n.Value}
		}
	case yaml.SequenceNode:
		v.List = true
		for _, item := range n.Content {
			if item.Kind != yaml.ScalarNode {
				return Value{}, &SyntaxError{Path: path, Line: item.Line, Msg: fmt.Sprintf("%s: a list holds plain values only", key)}
			}
			v.Items = append(v.Items, item.Value)
		}
	case yaml.AliasNode:
		return Value{}, &SyntaxError{Path: path, Line: n.Line, Msg: fmt.Sprintf("%s: aliases are not supported; write the value", key)}
	default:
		return Value{}, &SyntaxError{Path: path, Line: n.Line, Msg: fmt.Sprintf("%s: want a value or a list of values, not a mapping", key)}
	}
	return v, nil
}

// IsFileError reports whether err is a configuration file that cannot be used as written.
func IsFileError(err error) bool {
	var u *UnknownKeyError
	var s *SyntaxError
	return errors.As(err, &u) || errors.As(err, &s)
}
