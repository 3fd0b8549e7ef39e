package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/demo"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
)

// The tests that run in parallel (t.Parallel) are those that run commands
// in-process with the default DuckDB settings, the environment given to
// runCLI or cli and no terminal, process or clock of their own: the DuckDB
// settings of a command are the process's (warehouse.SetLimits), and a
// test of processes, schedules or progress bars measures time.

// runCLI runs the command line in-process with the given environment.
func runCLI(t *testing.T, environ map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdout: &out, stderr: &errb, getenv: func(k string) string { return environ[k] }}
	code = runBounded(t, args, e)
	return code, out.String(), errb.String()
}

// runBounded runs a command line in-process for at most childTimeout: a
// command that hangs fails its test, naming itself, instead of the package's
// timeout ending the whole suite.
func runBounded(t *testing.T, args []string, e *env) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), childTimeout)
	defer cancel()
	code := run(ctx, args, e)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Errorf("%q did not finish within %s", args, childTimeout)
	}
	return code
}

func TestMissingSettingIsOneLineNamingItWithStatus2(t *testing.T) {
	stageDir := "file://" + t.TempDir()
	for _, tc := range []struct {
		args    []string
		environ map[string]string
		want    string
	}{
		{[]string{"run"}, map[string]string{"ETL_STAGE": stageDir}, "ZUORA_BASE_URL"},
		{[]string{"run"}, map[string]string{"ETL_STAGE": stageDir, "ZUORA_BASE_URL": "http://127.0.0.1:1", "ZUORA_CLIENT_ID": "x"}, "ZUORA_CLIENT_SECRET"},
		{[]string{"run"}, map[string]string{"ETL_STAGE": stageDir, "ZUORA_BASE_URL": "http://127.0.0.1:1", "ZUORA_CLIENT_ID": "x", "ZUORA_CLIENT_SECRET": "s3cr3t-value"}, "ERP_BASE_URL"},
		{[]string{"load", "--window", "20261124T000000Z-20261124T010000Z"}, map[string]string{"ETL_STAGE": stageDir}, "ERP_BASE_URL"},
	} {
		code, _, stderr := runCLI(t, tc.environ, tc.args...)
		if code != exitUsage {
			t.Errorf("%v: exit %d; want %d (stderr %q)", tc.args, code, exitUsage, stderr)
		}
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if len(lines) != 1 || !strings.Contains(lines[0], tc.want) || !strings.Contains(lines[0], "demo") {
			t.Errorf("%v: stderr %q; want one line naming %s and pointing at demo", tc.args, stderr, tc.want)
		}
		if strings.Contains(stderr, "s3cr3t-value") {
			t.Errorf("%v: the client secret reached stderr", tc.args)
		}
	}
}

func TestEveryCommandHasHelp(t *testing.T) {
	for _, c := range commands {
		code, _, stderr := runCLI(t, nil, c.name, "--help")
		if code != exitOK || !strings.Contains(stderr, "usage: zuora-erp-etl "+c.name) {
			t.Errorf("%s --help: exit %d, output %q", c.name, code, stderr)
		}
	}
	if code, _, _ := runCLI(t, nil, "frobnicate"); code != exitUsage {
		t.Errorf("unknown command: exit %d; want %d", code, exitUsage)
	}
}

func TestBadWindowIDIsAUsageError(t *testing.T) {
	code, _, stderr := runCLI(t, map[string]string{"ETL_STAGE": "file://" + t.TempDir()}, "transform", "--window", "yesterday")
	if code != exitUsage || !strings.Contains(stderr, "window id") {
		t.Fatalf("exit %d, stderr %q; want status 2 explaining the window id", code, stderr)
	}
}

// TestDemoThenQuery is the README's first commands: demo exits 0 with a
// balanced report, and query answers over the demo's stage.
func TestDemoThenQuery(t *testing.T) {
	t.Parallel()
	stageURL := "file://" + filepath.Join(t.TempDir(), "demo-stage")
	code, stdout, stderr := runCLI(t, nil, "demo", "--stage", stageURL)
	if code != exitOK {
		t.Fatalf("demo: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"invoice", "payment", "refund", "credit_memo", "debit_memo", "payment_application", "credit_memo_application",
		"refund_application", "reversal", "== in Zuora", "cancelled after it was posted", "ok   the ERP holds each posted document exactly once",
		"ok   the ERP holds every application and reversal once", "ok   AR parity", "ok   reconcile"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "FAIL") {
		t.Errorf("demo output has a failed check:\n%s", stdout)
	}

	code, stdout, stderr = runCLI(t, nil, "query", "--stage", stageURL, "--format", "csv", "select count(*) as n, sum(amount) as total from invoices")
	if code != exitOK {
		t.Fatalf("query: exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "n,total") || strings.HasPrefix(lines[1], "0,") {
		t.Fatalf("query output %q; want a header and one row with a non-zero count", stdout)
	}

	// The demo reposts a credit memo after Zuora unposted and posted it again:
	// one live copy at a time is not a document posted twice.
	code, stdout, stderr = runCLI(t, nil, "query", "--stage", stageURL, "--format", "json", "--saved", "posted_twice")
	if code != exitOK || strings.TrimSpace(stdout) != "" {
		t.Errorf("query --saved posted_twice over the demo: exit %d, %s%s; want no rows", code, stdout, stderr)
	}

	// reconcile over the demo's stage: read-only; the customers the demo
	// rejects on purpose are open in Zuora and not in the ERP: exit 3, listed.
	code, stdout, stderr = runCLI(t, nil, "reconcile", "--stage", stageURL)
	if code != exitRejected || !strings.Contains(stdout, "open in Zuora, not held by the ERP") || !strings.Contains(stdout, "Zuora against the ledger: ") {
		t.Fatalf("reconcile: exit %d, stdout:\n%s\nstderr: %s\nwant exit 3 listing the rejected documents", code, stdout, stderr)
	}
	if code, _, stderr = runCLI(t, nil, "reconcile", "--stage", stageURL, "--erp"); code != exitUsage || !strings.Contains(stderr, "ERP_BASE_URL") {
		t.Fatalf("reconcile --erp without the ERP's settings: exit %d, %q; want 2 naming ERP_BASE_URL", code, stderr)
	}

	code, stdout, _ = runCLI(t, nil, "status", "--stage", stageURL)
	if code != exitRejected || strings.Count(stdout, "done") < 15 {
		t.Fatalf("status: exit %d, output:\n%s\nwant five windows with every step done, and status 3 for the demo's intended rejects", code, stdout)
	}

	// A second demo on the same stage starts afresh; a stage the demo does not own is refused.
	if code, _, stderr = runCLI(t, nil, "demo", "--stage", stageURL); code != exitOK {
		t.Fatalf("second demo: exit %d: %s", code, stderr)
	}
	foreign := "file://" + t.TempDir()
	runCLI(t, nil, "query", "--stage", foreign, "select 1") // leaves the folder empty
	if err := writeFile(t, foreign, "somebody-else.txt"); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr = runCLI(t, nil, "demo", "--stage", foreign); code != exitUsage || !strings.Contains(stderr, "did not write") {
		t.Fatalf("demo on a foreign stage: exit %d, stderr %q; want status 2 and a refusal", code, stderr)
	}
}

func writeFile(t *testing.T, fileURL, name string) error {
	t.Helper()
	return os.WriteFile(filepath.Join(strings.TrimPrefix(fileURL, "file://"), name), []byte("x"), 0o644)
}

// onWrite collects output and calls then, once, when the output first contains want.
type onWrite struct {
	bytes.Buffer
	want string
	then func()
	once sync.Once
}

func (o *onWrite) Write(p []byte) (int, error) {
	n, err := o.Buffer.Write(p)
	if strings.Contains(o.Buffer.String(), o.want) {
		o.once.Do(o.then)
	}
	return n, err
}

func TestScheduleRunsNowThenStopsOnInterrupt(t *testing.T) {
	srv, err := demo.Start(3, zuorasim.DefaultVolume(), demo.From, demo.To)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	environ := map[string]string{
		"ZUORA_BASE_URL": srv.ZuoraURL, "ZUORA_CLIENT_ID": demo.ClientID, "ZUORA_CLIENT_SECRET": demo.ClientSecret,
		"ERP_BASE_URL": srv.ERPURL, "ERP_TOKEN": demo.ERPToken, "ETL_STAGE": "file://" + t.TempDir(),
	}
	ctx, cancel := context.WithTimeout(t.Context(), childTimeout)
	defer cancel()
	out := &onWrite{want: "amounts", then: cancel}
	var errb bytes.Buffer
	e := &env{stdout: out, stderr: &errb, getenv: func(k string) string { return environ[k] }}
	code := run(ctx, []string{"schedule", "--now", "--cron", "0 0 1 1 *", "--since", demo.From.Format(time.RFC3339), "--until", demo.To.Format(time.RFC3339)}, e)
	if code != exitOK {
		t.Fatalf("schedule: exit %d: %s", code, errb.String())
	}
	if len(srv.ERP.Documents()) == 0 {
		t.Fatalf("the immediate run posted nothing; stdout:\n%s\nstderr:\n%s", out.String(), errb.String())
	}
	if !strings.Contains(errb.String(), "scheduler stopped") {
		t.Fatalf("the scheduler did not stop cleanly: %s", errb.String())
	}

	if code, _, stderr := runCLI(t, environ, "schedule", "--cron", "every full moon"); code != exitUsage || !strings.Contains(stderr, "--cron") {
		t.Fatalf("bad --cron: exit %d, stderr %q; want status 2 naming --cron", code, stderr)
	}
}

// TestSimAnswersTheREADMEQueries starts `sim` on free ports and asks it what
// the README shows: a token, then a page of invoices.
func TestSimAnswersTheREADMEQueries(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	out := &onWrite{want: "zuora-erp-etl run --since", then: func() { close(ready) }}
	var errb bytes.Buffer
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"sim", "--zuora-addr", "127.0.0.1:0", "--erp-addr", "127.0.0.1:0"}, &env{stdout: out, stderr: &errb, getenv: func(string) string { return "" }})
	}()
	select {
	case <-ready:
	case code := <-done:
		t.Fatalf("sim exited %d before serving: %s", code, errb.String())
	case <-time.After(30 * time.Second):
		t.Fatal("sim did not start within 30s")
	}
	var zuoraURL string
	for _, f := range strings.Fields(out.String()) {
		if strings.HasPrefix(f, "ZUORA_BASE_URL=") {
			zuoraURL = strings.TrimPrefix(f, "ZUORA_BASE_URL=")
		}
	}
	if zuoraURL == "" || strings.HasSuffix(zuoraURL, ":0") {
		t.Fatalf("sim did not print its bound address:\n%s", out.String())
	}

	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"sim-client-id"}, "client_secret": {"sim-client-secret"}}
	resp, err := http.PostForm(zuoraURL+"/oauth/token", form)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token: status %d, %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	req, _ := http.NewRequest("GET", zuoraURL+"/object-query/invoices?pageSize=2&fields[]=id,invoiceNumber,amount,updatedDate&sort[]=updateddate.ASC", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Zuora-Version", "2025-08-12")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		NextPage string           `json:"nextPage"`
		Data     []map[string]any `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || len(page.Data) != 2 || page.NextPage == "" || page.Data[0]["invoiceNumber"] == nil {
		t.Fatalf("invoices page: status %d, %+v", resp.StatusCode, page)
	}

	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("sim exited %d after interrupt: %s", code, errb.String())
	}
}

func TestStatusFlag(t *testing.T) {
	var m map[string][]string
	f := statusFlag{&m}
	for _, v := range []string{"payments=Processed,Posted", "invoices="} {
		if err := f.Set(v); err != nil {
			t.Fatalf("Set(%q): %v", v, err)
		}
	}
	if got := f.String(); got != "invoices= payments=Processed,Posted" {
		t.Fatalf("String() = %q", got)
	}
	if len(m["invoices"]) != 0 || len(m["payments"]) != 2 {
		t.Fatalf("statuses %v", m)
	}
	for _, bad := range []string{"accounts=Active", "payments", "=Posted"} {
		if err := f.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
	code, _, stderr := runCLI(t, map[string]string{"ETL_STAGE": "file://" + t.TempDir()}, "run", "--status", "accounts=Active")
	if code != exitUsage || !strings.Contains(stderr, "TABLE") {
		t.Fatalf("run --status accounts=Active: exit %d, stderr %q; want status 2", code, stderr)
	}
}
