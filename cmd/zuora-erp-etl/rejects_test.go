package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/demo"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
)

// TestRejectsListAckAndExitStatuses: run exits 3 while rejects are outstanding
// in any window, rejects lists them (exit 3), rejects ack refuses what is not
// outstanding (exit 2) and records the rest with who, and once every reject is
// acknowledged the next run reports them skipped and exits 0.
func TestRejectsListAckAndExitStatuses(t *testing.T) {
	srv, err := demo.Start(3, zuorasim.DefaultVolume(), demo.From, demo.To)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	environ := map[string]string{
		"ZUORA_BASE_URL": srv.ZuoraURL, "ZUORA_CLIENT_ID": demo.ClientID, "ZUORA_CLIENT_SECRET": demo.ClientSecret,
		"ERP_BASE_URL": srv.ERPURL, "ERP_TOKEN": demo.ERPToken, "ETL_STAGE": "file://" + t.TempDir(), "USER": "carol",
	}
	runArgs := []string{"run", "--since", demo.From.Format(time.RFC3339), "--until", demo.To.Format(time.RFC3339)}
	if code, stdout, stderr := runCLI(t, environ, runArgs...); code != exitRejected || !strings.Contains(stdout, "outstanding rejects in every window:") {
		t.Fatalf("first run: exit %d; want %d with the outstanding rejects reported\nstdout:\n%s\nstderr:\n%s", code, exitRejected, stdout, stderr)
	}
	// A run with no window due still covers the rejects of every window.
	if code, stdout, _ := runCLI(t, environ, runArgs...); code != exitRejected || !strings.Contains(stdout, "no window was due") {
		t.Fatalf("second run: exit %d; want %d although no window was due:\n%s", code, exitRejected, stdout)
	}
	code, stdout, stderr := runCLI(t, environ, "rejects")
	if code != exitRejected || !strings.Contains(stdout, "window  ") || !strings.Contains(stdout, "first seen") || !strings.Contains(stdout, "NO_ERP_ACCOUNT") {
		t.Fatalf("rejects: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = runCLI(t, environ, "query", "--format", "csv", `select zuora_id, "window", reason_code, first_seen, last_seen from rejects`)
	if code != exitOK {
		t.Fatalf("query rejects: exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) < 3 || lines[0] != "zuora_id,window,reason_code,first_seen,last_seen" {
		t.Fatalf("query rejects:\n%s", stdout)
	}
	ids := make([]string, 0, len(lines)-1)
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		if f[1] == "" || f[2] == "" || f[3] == "" || f[4] == "" {
			t.Errorf("outstanding reject without window, reason or first/last seen: %q", l)
		}
		ids = append(ids, f[0])
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"rejects", "ack", "--id", "not-a-reject", "--reason", "x"}, "not an outstanding reject"},
		{[]string{"rejects", "ack", "--id", ids[0]}, "--reason"},
		{[]string{"rejects", "ack", "--reason", "x"}, "--id"},
		{[]string{"rejects", "ack", "--id", ids[0], "--reason", "two", "words"}, "quote the reason"},
		{[]string{"rejects", "frobnicate"}, "unexpected"},
	} {
		if code, _, stderr := runCLI(t, environ, tc.args...); code != exitUsage || !strings.Contains(stderr, tc.want) || strings.Contains(stderr, "resume with") {
			t.Errorf("%v: exit %d, stderr %q; want %d naming %q and no resume hint", tc.args, code, stderr, exitUsage, tc.want)
		}
	}
	for _, id := range ids {
		code, stdout, stderr := runCLI(t, environ, "rejects", "ack", "--id", id, "--reason", "test tenant: never post")
		if code != exitOK || !strings.Contains(stdout, "by carol@") {
			t.Fatalf("rejects ack %s: exit %d\nstdout: %s\nstderr: %s", id, code, stdout, stderr)
		}
	}
	if code, _, stderr := runCLI(t, environ, "rejects", "ack", "--id", ids[0], "--reason", "again"); code != exitUsage || !strings.Contains(stderr, "already acknowledged") {
		t.Errorf("second ack: exit %d, stderr %q", code, stderr)
	}
	if code, stdout, _ := runCLI(t, environ, "rejects"); code != exitOK || !strings.Contains(stdout, "no outstanding rejects") {
		t.Errorf("rejects after acknowledging all: exit %d:\n%s", code, stdout)
	}
	if code, stdout, stderr := runCLI(t, environ, runArgs...); code != exitOK || !strings.Contains(stdout, "outstanding rejects in every window: none") {
		t.Fatalf("run after acknowledging every reject: exit %d; want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	code, stdout, _ = runCLI(t, environ, "query", "--format", "csv", "select count(*) from skipped where reason_code = 'ACKNOWLEDGED' and message like '%test tenant: never post%carol@%'")
	if code != exitOK || strings.TrimSpace(strings.Split(stdout, "\n")[1]) != strconv.Itoa(len(ids)) {
		t.Errorf("acknowledged skips: %q; want %d", stdout, len(ids))
	}
}
