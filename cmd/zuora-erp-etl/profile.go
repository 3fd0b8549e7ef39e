package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

// Profiling of any command, for finding where time and memory go: the
// environment names the files, so that every command (and the simulators of
// sim) can be profiled without a flag of its own, as bench --profile-dir does.
const (
	envCPUProfile = "ETL_CPUPROFILE" // a CPU profile of the whole process
	envMemProfile = "ETL_MEMPROFILE" // a heap profile (in use and allocated) written at exit
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
		cpu := stop
		stop = func() {
			cpu()
			runtime.GC() // the heap profile shows the state as of the last GC
			if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
				fmt.Fprintf(os.Stderr, "zuora-erp-etl: %s: %v\n", envMemProfile, err)
			}
			f.Close()
		}
	}
	return stop, nil
}
