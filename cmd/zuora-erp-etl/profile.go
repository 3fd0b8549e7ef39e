package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"
)

// Profiling of any command, for finding where time and memory go: the
// environment names the files, so that every command (and the simulators of
// sim) can be profiled without a flag of its own, as bench --profile-dir does.
const (
	envCPUProfile = "ETL_CPUPROFILE" // a CPU profile of the whole process
	envMemProfile = "ETL_MEMPROFILE" // a heap profile (in use and allocated) taken when the heap was highest
)

// startProfiles starts the profiles the environment asks for; stop writes
// them. A file that cannot be created is a one-line error (exit 2).
func startProfiles(getenv func(string) string) (stop func(), err error) {
	stop = func() {}
	if path := getenv(envCPUProfile); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return stop, fmt.Errorf("%s: %v", envCPUProfile, err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return stop, fmt.Errorf("%s: %v", envCPUProfile, err)
		}
		stop = func() {
			pprof.StopCPUProfile()
			f.Close()
		}
	}
	if path := getenv(envMemProfile); path != "" {
		f, err := os.Create(path)
		if err != nil {
			stop()
			return func() {}, fmt.Errorf("%s: %v", envMemProfile, err)
		}
		peak := watchHeapPeak()
		cpu := stop
		stop = func() {
			cpu()
			if err := peak.write(f); err != nil {
				fmt.Fprintf(os.Stderr, "zuora-erp-etl: %s: %v\n", envMemProfile, err)
			}
			f.Close()
		}
	}
	return stop, nil
}

// heapPeak keeps the heap profile taken when the heap in use was highest,
// which says what held the memory then; an exit profile only shows what was
// left.
type heapPeak struct {
	mu      sync.Mutex
	max     uint64
	profile bytes.Buffer
	done    chan struct{}
	stopped chan struct{}
}

// watchHeapPeak looks at the heap every 100 ms and profiles it at each new
// high (by a tenth at least).
func watchHeapPeak() *heapPeak {
	h := &heapPeak{done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(h.stopped)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-h.done:
				return
			case <-tick.C:
				h.sample()
			}
		}
	}()
	return h
}

func (h *heapPeak) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h.mu.Lock()
	defer h.mu.Unlock()
	if ms.HeapInuse <= h.max+h.max/10 {
		return
	}
	h.max = ms.HeapInuse
	h.profile.Reset()
	_ = pprof.Lookup("heap").WriteTo(&h.profile, 0)
}

// write stops watching and writes the peak's profile (the exit's when the
// heap never grew).
func (h *heapPeak) write(w io.Writer) error {
	close(h.done)
	<-h.stopped
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.profile.Len() == 0 {
		return pprof.Lookup("heap").WriteTo(w, 0)
	}
	_, err := w.Write(h.profile.Bytes())
	return err
}
