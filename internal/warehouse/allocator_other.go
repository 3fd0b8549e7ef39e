//go:build !linux

package warehouse

import "time"

// returnFreedPages does nothing: DuckDB's builds other than Linux's use the
// system's allocator (allocator_linux.go).
func returnFreedPages() int { return -1 }

// watchFreedPages does nothing: see returnFreedPages.
func watchFreedPages() func() { return func() {} }

// releaseHeap does nothing: the heaps of other systems' C libraries return
// what is freed on their own, or have no call to make them.
func releaseHeap(time.Time) {}
