package transform

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	mapping "github.com/zuora-erp-etl/zuora-erp-etl/sql"
)

// mappingFile is one SQL or CSV file of the mapping in use.
type mappingFile struct {
	Name   string
	Data   []byte
	Source string // "embedded" or the path it was read from
}

// loadMapping returns the embedded mapping files with those of dir (if any)
// replacing or adding to them, sorted by name, and the sha256 of the set.
func loadMapping(dir string) ([]mappingFile, string, error) {
	files := map[string]mappingFile{}
	entries, err := fs.ReadDir(mapping.Files, ".")
	if err != nil {
		return nil, "", fmt.Errorf("read embedded mapping: %w", err)
	}
	for _, e := range entries {
		data, err := fs.ReadFile(mapping.Files, e.Name())
		if err != nil {
			return nil, "", fmt.Errorf("read embedded mapping: %w", err)
		}
		files[e.Name()] = mappingFile{Name: e.Name(), Data: data, Source: "embedded"}
	}
	if dir != "" {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, "", fmt.Errorf("read mapping folder: %w", err)
		}
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() || !(strings.HasSuffix(name, ".sql") || strings.HasSuffix(name, ".csv")) {
				continue
			}
			path := filepath.Join(dir, name)
			data, err := os.ReadFile(path)
			if err != nil {
				return nil, "", fmt.Errorf("read mapping folder: %w", err)
			}
			files[name] = mappingFile{Name: name, Data: data, Source: path}
		}
	}
	out := make([]mappingFile, 0, len(files))
	for _, f := range files {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	h := sha256.New()
	for _, f := range out {
		fmt.Fprintf(h, "%s\x00%d\x00", f.Name, len(f.Data))
		h.Write(f.Data)
	}
	return out, hex.EncodeToString(h.Sum(nil)), nil
}

// tableName turns a CSV file name into the table the mapping SQL joins.
func tableName(csvName string) string {
	return strings.TrimSuffix(csvName, ".csv")
}

// MappingDigest returns the sha256 of the mapping files a transform with this
// SQLDir would use, as recorded in TransformManifest.SQLDigest. A window whose
// digest differs was mapped with other SQL or CSV files.
func MappingDigest(sqlDir string) (string, error) {
	_, digest, err := loadMapping(sqlDir)
	return digest, err
}
