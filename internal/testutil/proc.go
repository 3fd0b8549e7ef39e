package testutil

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// RowGroups writes a Parquet file at path of n row groups, group g holding
// rows(g): a file whose metadata grows with n, as the extract's tables of a
// large window (a row group per 256KB).
func RowGroups[T any](t testing.TB, path string, n int, rows func(g int) []T) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := parquet.NewGenericWriter[T](f)
	for g := range n {
		if _, err := w.Write(rows(g)); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// ProcStatusKB is a field of /proc/self/status (VmRSS, VmHWM) in KB.
func ProcStatusKB(t testing.TB, field string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}
