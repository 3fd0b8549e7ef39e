package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kballard/go-shellquote"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/demo"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/erpsim"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/testutil"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
	mapping "github.com/zuora-erp-etl/zuora-erp-etl/sql"
)

// fastRetry rides out nothing for long: failures surface in milliseconds.
var fastRetry = testutil.FastRetry(4, 10*time.Second)

// cli runs command lines in-process with an environment, a clock and fast retries.
type cli struct {
	t       *testing.T
	environ map[string]string
	now     func() time.Time
}

func (c *cli) run(args ...string) (code int, stdout, stderr string) {
	c.t.Helper()
	var out, errb bytes.Buffer
	p := fastRetry
	e := &env{stdout: &out, stderr: &errb, getenv: func(k string) string { return c.environ[k] }, now: c.now, retry: &p}
	code = runBounded(c.t, args, e)
	c.t.Logf("$ zuora-erp-etl %s\n→ exit %d\n%s%s", shellquote.Join(args...), code, out.String(), tail(errb.String()))
	return code, out.String(), errb.String()
}

// verbatim runs a printed command line exactly as printed.
func (c *cli) verbatim(line string) (code int, stdout, stderr string) {
	c.t.Helper()
	words, err := shellquote.Split(line)
	if err != nil || len(words) < 2 || words[0] != "zuora-erp-etl" {
		c.t.Fatalf("printed command %q: %v", line, err)
	}
	return c.run(words[1:]...)
}

// tail is stderr without the log lines, for test logs.
func tail(stderr string) string { return strings.Join(messages(stderr), "\n") }

// printed finds the command a message advises after prefix ("resume with: ").
func printed(t *testing.T, out, prefix string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if _, after, ok := strings.Cut(l, prefix); ok {
			return strings.TrimSuffix(after, " (every step is safe to repeat)")
		}
	}
	t.Fatalf("no %q in:\n%s", prefix, out)
	return ""
}

// acceptKWD returns a --sql-dir whose currencies.csv also maps KWD.
func acceptKWD(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	csv, err := mapping.Files.ReadFile("currencies.csv")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "currencies.csv"), append(csv, []byte("KWD,Kuwaiti dinar\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// secretsOnly is an environment holding nothing but the two secrets.
func secretsOnly() map[string]string {
	return map[string]string{"ZUORA_CLIENT_SECRET": demo.ClientSecret, "ERP_TOKEN": demo.ERPToken}
}

var (
	from = demo.From.Format(time.RFC3339)
	to   = demo.To.Format(time.RFC3339)
	w1   = "20261124T000000Z-20261124T010000Z"
)

// TestResumeCommandRunsVerbatimOnTheSameStageAndSQLDir (issue 9, item 10):
// after an ERP outage on a stage and SQL folder given by flag and
// environment, the printed command, run verbatim with only the secrets in
// the environment, acts on that stage with that mapping.
func TestResumeCommandRunsVerbatimOnTheSameStageAndSQLDir(t *testing.T) {
	srv, environ := demoEnviron(t)
	elsewhere := "file://" + t.TempDir()
	delete(environ, "ETL_STAGE")
	environ["ETL_SQL_DIR"] = acceptKWD(t)
	c := &cli{t: t, environ: environ}
	srv.ERP.SetFaults(erpsim.Faults{Outage: true})
	code, _, stderr := c.run("run", "--stage", elsewhere, "--since", from, "--until", to, "--breaker", "2")
	if code != exitFailed {
		t.Fatalf("run during an ERP outage: exit %d; want 1", code)
	}
	resume := printed(t, stderr, "resume with: ")
	for _, want := range []string{"zuora-erp-etl load --window " + w1, "--stage=" + elsewhere, "--sql-dir=" + environ["ETL_SQL_DIR"], "--breaker=2", "--zuora-base-url=" + srv.ZuoraURL} {
		if !strings.Contains(resume, want) {
			t.Errorf("resume command %q lacks %q", resume, want)
		}
	}
	for _, secret := range []string{demo.ClientSecret, demo.ERPToken} {
		if strings.Contains(stderr, secret) {
			t.Errorf("a secret reached the message: %q", stderr)
		}
	}

	srv.ERP.SetFaults(erpsim.Faults{})
	c.environ = secretsOnly()
	code, stdout, _ := c.verbatim(resume)
	if code != exitRejected || !strings.Contains(stdout, w1) {
		t.Fatalf("the printed load: exit %d; want 3 (the window has rejects) and a report of %s", code, w1)
	}
	if _, err := os.Stat("stage"); err == nil {
		t.Error("the printed command created ./stage: it did not act on the run's stage")
	}
	code, stdout, _ = c.run("query", "--stage", elsewhere, "--format", "csv", `select count(*) from ledger where currency = 'KWD' and outcome = 'created'`)
	if code != exitOK || strings.HasSuffix(strings.TrimSpace(stdout), "\n0") {
		t.Fatalf("no KWD document was posted: the printed command did not use the SQL folder (exit %d):\n%s", code, stdout)
	}
}

// TestREADMERecoverySequences (issue 9, item 13): each sequence the README's
// "Recovering" section advises, run verbatim, ends as the README says.
func TestREADMERecoverySequences(t *testing.T) {
	t.Parallel()
	t.Run("first run failed", func(t *testing.T) {
		srv, environ := demoEnviron(t)
		c := &cli{t: t, environ: environ}
		srv.Zuora.SetFaults(zuorasim.Faults{Status503Every: 1})
		code, stdout, stderr := c.run("run", "--since", from, "--until", to)
		if code != exitFailed || strings.Contains(stdout, "no window was due") || !strings.Contains(stdout, w1) || !strings.Contains(stdout, "failed at extract") {
			t.Fatalf("first run with Zuora down: exit %d; want 1 and a report naming %s as failed", code, w1)
		}
		if first := messages(stderr)[0]; !strings.HasPrefix(first, "zuora-erp-etl: extract window "+w1+": zuora: ") || !strings.Contains(first, "HTTP 503") {
			t.Errorf("first line %q does not start with its context, then the root cause", first)
		}
		srv.Zuora.SetFaults(zuorasim.Faults{})
		resume := printed(t, stderr, "resume with: ")
		if strings.Contains(resume, "--since") {
			t.Errorf("resume %q repeats --since: the stage records its start", resume)
		}
		code, stdout, _ = c.verbatim(resume)
		if code != exitRejected || !strings.Contains(stdout, w1) || !strings.Contains(stdout, "3 window(s) attempted") {
			t.Fatalf("the printed run: exit %d; want 3 with the three windows from --since", code)
		}
		// A later --since is refused, with the command that backfills instead.
		code, _, stderr = c.run("run", "--since", demo.From.Add(-time.Hour).Format(time.RFC3339))
		if code != exitUsage || !strings.Contains(stderr, "zuora-erp-etl extract --from") {
			t.Fatalf("run --since before the stage's start: exit %d, %q; want 2 naming extract", code, stderr)
		}
	})
	t.Run("no start point", func(t *testing.T) {
		_, environ := demoEnviron(t)
		c := &cli{t: t, environ: environ}
		code, _, stderr := c.run("run")
		if code != exitUsage || !strings.Contains(stderr, "--since") || !strings.Contains(stderr, "no start point") {
			t.Fatalf("run on a new stage without --since: exit %d, %q; want 2 naming --since", code, stderr)
		}
		dir := strings.TrimPrefix(environ["ETL_STAGE"], "file://")
		if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
			t.Errorf("the refused run left %v in the stage folder (%v)", entries, err)
		}
	})
	t.Run("future windows", func(t *testing.T) {
		srv, environ := demoEnviron(t)
		now := demo.From.Add(76 * time.Minute)
		c := &cli{t: t, environ: environ, now: func() time.Time { return now }}
		code, stdout, _ := c.run("run", "--since", from, "--until", to)
		if code != exitRejected || !strings.Contains(stdout, "later than now minus the settle lag") || strings.Contains(stdout, "20261124T020000Z") {
			t.Fatalf("run with --until in the future: exit %d; want 3, a note and no window after now minus the settle lag", code)
		}
		now = demo.To.Add(10 * time.Minute)
		code, stdout, _ = c.run("run", "--until", to)
		if code != exitRejected || !strings.Contains(stdout, "20261124T011100Z-20261124T020000Z") {
			t.Fatalf("the next run: exit %d; want 3 and the windows from where the first stopped", code)
		}
		posted := map[string]int{}
		for _, d := range srv.ERP.Documents() {
			if posted[d.Key]++; posted[d.Key] > 1 {
				t.Fatalf("document %s posted twice", d.Key)
			}
		}
	})
	t.Run("windows left for the next run", func(t *testing.T) {
		_, environ := demoEnviron(t)
		c := &cli{t: t, environ: environ}
		code, stdout, stderr := c.run("run", "--since", from, "--until", to, "--max-windows", "1")
		if code != exitRejected || !strings.Contains(stdout, "2 more window(s) are due") {
			t.Fatalf("run --max-windows 1 over three windows: exit %d; want 3 (rejects) and a note of the two left", code)
		}
		next := printed(t, stderr, "or now: ")
		if !strings.Contains(next, "--max-windows=1") || !strings.Contains(next, "--until "+to) {
			t.Errorf("the continuing command %q lacks --max-windows or --until", next)
		}
		c.verbatim(next)
		code, stdout, stderr = c.verbatim(next)
		if code != exitRejected || strings.Contains(stdout, "more window(s) are due") || strings.Contains(stderr, "more window(s)") {
			t.Fatalf("third run: exit %d; want 3 and nothing left", code)
		}
		code, _, stderr = c.run("extract", "--from", from, "--to", to, "--max-windows", "2", "--force")
		next = printed(t, stderr, "resume with: ")
		if code != exitFailed || !strings.HasPrefix(next, "zuora-erp-etl extract --from 2026-11-24T02:00:00Z --to "+to+" --force ") || !strings.Contains(next, " --max-windows=2 ") {
			t.Fatalf("capped backfill: exit %d, continue with %q; want 1 and the rest of the range", code, next)
		}
		if code, _, _ = c.verbatim(next); code != exitOK {
			t.Fatalf("the rest of the backfill: exit %d", code)
		}
	})
	t.Run("after an ERP outage", func(t *testing.T) {
		srv, environ := demoEnviron(t)
		c := &cli{t: t, environ: environ}
		srv.ERP.SetFaults(erpsim.Faults{Outage: true})
		code, _, stderr := c.run("run", "--since", from, "--until", to)
		resume := printed(t, stderr, "resume with: ")
		if code != exitFailed || !strings.HasPrefix(resume, "zuora-erp-etl load --window "+w1+" ") {
			t.Fatalf("run during an ERP outage: exit %d, resume %q; want 1 and load --window %s", code, resume, w1)
		}
		srv.ERP.SetFaults(erpsim.Faults{})
		if code, _, _ = c.verbatim(resume); code != exitRejected {
			t.Fatalf("the printed load: exit %d; want 3 (the window has mapping rejects)", code)
		}
		if code, _, _ = c.run("run", "--until", to); code != exitRejected {
			t.Fatalf("the next run: exit %d; want 3", code)
		}
	})
	t.Run("mapping fixed", func(t *testing.T) {
		_, environ := demoEnviron(t)
		c := &cli{t: t, environ: environ}
		if code, _, _ := c.run("run", "--since", from, "--until", to); code != exitRejected {
			t.Fatalf("first run: exit %d; want 3", code)
		}
		dir := acceptKWD(t)
		code, stdout, _ := c.run("transform", "--window", w1, "--sql-dir", dir)
		if code != exitRejected {
			t.Fatalf("transform with KWD mapped: exit %d; want 3 (documents without an ERP account remain)", code)
		}
		next := printed(t, stdout, "post the documents with: ")
		if !strings.HasPrefix(next, "zuora-erp-etl load --window "+w1+" ") || !strings.Contains(next, " --sql-dir="+dir+" ") || strings.Count(next, "--window") != 1 {
			t.Fatalf("transform advises %q", next)
		}
		if code, _, _ = c.verbatim(next); code != exitRejected {
			t.Fatalf("the advised load: exit %d; want 3", code)
		}
		code, stdout, _ = c.run("query", "--format", "csv", `select count(*) from ledger where currency = 'KWD' and outcome = 'created' and "window" = '`+w1+`'`)
		if code != exitOK || strings.HasSuffix(strings.TrimSpace(stdout), "\n0") {
			t.Fatalf("the advised load posted no KWD document:\n%s", stdout)
		}
	})
}

// TestAFailureSaysItsContextOnce (issue 11, item 5): a failed step's message
// names its window once and says once what was kept, the root cause first.
func TestAFailureSaysItsContextOnce(t *testing.T) {
	srv, environ := demoEnviron(t)
	c := &cli{t: t, environ: environ}
	srv.Zuora.SetFaults(zuorasim.Faults{Status503Every: 1})
	code, _, stderr := c.run("run", "--since", from, "--until", to)
	if code != exitFailed {
		t.Fatalf("run with Zuora down: exit %d; want 1", code)
	}
	var said []string
	for _, l := range messages(stderr) {
		if !strings.HasPrefix(l, "resume with: ") {
			said = append(said, l)
		}
	}
	text := strings.Join(said, "\n")
	if n := strings.Count(text, w1); n != 1 {
		t.Errorf("the failure names window %s %d times; want once:\n%s", w1, n, text)
	}
	if n := strings.Count(text, "kept:"); n != 1 {
		t.Errorf("the failure says %d times what was kept; want once:\n%s", n, text)
	}
	if !strings.HasPrefix(said[0], "zuora-erp-etl: extract window "+w1+": zuora: ") || !strings.Contains(text, "detail: ") {
		t.Errorf("first line %q: want the step and window, then Zuora's answer, and the chain on a detail line", said[0])
	}
}
