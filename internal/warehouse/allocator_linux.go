package warehouse

/*
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

// DuckDB's builds for Linux allocate with a jemalloc of their own, whose
// mallctl is this symbol; weak, so that a build without it links and the
// pointer is NULL.
extern int duckdb_je_mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen) __attribute__((weak));

// return_freed_pages sets jemalloc's dirty and muzzy decay to 0 for every
// arena and for those to come, and returns the number of arenas set, or -1
// without jemalloc.
static int return_freed_pages(void) {
	if (!duckdb_je_mallctl) {
		return -1;
	}
	ssize_t zero = 0;
	duckdb_je_mallctl("arenas.dirty_decay_ms", NULL, NULL, &zero, sizeof(zero));
	duckdb_je_mallctl("arenas.muzzy_decay_ms", NULL, NULL, &zero, sizeof(zero));
	unsigned n = 0;
	size_t len = sizeof(n);
	if (duckdb_je_mallctl("arenas.narenas", &n, &len, NULL, 0) != 0) {
		return 0;
	}
	int set = 0;
	for (unsigned i = 0; i < n; i++) {
		char name[64];
		snprintf(name, sizeof(name), "arena.%u.dirty_decay_ms", i);
		if (duckdb_je_mallctl(name, NULL, NULL, &zero, sizeof(zero)) == 0) {
			set++;
		}
		snprintf(name, sizeof(name), "arena.%u.muzzy_decay_ms", i);
		duckdb_je_mallctl(name, NULL, NULL, &zero, sizeof(zero));
	}
	return set;
}

// The C library's malloc_trim, weak so that a C library without it (musl)
// links and the pointer is NULL.
extern int malloc_trim(size_t pad) __attribute__((weak));

// trim_heap returns to the system the free pages of every arena of the C
// library's malloc, and 0 without malloc_trim.
static int has_trim(void) { return malloc_trim != NULL; }

static int trim_heap(void) {
	if (!malloc_trim) {
		return 0;
	}
	malloc_trim(0);
	return 1;
}
*/
import "C"

import (
	"sync"
	"sync/atomic"
	"time"
)

var freedPages struct {
	once   sync.Once
	arenas int
}

// returnFreedPages makes DuckDB's allocator give the pages DuckDB frees back
// to the system at once rather than after its decay of seconds: under a
// small memory limit DuckDB frees and allocates its limit over and over as
// it spills, and the pages it keeps would double the process's memory. It
// returns the allocator's arenas so set, -1 when DuckDB has no jemalloc.
func returnFreedPages() int {
	freedPages.once.Do(func() { freedPages.arenas = int(C.return_freed_pages()) })
	return freedPages.arenas
}

// releaseHeap gives the system back the memory DuckDB freed with the C
// library's malloc, which its own allocator does not serve: a Parquet
// file's metadata (some 1.5KB a column chunk, read again by each statement
// that scans the file), query plans, compression state. malloc keeps what is
// freed between the blocks still in use as free memory of the process, which
// a large window's metadata makes tens of MB. The DB calls this after every
// statement; it trims once trimEvery has passed since the last trim: a trim
// is an madvise per free chunk, the next statement faults the pages in
// again, and a small window runs a hundred statements a second (a trim after
// each made half the system CPU of the test suite). It reports whether the C
// library has malloc_trim.
func releaseHeap() bool {
	now := time.Now().UnixNano()
	last := lastTrim.Load()
	if now-last < int64(trimEvery) || !lastTrim.CompareAndSwap(last, now) {
		return hasTrim
	}
	return C.trim_heap() == 1
}

// trimEvery is the least time between two trims of releaseHeap: a statement
// that holds memory long enough to matter ends after it.
const trimEvery = time.Second

var (
	lastTrim atomic.Int64 // when releaseHeap last trimmed, in Unix nanoseconds
	hasTrim  = C.has_trim() == 1
)
