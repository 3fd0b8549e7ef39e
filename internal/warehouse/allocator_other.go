//go:build !linux

package warehouse

// returnFreedPages does nothing: DuckDB's builds other than Linux's use the
// system's allocator (allocator_linux.go).
func returnFreedPages() int { return -1 }
