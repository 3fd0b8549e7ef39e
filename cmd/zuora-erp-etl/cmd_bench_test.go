package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestBenchMeasuresEveryStage runs the bench at a tiny scale as a user
// would, with profiles: every stage is a process that exited as the stage
// does (0, or 3 for the tenant's rejects), with CPU, memory and requests
// counted, the JSON line holds the same, and every process left its profiles.
func TestBenchMeasuresEveryStage(t *testing.T) {
	dir := t.TempDir()
	out, prof := filepath.Join(dir, "bench.jsonl"), filepath.Join(dir, "prof")
	cmd := binaryCommand(t, "bench", "--scale", "0.002", "--latency", "realistic", "--zuora-latency", "5ms", "--erp-latency", "2ms",
		"--out", out, "--profile-dir", prof, "--dir", filepath.Join(dir, "work"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bench: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	for _, want := range []string{"extract", "transform", "load", "run", "peak RSS MB", "peak anon MB", "limit s", "simulators (steps)"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, stdout.String())
		}
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var r benchRun
	if err := json.Unmarshal(bytes.TrimSpace(data), &r); err != nil {
		t.Fatalf("--out: %v\n%s", err, data)
	}
	if r.Documents == 0 || r.Latency != "realistic" || r.ZuoraLatencyMS != 5 || r.ERPLatencyMS != 2 || r.Machine.CPUs == 0 {
		t.Errorf("the run's figures: %+v", r)
	}
	var names []string
	for _, s := range r.Stages {
		names = append(names, s.Stage)
		switch {
		case s.Exit != exitOK && s.Exit != exitRejected:
			t.Errorf("%s exited %d", s.Stage, s.Exit)
		case s.WallSeconds <= 0 || s.CPUSeconds <= 0 || s.MaxRSSMB <= 0 || s.DocsPerSecond <= 0:
			t.Errorf("%s: not measured: %+v", s.Stage, s)
		case runtime.GOOS == "linux" && (s.PeakAnonMB <= 0 || s.PeakAnonMB > s.MaxRSSMB):
			t.Errorf("%s: peak anonymous memory %.1f MB, peak RSS %.1f MB", s.Stage, s.PeakAnonMB, s.MaxRSSMB)
		case s.Stage == "transform" && (s.ZuoraRequests != 0 || s.ERPRequests != 0 || s.LimitSeconds != 0):
			t.Errorf("the transform made requests: %+v", s)
		case s.Stage == "extract" && (s.ZuoraRequests == 0 || s.ERPRequests != 0):
			t.Errorf("the extract's requests: %+v", s)
		case (s.Stage == "load" || s.Stage == "run") && (s.ZuoraRequests == 0 || s.ERPRequests == 0):
			t.Errorf("%s's requests: %+v", s.Stage, s)
		case s.Stage != "transform" && (s.LimitSeconds <= 0 || s.Ratio < 1):
			t.Errorf("%s ran faster than its limit allows: %+v", s.Stage, s)
		}
	}
	if strings.Join(names, ",") != "extract,transform,load,run" {
		t.Errorf("stages %v", names)
	}
	for _, p := range []string{"steps-sim", "steps-extract", "steps-transform", "steps-load", "run-sim", "run-run"} {
		for _, kind := range []string{".cpu.pprof", ".heap.pprof"} {
			if fi, err := os.Stat(filepath.Join(prof, p+kind)); err != nil || fi.Size() == 0 {
				t.Errorf("profile %s%s: %v", p, kind, err)
			}
		}
	}
}

// TestBenchSettingsAreChecked: a bench setting it cannot use is a one-line
// error naming it (exit 2), before anything starts.
func TestBenchSettingsAreChecked(t *testing.T) {
	future := time.Now().UTC().Add(time.Hour).Truncate(time.Hour).Format(time.RFC3339)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"bench", "--scale", "0"}, []string{"--scale", "0.001"}},
		{[]string{"bench", "--scale", "11"}, []string{"--scale"}},
		{[]string{"bench", "--latency", "slow"}, []string{"--latency", "realistic"}},
		{[]string{"bench", "--hour", "2026-11-30T10:30:00Z"}, []string{"--hour", "start of an hour"}},
		{[]string{"bench", "--hour", future}, []string{"--hour", "settle lag"}},
		{[]string{"bench", "--phases", "all"}, []string{"--phases"}},
		{[]string{"bench", "--zuora-concurrency", "81"}, []string{"--zuora-concurrency"}},
		{[]string{"bench", "--slices", "0"}, []string{"--slices"}},
		{[]string{"bench", "now"}, []string{"no arguments"}},
	} {
		code, stdout, stderr := runCLIWithin(t, 5*time.Second, nil, tc.args...)
		assertOneLineUsageError(t, tc.args, code, stdout, stderr, tc.want...)
	}
}
