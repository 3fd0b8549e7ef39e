package warehouse

/*
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

// DuckDB's builds for Linux allocate with a jemalloc of their own, whose
// mallctl is this symbol; weak, so that a build without it links and the
// pointer is NULL.
extern int duckdb_je_mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen) __attribute__((weak));

// return_freed_pages sets jemalloc's dirty and muzzy decay to decay_ms for
// every arena and for those to come, and returns the number of arenas set,
// or -1 without jemalloc.
static int return_freed_pages(ssize_t decay_ms) {
	if (!duckdb_je_mallctl) {
		return -1;
	}
	ssize_t decay = decay_ms;
	duckdb_je_mallctl("arenas.dirty_decay_ms", NULL, NULL, &decay, sizeof(decay));
	duckdb_je_mallctl("arenas.muzzy_decay_ms", NULL, NULL, &decay, sizeof(decay));
	unsigned n = 0;
	size_t len = sizeof(n);
	if (duckdb_je_mallctl("arenas.narenas", &n, &len, NULL, 0) != 0) {
		return 0;
	}
	int set = 0;
	for (unsigned i = 0; i < n; i++) {
		char name[64];
		snprintf(name, sizeof(name), "arena.%u.dirty_decay_ms", i);
		if (duckdb_je_mallctl(name, NULL, NULL, &decay, sizeof(decay)) == 0) {
			set++;
		}
		snprintf(name, sizeof(name), "arena.%u.muzzy_decay_ms", i);
		duckdb_je_mallctl(name, NULL, NULL, &decay, sizeof(decay));
	}
	return set;
}

// dirty_decay is jemalloc's dirty decay for arenas to come, in ms, or -2
// without jemalloc.
static ssize_t dirty_decay(void) {
	ssize_t v = -2;
	size_t len = sizeof(v);
	if (!duckdb_je_mallctl || duckdb_je_mallctl("arenas.dirty_decay_ms", &v, &len, NULL, 0) != 0) {
		return -2;
	}
	return v;
}

// The C library's malloc_trim, weak so that a C library without it (musl)
// links and the pointer is NULL.
extern int malloc_trim(size_t pad) __attribute__((weak));

// trim_heap returns to the system the free pages of every arena of the C
// library's malloc; without malloc_trim it does nothing.
static void trim_heap(void) {
	if (malloc_trim) {
		malloc_trim(0);
	}
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
	eager  sync.Once // sets the decay to 0 (readingLarge)
	arenas int
}

// returnFreedPages makes DuckDB's allocator give the pages DuckDB frees back
// to the system within smallDecay rather than after its decay of seconds,
// and at once from the first database that reads largeInput of Parquet
// (readingLarge): under a small memory limit DuckDB frees and allocates its
// limit over and over as it spills, and the pages it keeps would double the
// process's memory (at scale 1 of the benchmark, a decay of even 20ms made
// the transform 364MB against 278MB). A small window's statements, on the
// other hand, free a few MB each, a hundred times a second, and at once
// makes each free an madvise and each allocation after it a page fault: a
// third of the CPU of a test of such windows. It returns the allocator's
// arenas so set, -1 when DuckDB has no jemalloc.
func returnFreedPages() int {
	freedPages.once.Do(func() { freedPages.arenas = int(C.return_freed_pages(C.ssize_t(smallDecay.Milliseconds()))) })
	return freedPages.arenas
}

// readingLarge is called with the bytes of Parquet a database has viewed so
// far: from largeInput on, DuckDB's allocator gives what it frees back at
// once, for the rest of the process.
func readingLarge(viewed int64) {
	if viewed >= largeInput {
		freedPages.eager.Do(func() { C.return_freed_pages(0) })
	}
}

// smallDecay is the decay until readingLarge.
const smallDecay = 250 * time.Millisecond

// largeInput is a window of a thousand documents or so: a test's windows
// of sixty view some 200KB; at a tenth of the benchmark's hour (5.7MB of raw
// Parquet) the decay cost the transform 288MB of RSS against 212MB. A var
// for its test.
var largeInput int64 = 1 << 20

// decayMS is the decay DuckDB's allocator has now, in milliseconds, and -2
// without jemalloc.
func decayMS() int64 { return int64(C.dirty_decay()) }

// releaseHeap gives the system back the memory DuckDB freed with the C
// library's malloc, which its own allocator does not serve: a Parquet
// file's metadata (some 1.5KB a column chunk, read again by each statement
// that scans the file), query plans, compression state. malloc keeps what is
// freed between the blocks still in use as free memory of the process, which
// a large window's metadata makes tens of MB. The DB calls this after every
// statement, with when the statement started; it trims after a statement of
// trimAfter or more, or once trimEvery has passed since the last trim: a trim
// is an madvise per free chunk, the next statement faults the pages in
// again, and a small window runs a hundred statements of a few milliseconds
// a second (a trim after each made half the system CPU of the test suite).
func releaseHeap(started time.Time) {
	now := time.Now()
	if now.Sub(started) < trimAfter && now.UnixNano()-lastTrim.Load() < int64(trimEvery) {
		return
	}
	lastTrim.Store(now.UnixNano())
	C.trim_heap()
}

// trimAfter and trimEvery are when releaseHeap trims: after a statement
// long enough to have read much, and at least once a second.
const (
	trimAfter = 50 * time.Millisecond
	trimEvery = time.Second
)

// lastTrim is when releaseHeap last trimmed, in Unix nanoseconds.
var lastTrim atomic.Int64
