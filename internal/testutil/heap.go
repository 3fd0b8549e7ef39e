package testutil

import (
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// HeapPeak samples a figure of the heap every 200µs until Growth stops it, so
// a test sees how far a run raised the heap above where it began.
type HeapPeak struct {
	base, peak atomic.Uint64
	stop       chan struct{}
	done       sync.WaitGroup
}

// StartHeapPeak collects garbage (twice, so that what sync.Pools held is
// gone too), takes the heap's objects (live and not yet
// collected) as the base, and samples them.
func StartHeapPeak() *HeapPeak { return startPeak("/memory/classes/heap/objects:bytes") }

// StartLivePeak is StartHeapPeak of the heap found live by each collection:
// garbage not yet collected does not count.
func StartLivePeak() *HeapPeak { return startPeak("/gc/heap/live:bytes") }

func startPeak(metric string) *HeapPeak {
	runtime.GC()
	runtime.GC() // the first only moves pooled objects to the pools' victim caches
	h := &HeapPeak{stop: make(chan struct{})}
	h.base.Store(readMetric(metric))
	h.peak.Store(h.base.Load())
	h.done.Add(1)
	go func() {
		defer h.done.Done()
		tick := time.NewTicker(200 * time.Microsecond)
		defer tick.Stop()
		for {
			if b := readMetric(metric); b > h.peak.Load() {
				h.peak.Store(b)
			}
			select {
			case <-h.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return h
}

func readMetric(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// Growth stops sampling and returns the peak's growth over the base, in bytes.
func (h *HeapPeak) Growth() int64 {
	close(h.stop)
	h.done.Wait()
	return int64(h.peak.Load()) - int64(h.base.Load())
}
