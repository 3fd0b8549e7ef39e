package main

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/warehouse"
)

// duckdbFlags bound the DuckDB a command opens (the transform, the re-check
// of rejects, query): its memory, its spill folder and its threads.
type duckdbFlags struct {
	memoryLimit, tempDir string
	threads              string // parsed by checkDuckDB, so a bad environment value is a one-line error
	limits               warehouse.Limits
}

// duckdbEnv is the environment variable of each DuckDB flag.
var duckdbEnv = map[string]string{
	"duckdb-memory-limit": "ETL_DUCKDB_MEMORY_LIMIT",
	"duckdb-temp-dir":     "ETL_DUCKDB_TEMP_DIR",
	"duckdb-threads":      "ETL_DUCKDB_THREADS",
}

func init() {
	for flag, env := range duckdbEnv {
		flagEnv[flag] = env
	}
}

// opensDuckDB reports whether a command with these groups of settings opens DuckDB.
func opensDuckDB(name string, takes int) bool {
	return takes&takesMapping != 0 || name == "query"
}

// registerDuckDB adds the DuckDB flags to the commands that open it.
func (s *settings) registerDuckDB(e *env, takes int) {
	if !opensDuckDB(s.name, takes) {
		return
	}
	d, fs := &s.duckdb, s.fs
	def := func(flag, fallback string) string {
		if v := e.getenv(duckdbEnv[flag]); v != "" {
			return v
		}
		return fallback
	}
	fs.StringVar(&d.memoryLimit, "duckdb-memory-limit", def("duckdb-memory-limit", warehouse.DefaultMemoryLimit),
		"memory DuckDB may hold before it spills to its temporary folder, e.g. 256MB or 1GB (env ETL_DUCKDB_MEMORY_LIMIT)")
	fs.StringVar(&d.tempDir, "duckdb-temp-dir", def("duckdb-temp-dir", ""),
		"existing `folder` in which DuckDB spills, in a folder of its own removed when done (default: the system's temporary folder; env ETL_DUCKDB_TEMP_DIR)")
	fs.StringVar(&d.threads, "duckdb-threads", def("duckdb-threads", "0"),
		"DuckDB's worker threads; 0: the CPUs this process may use (env ETL_DUCKDB_THREADS)")
}

// checkDuckDB refuses DuckDB settings it cannot use, naming the flag.
func (s *settings) checkDuckDB() error {
	if s.fs.Lookup("duckdb-memory-limit") == nil {
		return nil
	}
	d := &s.duckdb
	threads, err := strconv.Atoi(d.threads)
	if err != nil {
		return &pipeline.ConfigError{Msg: fmt.Sprintf("--duckdb-threads %q: want a number of threads, 0 for the CPUs this process may use", d.threads)}
	}
	d.limits = warehouse.Limits{MemoryLimit: d.memoryLimit, TempDir: d.tempDir, Threads: threads}
	var le *warehouse.LimitError
	if err := d.limits.Check(); errors.As(err, &le) {
		flag := map[string]string{"MemoryLimit": "duckdb-memory-limit", "TempDir": "duckdb-temp-dir", "Threads": "duckdb-threads"}[le.Setting]
		return &pipeline.ConfigError{Msg: fmt.Sprintf("--%s %q: want %s", flag, le.Value, le.Want)}
	} else if err != nil {
		return &pipeline.ConfigError{Msg: err.Error()}
	}
	return nil
}

// applyDuckDB gives every DuckDB the process opens from now on the checked limits.
func (s *settings) applyDuckDB() error {
	if s.fs.Lookup("duckdb-memory-limit") == nil {
		return nil
	}
	if err := warehouse.SetLimits(s.duckdb.limits); err != nil {
		return &pipeline.ConfigError{Msg: err.Error()}
	}
	return nil
}
