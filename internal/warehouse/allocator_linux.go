package warehouse

/*
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
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

// dirty_bytes is what jemalloc holds resident beyond the pages in use and
// its own metadata: the pages freed and kept for the next allocations. 0
// without jemalloc.
static size_t dirty_bytes(void) {
	if (!duckdb_je_mallctl) {
		return 0;
	}
	uint64_t epoch = 1;
	size_t len = sizeof(epoch);
	duckdb_je_mallctl("epoch", &epoch, &len, &epoch, len); // the stats below are as of now
	size_t resident = 0, active = 0, metadata = 0;
	len = sizeof(size_t);
	duckdb_je_mallctl("stats.resident", &resident, &len, NULL, 0);
	duckdb_je_mallctl("stats.active", &active, &len, NULL, 0);
	duckdb_je_mallctl("stats.metadata", &metadata, &len, NULL, 0);
	return resident > active + metadata ? resident - active - metadata : 0;
}

// purge_freed_pages gives back to the system every page jemalloc keeps
// freed, in every arena (4096 is MALLCTL_ARENAS_ALL).
static void purge_freed_pages(void) {
	if (duckdb_je_mallctl) {
		duckdb_je_mallctl("arena.4096.purge", NULL, NULL, NULL, 0);
	}
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
	arenas int

	mu    sync.Mutex
	open  int           // databases open
	stop  chan struct{} // ends the watch once none is
	done  chan struct{} // closed when the watch has ended
	purge atomic.Int64  // purges made, for the tests
}

// returnFreedPages sets the decay of DuckDB's allocator (its own jemalloc
// on Linux) to keptDecay in every arena, once per process, so that what it
// frees stays for its next allocations; the watch that Open starts
// (watchFreedPages) bounds what it so keeps. It returns the arenas set, -1
// when DuckDB has no jemalloc.
func returnFreedPages() int {
	freedPages.once.Do(func() { freedPages.arenas = int(C.return_freed_pages(C.ssize_t(keptDecay.Milliseconds()))) })
	return freedPages.arenas
}

// watchFreedPages starts, with the first database open, a watch that every
// watchEvery gives back what DuckDB's allocator keeps freed once that is
// more than keptFreed; the function it returns, which Close calls, ends the
// watch with the last database open and gives back what is kept.
//
// Under a small memory limit DuckDB frees and allocates its limit over and
// over as it spills. Given back at once (a decay of 0, as before this
// watch), each free is an madvise and each allocation after it a page
// fault: 2.4 million faults in a month-end hour's transform, 23 s of system
// time beside 26 s of user time on a 2-vCPU AMD EPYC VM (49 s, 283MB). Kept
// for jemalloc's own decay, even of 100ms, the freed pages pile up faster
// than they are reused (366MB; 433MB at a decay of one second, in 20 s).
// Kept up to keptFreed, the transform faults 1.1 million times, in 30 to 32
// s, and holds 286 to 290MB (32MB: 0.9 million, 28 s, 290 to 304MB). A
// small window's statements, which free a few MB each a hundred times a
// second, keep theirs for the next.
func watchFreedPages() (end func()) {
	if returnFreedPages() < 0 {
		return func() {}
	}
	f := &freedPages
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.open++; f.open == 1 {
		f.stop, f.done = make(chan struct{}), make(chan struct{})
		go watch(f.stop, f.done)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.open--; f.open == 0 {
				close(f.stop)
				<-f.done
				C.purge_freed_pages()
			}
		})
	}
}

// watch gives back what DuckDB's allocator keeps freed whenever it exceeds
// keptFreed, every watchEvery until stop is closed.
func watch(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(watchEvery)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			if freedKept() > keptFreed {
				C.purge_freed_pages()
				freedPages.purge.Add(1)
			}
		}
	}
}

// freedKept is what DuckDB's allocator keeps freed now, in bytes.
func freedKept() int64 { return int64(C.dirty_bytes()) }

// keptDecay is how long jemalloc itself keeps a freed page: long, since the
// watch decides; keptFreed and watchEvery are the watch's bound and pace.
const (
	keptDecay  = 10 * time.Second
	keptFreed  = 16 << 20
	watchEvery = 5 * time.Millisecond
)

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
