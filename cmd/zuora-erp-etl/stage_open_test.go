package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/demo"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
)

// TestReadOnlyCommandsRefuseAMissingStage: status and query on a stage that
// does not exist (a typo) say so with status 2 and create nothing.
func TestReadOnlyCommandsRefuseAMissingStage(t *testing.T) {
	parent := t.TempDir()
	missing := filepath.Join(parent, "demo-stagee")
	for _, args := range [][]string{
		{"status", "--stage", missing},
		{"status", "--stage", "file://" + filepath.ToSlash(missing)},
		{"query", "--stage", missing, "select 1"},
	} {
		code, stdout, stderr := runCLI(t, nil, args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != exitUsage || len(lines) != 1 || !strings.Contains(lines[0], "no stage at") || !strings.Contains(lines[0], missing) {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want status 2 and one line saying no stage at %s", args, code, stderr, stdout, missing)
		}
		if _, err := os.Stat(missing); !os.IsNotExist(err) {
			t.Fatalf("%v created %s", args, missing)
		}
	}
}

// TestAFailedConfigurationLeavesNoStageBehind: a writing command that stops on
// its configuration creates no stage folder, neither the default ./stage nor
// the one named by --stage.
func TestAFailedConfigurationLeavesNoStageBehind(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	named := filepath.Join(dir, "named")
	zuoraOnly := map[string]string{"ZUORA_BASE_URL": "http://127.0.0.1:1", "ZUORA_CLIENT_ID": "x", "ZUORA_CLIENT_SECRET": "y"}
	for _, tc := range []struct {
		environ map[string]string
		args    []string
	}{
		{nil, []string{"run"}},
		{nil, []string{"run", "--stage", named}},
		{zuoraOnly, []string{"run"}},
		{nil, []string{"run", "--log-level", "loud"}},
		{nil, []string{"extract", "--from", "2026-11-24T00:00:00Z", "--to", "2026-11-24T01:00:00Z"}},
		{nil, []string{"transform", "--window", "20261124T000000Z-20261124T010000Z"}},
		{zuoraOnly, []string{"load", "--window", "20261124T000000Z-20261124T010000Z"}},
		{nil, []string{"run", "--lease-ttl", "0s"}},
	} {
		code, _, stderr := runCLI(t, tc.environ, tc.args...)
		if code != exitUsage {
			t.Errorf("%v: exit %d; want %d (stderr %q)", tc.args, code, exitUsage, stderr)
		}
		for _, p := range []string{filepath.Join(dir, "stage"), named} {
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Fatalf("%v left %s behind (stderr %q)", tc.args, p, stderr)
			}
		}
	}
}

// TestTheFirstWritingCommandCreatesTheStage: a run on a new location creates
// the stage's folder, parents included, and a read-only command then sees it.
func TestTheFirstWritingCommandCreatesTheStage(t *testing.T) {
	srv, err := demo.Start(3, zuorasim.DefaultVolume(), demo.From, demo.To)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	stageDir := filepath.Join(t.TempDir(), "new", "stage")
	environ := map[string]string{
		"ZUORA_BASE_URL": srv.ZuoraURL, "ZUORA_CLIENT_ID": demo.ClientID, "ZUORA_CLIENT_SECRET": demo.ClientSecret,
		"ERP_BASE_URL": srv.ERPURL, "ERP_TOKEN": demo.ERPToken, "ETL_STAGE": stageDir,
	}
	code, _, stderr := runCLI(t, environ, "run", "--since", demo.From.Format(time.RFC3339), "--until", demo.From.Add(time.Hour).Format(time.RFC3339))
	if code != exitOK && code != exitRejected {
		t.Fatalf("run on a new stage: exit %d: %s", code, stderr)
	}
	if fi, err := os.Stat(stageDir); err != nil || !fi.IsDir() {
		t.Fatalf("the run did not create its stage folder: %v", err)
	}
	// Status exits as the run did: 3 while a reject is outstanding (here, in
	// seed 3, a payment application whose payment and invoice a later
	// application last changed, so that a later window stages them: its
	// currency is missing until then).
	if code2, stdout, stderr := runCLI(t, environ, "status"); code2 != code || !strings.Contains(stdout, "20261124T000000Z-20261124T010000Z") {
		t.Fatalf("status after the first run: exit %d (the run's %d), stdout %q, stderr %q", code2, code, stdout, stderr)
	}
}
