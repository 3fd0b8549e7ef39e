package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/demo"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

func TestLeaseTTLIsValidated(t *testing.T) {
	stageDir := "file://" + t.TempDir()
	for _, tc := range []struct {
		env  string
		args []string
	}{
		{"", []string{"run", "--lease-ttl", "0s"}},
		{"", []string{"run", "--lease-ttl", "-1m"}},
		{"", []string{"run", "--lease-ttl", "500ms"}},
		{"", []string{"extract", "--lease-ttl", "2h", "--from", "2026-11-24T00:00:00Z", "--to", "2026-11-24T01:00:00Z"}},
		{"", []string{"load", "--lease-ttl", "soon", "--window", "20261124T000000Z-20261124T010000Z"}},
		{"ten minutes", []string{"schedule"}},
		{"0", []string{"transform", "--window", "20261124T000000Z-20261124T010000Z"}},
	} {
		code, _, stderr := runCLI(t, map[string]string{"ETL_STAGE": stageDir, "ETL_LEASE_TTL": tc.env}, tc.args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != exitUsage || len(lines) != 1 || !strings.Contains(lines[0], "--lease-ttl") || !strings.Contains(lines[0], "ETL_LEASE_TTL") {
			t.Errorf("%v (ETL_LEASE_TTL=%q): exit %d, stderr %q; want status 2 and one line naming --lease-ttl", tc.args, tc.env, code, stderr)
		}
	}
	// A valid value passes on to the next check.
	code, _, stderr := runCLI(t, map[string]string{"ETL_STAGE": stageDir}, "run", "--lease-ttl", "2s")
	if code != exitUsage || !strings.Contains(stderr, "ZUORA_BASE_URL") {
		t.Errorf("run --lease-ttl 2s: exit %d, stderr %q; want the missing Zuora setting next", code, stderr)
	}
}

// TestLeaseCommand: while another process holds the stage, run exits 4 naming
// it, status still answers, lease show names it, lease break frees the stage
// (the holder then writes nothing more) and the next run proceeds.
func TestLeaseCommand(t *testing.T) {
	srv, err := demo.Start(4, zuorasim.DefaultVolume(), demo.From, demo.To)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	stageURL := "file://" + filepath.ToSlash(t.TempDir()) + "/stage"
	environ := map[string]string{
		"ZUORA_BASE_URL": srv.ZuoraURL, "ZUORA_CLIENT_ID": demo.ClientID, "ZUORA_CLIENT_SECRET": demo.ClientSecret,
		"ERP_BASE_URL": srv.ERPURL, "ERP_TOKEN": demo.ERPToken, "ETL_STAGE": stageURL,
	}
	runArgs := []string{"run", "--since", demo.From.Format(time.RFC3339), "--until", demo.From.Add(time.Hour).Format(time.RFC3339)}
	if code, _, stderr := runCLI(t, environ, runArgs...); code != exitRejected {
		t.Fatalf("first run: exit %d: %s", code, stderr)
	}
	if code, stdout, _ := runCLI(t, environ, "lease", "show"); code != exitOK || !strings.Contains(stdout, "free") || !strings.Contains(stdout, "given back") {
		t.Fatalf("lease show after a run: exit %d, %q; want free, given back", code, stdout)
	}

	other, err := stage.Open(context.Background(), stageURL)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	l, err := other.AcquireLease(context.Background(), stage.LeaseOptions{Holder: stage.Holder{RunID: "run-holder", Command: "run"}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(context.Background())

	requests := len(srv.ERP.Requests())
	code, stdout, stderr := runCLI(t, environ, runArgs...)
	if code != exitLeaseHeld || !strings.HasPrefix(stderr, "zuora-erp-etl: another writer holds the stage") ||
		!strings.Contains(stderr, "run-holder") || !strings.Contains(stderr, "pid "+strconv.Itoa(os.Getpid())) ||
		!strings.Contains(stderr, "zuora-erp-etl lease break --stage "+stageURL+" --run-id run-holder") || stdout != "" {
		t.Fatalf("run while held: exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
	if len(srv.ERP.Requests()) != requests {
		t.Fatal("the refused run posted to the ERP")
	}
	if code, _, stderr := runCLI(t, environ, "status"); code != exitRejected { // answered: 3 for the tenant's outstanding rejects, never 4
		t.Fatalf("status while held: exit %d: %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, environ, "query", "select count(*) from invoices"); code != exitOK {
		t.Fatalf("query while held: exit %d: %s", code, stderr)
	}
	if code, stdout, _ := runCLI(t, environ, "lease", "show"); code != exitOK || !strings.Contains(stdout, "held by run run-holder") || !strings.Contains(stdout, "expires") {
		t.Fatalf("lease show while held: exit %d, %q", code, stdout)
	}
	if code, _, stderr := runCLI(t, environ, "lease", "break", "--run-id", "run-somebody-else"); code != exitLeaseHeld || !strings.Contains(stderr, "nothing broken") {
		t.Fatalf("lease break of another run id: exit %d, %q", code, stderr)
	}
	if l.Err() != nil {
		t.Fatal("a refused break broke the lease")
	}
	code, stdout, stderr = runCLI(t, environ, "lease", "break", "--run-id", "run-holder")
	if code != exitOK || !strings.Contains(stdout, "broke the lease of run run-holder") || !strings.Contains(stdout, "stops before its next write") {
		t.Fatalf("lease break: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	_, err = other.WriteBytes(context.Background(), "state/somewhere", []byte("x"))
	var lost *stage.LeaseLostError
	if !errors.As(err, &lost) {
		t.Fatalf("the broken holder's write: %v; want a *stage.LeaseLostError", err)
	}
	if code, stdout, _ := runCLI(t, environ, "lease", "break"); code != exitOK || !strings.Contains(stdout, "nothing to break") {
		t.Fatalf("lease break of a free stage: exit %d, %q", code, stdout)
	}
	requests = len(srv.ERP.Requests())
	next := []string{"run", "--until", demo.From.Add(2 * time.Hour).Format(time.RFC3339), "--lease-ttl", "30s"}
	if code, _, stderr := runCLI(t, environ, next...); code != exitRejected || len(srv.ERP.Requests()) == requests {
		t.Fatalf("run of the next window after the break: exit %d, %d new ERP requests: %s", code, len(srv.ERP.Requests())-requests, stderr)
	}

	for _, args := range [][]string{{"lease"}, {"lease", "steal"}, {"lease", "show", "extra"}} {
		if code, _, _ := runCLI(t, environ, args...); code != exitUsage {
			t.Errorf("%v: exit %d; want %d", args, code, exitUsage)
		}
	}
	missing := filepath.Join(t.TempDir(), "typo")
	if code, _, stderr := runCLI(t, environ, "lease", "show", "--stage", missing); code != exitUsage || !strings.Contains(stderr, "no stage at") {
		t.Errorf("lease show on a missing stage: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Error("lease show created the missing stage")
	}
}

// TestScheduleTickWaitsWhileLeaseHeld: a tick that finds the stage held logs
// exit status 4 and the scheduler goes on; the next tick, once the stage is
// free, runs.
func TestScheduleTickWaitsWhileLeaseHeld(t *testing.T) {
	defer func(d time.Duration) { minCronInterval = d }(minCronInterval)
	minCronInterval = time.Second // ticks a second apart, so the test need not wait a minute
	srv, err := demo.Start(3, zuorasim.DefaultVolume(), demo.From, demo.To)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	stageURL := "file://" + filepath.ToSlash(t.TempDir())
	environ := map[string]string{
		"ZUORA_BASE_URL": srv.ZuoraURL, "ZUORA_CLIENT_ID": demo.ClientID, "ZUORA_CLIENT_SECRET": demo.ClientSecret,
		"ERP_BASE_URL": srv.ERPURL, "ERP_TOKEN": demo.ERPToken, "ETL_STAGE": stageURL,
	}
	other, err := stage.Open(context.Background(), stageURL)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	l, err := other.AcquireLease(context.Background(), stage.LeaseOptions{Holder: stage.Holder{RunID: "run-holder", Command: "run"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	released := make(chan struct{})
	stderr := &onWrite{want: "exit_status=4", then: func() {
		go func() {
			l.Release(context.Background())
			close(released)
		}()
	}}
	stdout := &onWrite{want: "amounts", then: cancel}
	e := &env{stdout: stdout, stderr: stderr, getenv: func(k string) string { return environ[k] }}
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"schedule", "--now", "--cron", "@every 1s", "--since", demo.From.Format(time.RFC3339), "--until", demo.To.Format(time.RFC3339)}, e)
	}()
	var code int
	select {
	case code = <-done:
	case <-time.After(60 * time.Second):
		cancel()
		<-done
		t.Fatalf("the scheduler did not run after the stage was freed\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
	<-released
	if code != exitOK {
		t.Fatalf("schedule: exit %d\n%s", code, stderr.String())
	}
	logs := stderr.String()
	if !strings.Contains(logs, "another writer holds the stage") || !strings.Contains(logs, "waiting for the next") {
		t.Errorf("the held tick did not log that it waits:\n%s", logs)
	}
	if len(srv.ERP.Documents()) == 0 {
		t.Fatalf("no tick posted anything after the stage was freed\n%s", logs)
	}
	if !strings.Contains(logs, "scheduler stopped") {
		t.Errorf("the scheduler did not stop cleanly:\n%s", logs)
	}
}
