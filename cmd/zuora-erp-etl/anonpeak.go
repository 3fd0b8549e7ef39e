package main

import (
	"sync"
	"time"

	"github.com/prometheus/procfs"
)

// anonInterval is how often watchAnon samples a child's memory.
const anonInterval = 20 * time.Millisecond

// anonPeak is the highest anonymous resident memory (RssAnon: the heaps,
// Go's and DuckDB's, and the stacks) one child process was seen with. The
// kernel's peak RSS also counts the pages of the binary the process maps,
// and how many of those a page fault maps depends on what the page cache
// holds (the simulators run the same binary): 10 to 15 MB from one run to
// the next of the same work. RssAnon grows only with what the process holds.
type anonPeak struct {
	stopCh chan struct{}
	done   sync.WaitGroup
	peak   uint64 // bytes; written by the sampler only, read after done
}

// watchAnon samples process pid every anonInterval until stop; where /proc
// cannot be read (another system, a process already gone) it sees nothing.
func watchAnon(pid int) *anonPeak {
	a := &anonPeak{stopCh: make(chan struct{})}
	p, err := procfs.NewProc(pid)
	if err != nil {
		return a
	}
	a.done.Go(func() {
		t := time.NewTicker(anonInterval)
		defer t.Stop()
		for {
			if s, err := p.NewStatus(); err == nil {
				a.peak = max(a.peak, s.RssAnon)
			}
			select {
			case <-a.stopCh:
				return
			case <-t.C:
			}
		}
	})
	return a
}

// stop ends the sampling and returns the peak, in bytes (0: never seen).
func (a *anonPeak) stop() uint64 {
	close(a.stopCh)
	a.done.Wait()
	return a.peak
}
