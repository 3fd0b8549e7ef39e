package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/demo"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// TestVersionIsRecordedInEveryManifest: version prints the build info's
// module version and revision, and each manifest a run writes records it
// instead of "dev".
func TestVersionIsRecordedInEveryManifest(t *testing.T) {
	t.Parallel()
	w := newProcWorld(t, "file")
	v := w.run(t, "version")
	first := strings.TrimPrefix(strings.SplitN(v.stdout.String(), "\n", 2)[0], "zuora-erp-etl ")
	if v.code != exitOK || first == "" || first == "dev" || !strings.Contains(v.stdout.String(), "revision:") || !strings.Contains(v.stdout.String(), "go:") {
		t.Fatalf("version:\n%s", v)
	}
	// The go command stamps the revision of a clone (.git a folder); it does
	// not see a git worktree's .git file.
	if fi, err := os.Stat(filepath.Join("..", "..", ".git")); err == nil && fi.IsDir() && !regexp.MustCompile(`\+[0-9a-f]{12}`).MatchString(first) {
		t.Errorf("version %q lacks the VCS revision of this checkout", first)
	}
	if r := w.run(t, "run", "--since", demo.From.Format(time.RFC3339), "--until", demo.From.Add(time.Hour).Format(time.RFC3339)); r.code != exitRejected {
		t.Fatalf("run: %s", r)
	}
	dir := strings.TrimPrefix(w.stageURL, "file://")
	manifests, _ := filepath.Glob(filepath.Join(dir, "manifests", "*", "*.json"))
	runs, _ := filepath.Glob(filepath.Join(dir, "runs", "*.json"))
	if len(manifests) < 3 || len(runs) != 1 {
		t.Fatalf("manifests %v, run records %v", manifests, runs)
	}
	for _, m := range append(manifests, runs...) {
		data, _ := os.ReadFile(m)
		var rec struct {
			CodeVersion *string `json:"code_version"`
		}
		json.Unmarshal(data, &rec)
		if rec.CodeVersion != nil && *rec.CodeVersion != first {
			t.Errorf("%s records code_version %q; version says %q", m, *rec.CodeVersion, first)
		}
	}
}

// TestHelpListsOnlyTheFlagsACommandUses: status, query, runs and prune list
// no Zuora or ERP setting; run lists them all.
func TestHelpListsOnlyTheFlagsACommandUses(t *testing.T) {
	help := func(args ...string) string {
		code, _, stderr := runCLI(t, nil, append(args, "--help")...)
		if code != exitOK {
			t.Fatalf("%v --help: exit %d", args, code)
		}
		return stderr
	}
	connection := []string{"-zuora-base-url", "-zuora-client-secret", "-erp-base-url", "-erp-token", "-zuora-concurrency", "-erp-concurrency", "-breaker", "-overlap"}
	for _, cmd := range [][]string{{"status"}, {"query"}, {"runs"}, {"prune"}, {"rejects"}, {"rejects", "ack"}} {
		h := help(cmd...)
		for _, f := range connection {
			if strings.Contains(h, "  "+f+" ") || strings.Contains(h, "  "+f+"\n") {
				t.Errorf("%v --help lists %s, which it does not use", cmd, f)
			}
		}
		if !strings.Contains(h, "-stage") {
			t.Errorf("%v --help lacks --stage", cmd)
		}
	}
	if h := help("transform"); strings.Contains(h, "-erp-token") || strings.Contains(h, "-zuora-base-url") || !strings.Contains(h, "-sql-dir") {
		t.Errorf("transform --help:\n%s", h)
	}
	if h := help("extract"); strings.Contains(h, "-erp-token") || !strings.Contains(h, "-zuora-base-url") {
		t.Errorf("extract --help:\n%s", h)
	}
	h := help("run")
	for _, f := range append(connection, "-metrics-file", "-progress-interval", "-config", "-log-format") {
		if !strings.Contains(h, f) {
			t.Errorf("run --help lacks %s", f)
		}
	}
	if h := help("schedule"); !strings.Contains(h, "-listen") || !strings.Contains(h, "-ready-max-age") {
		t.Errorf("schedule --help lacks --listen or --ready-max-age")
	}
}

// TestPruneRemovesOnlyFinishedWindows: prune is a dry run by default; with
// --apply it removes the windows that are complete, marked and hold no
// outstanding reject, keeps the rest, the ledger and state/, and what is
// left still runs and answers.
func TestPruneRemovesOnlyFinishedWindows(t *testing.T) {
	t.Parallel()
	m := newMultiStage(t)
	// Every window of this tenant holds rejects: acknowledge those of the first,
	// and let a run map it again, so that it becomes prunable.
	_, stdout, _ := m.c.run("query", "--format", "csv", `select zuora_id from rejects where "window" = '`+m.windows[0]+`'`)
	ids := strings.Split(strings.TrimSpace(stdout), "\n")[1:]
	for _, id := range ids {
		if code, _, _ := m.c.run("rejects", "ack", "--id", id, "--reason", "test: never to the ERP"); code != exitOK {
			t.Fatalf("ack %s: exit %d", id, code)
		}
	}
	m.clock.Advance(24 * time.Hour) // a day of windows later, so that the first windows may go
	if code, _, _ := m.c.run("run"); code != exitRejected {
		t.Fatalf("the run after the acks: exit %d", code)
	}
	before := demo.From.Add(25 * time.Hour).Format(time.RFC3339)
	code, _, stderr := m.c.run("prune", "--before", demo.From.Add(30*24*time.Hour).Format(time.RFC3339))
	if code != exitUsage || !strings.Contains(stderr, "a day before the high water") {
		t.Fatalf("prune too recent: exit %d %q; want a refusal", code, stderr)
	}
	listing := func() map[string]bool {
		out := map[string]bool{}
		filepath.Walk(m.dir, func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				rel, _ := filepath.Rel(m.dir, p)
				out[filepath.ToSlash(rel)] = true
			}
			return nil
		})
		return out
	}
	all := listing()
	code, stdout, _ = m.c.run("prune", "--before", demo.From.Add(3*time.Hour).Format(time.RFC3339))
	if code != exitOK || !strings.Contains(stdout, "would remove window "+m.windows[0]) || !strings.Contains(stdout, "kept window "+m.windows[1]) ||
		!strings.Contains(stdout, "outstanding reject") || !strings.Contains(stdout, "--apply") {
		t.Fatalf("dry run: exit %d\n%s", code, stdout)
	}
	if after := listing(); len(after) != len(all) {
		t.Fatalf("the dry run changed the stage: %d files, was %d", len(after), len(all))
	}
	code, stdout, _ = m.c.run("prune", "--before", demo.From.Add(3*time.Hour).Format(time.RFC3339), "--apply")
	if code != exitOK || !strings.Contains(stdout, "removed window "+m.windows[0]) {
		t.Fatalf("prune --apply: exit %d\n%s", code, stdout)
	}
	after := listing()
	for k := range all {
		inFirst := strings.Contains(k, "window="+m.windows[0]+"/")
		switch {
		case strings.HasPrefix(k, "state/lease/"): // each command's lease record replaces older ones
		case strings.HasPrefix(k, "ledger/") || strings.HasPrefix(k, "state/"):
			if !after[k] {
				t.Errorf("prune removed %s: the ledger and state/ stay", k)
			}
		case inFirst && after[k]:
			t.Errorf("prune kept %s of the pruned window", k)
		case !inFirst && !strings.HasPrefix(k, "runs/") && !after[k]:
			t.Errorf("prune removed %s of a window it keeps", k)
		}
	}
	// What is left is a working stage: status and a run go on, nothing is posted twice.
	code, stdout, _ = m.c.run("status", "--json")
	var st statusJSON
	strictDecode(t, stdout, &st)
	if len(st.Windows) == 0 || st.Windows[0].Window != m.windows[1] {
		t.Fatalf("status after prune starts at %+v; want the second window", st.Windows[0].Window)
	}
	posts := len(m.srv.ERP.Documents())
	if code, _, _ := m.c.run("run"); code != exitRejected {
		t.Fatalf("run after prune: exit %d", code)
	}
	seen := map[string]bool{}
	for _, d := range m.srv.ERP.Documents() {
		if seen[d.Key] {
			t.Fatalf("document %s posted twice after the prune", d.Key)
		}
		seen[d.Key] = true
	}
	_, _ = posts, before
	_ = stage.RunKey
}
