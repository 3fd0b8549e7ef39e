package warehouse

import (
	"fmt"
	"math"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
)

// DefaultMemoryLimit is what one DuckDB may hold in memory before it spills
// to its temporary folder, far below what DuckDB takes by default (80% of the
// machine's memory). The transform sizes its mapping and its sorts to the
// limit; a month-end hour (some 130,000 documents with 500,000 items) fits
// 128MB, its decisions not 96MB, and the transform's process peaks under
// 300MB.
const DefaultMemoryLimit = "128MB"

// Limits bound what each DuckDB takes of the machine. They are the process's:
// every database Open makes (transform, query, the re-check of rejects) gets
// them, so no caller can forget them.
type Limits struct {
	// MemoryLimit is DuckDB's memory_limit, e.g. "256MB" or "1GiB"; "" means
	// DefaultMemoryLimit. Past it DuckDB spills what it can to TempDir.
	MemoryLimit string
	// TempDir is the folder in which each database makes its own spill
	// folder, removed when the database closes; "" means the system's
	// temporary folder.
	TempDir string
	// Threads is DuckDB's worker threads; 0 means GOMAXPROCS, the CPUs the
	// process may use (a container's CPU limit included, which DuckDB itself
	// does not read).
	Threads int
}

// memorySize is what DuckDB's memory_limit accepts: a number and a unit.
var memorySize = regexp.MustCompile(`^(?i)[0-9]+(\.[0-9]+)?\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)$`)

// units are the bytes of each unit memory_limit accepts: DuckDB reads KB,
// MB, GB and TB as powers of 1000 and KiB, MiB, GiB and TiB as powers of 1024.
var units = map[string]float64{"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
	"KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40}

// MemoryBytes is MemoryLimit in bytes (DefaultMemoryLimit's when it is ""),
// for callers that size their work to it; 0 when the limit does not parse.
func (l Limits) MemoryBytes() int64 {
	limit := l.MemoryLimit
	if limit == "" {
		limit = DefaultMemoryLimit
	}
	m := memorySize.FindStringSubmatch(limit)
	if m == nil {
		return 0
	}
	unit := strings.ToUpper(m[2])
	n, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.ToUpper(limit), unit)), 64)
	if err != nil {
		return 0
	}
	return int64(math.Round(n * units[unit]))
}

// Check refuses limits DuckDB would refuse or that cannot work, saying what
// each setting accepts.
func (l Limits) Check() error {
	if l.MemoryLimit != "" && !memorySize.MatchString(l.MemoryLimit) {
		return &LimitError{Setting: "MemoryLimit", Value: l.MemoryLimit, Want: "a size such as 256MB, 1GB or 512MiB"}
	}
	if l.TempDir != "" {
		if fi, err := os.Stat(l.TempDir); err != nil || !fi.IsDir() {
			return &LimitError{Setting: "TempDir", Value: l.TempDir, Want: "an existing folder"}
		}
	}
	if l.Threads < 0 || l.Threads > 1024 {
		return &LimitError{Setting: "Threads", Value: fmt.Sprint(l.Threads), Want: "0 (the CPUs the process may use) to 1024"}
	}
	return nil
}

// LimitError is a Limits setting that cannot be used.
type LimitError struct {
	Setting, Value, Want string
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("duckdb %s %q: want %s", e.Setting, e.Value, e.Want)
}

var (
	limitsMu sync.Mutex
	limits   Limits
)

// SetLimits sets the limits of every database opened from now on.
func SetLimits(l Limits) error {
	if err := l.Check(); err != nil {
		return err
	}
	limitsMu.Lock()
	defer limitsMu.Unlock()
	limits = l
	return nil
}

// CurrentLimits returns the limits Open applies, defaults filled in.
func CurrentLimits() Limits {
	limitsMu.Lock()
	l := limits
	limitsMu.Unlock()
	if l.MemoryLimit == "" {
		l.MemoryLimit = DefaultMemoryLimit
	}
	if l.TempDir == "" {
		l.TempDir = os.TempDir()
	}
	if l.Threads == 0 {
		l.Threads = runtime.GOMAXPROCS(0)
	}
	return l
}
