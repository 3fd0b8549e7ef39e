package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/demo"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
)

// Secrets as the documented environment hands them over; no output may show them.
const (
	envZuoraSecret = "zuora-secret-from-the-environment"
	envERPToken    = "erp-token-from-the-environment"
)

// demoEnviron starts the simulators and returns an environment pointed at
// them and at a fresh stage.
func demoEnviron(t *testing.T) (*demo.Servers, map[string]string) {
	t.Helper()
	return demoEnvironWith(t, zuorasim.Options{})
}

// demoEnvironWith is demoEnviron with the simulated tenant's options.
func demoEnvironWith(t *testing.T, opts zuorasim.Options) (*demo.Servers, map[string]string) {
	t.Helper()
	srv, err := demo.StartTenant(opts, 1, zuorasim.DefaultVolume(), demo.From, demo.To) // every window has both kinds of reject
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv, map[string]string{
		"ZUORA_BASE_URL": srv.ZuoraURL, "ZUORA_CLIENT_ID": demo.ClientID, "ZUORA_CLIENT_SECRET": demo.ClientSecret,
		"ERP_BASE_URL": srv.ERPURL, "ERP_TOKEN": demo.ERPToken, "ETL_STAGE": "file://" + t.TempDir(),
	}
}

// runCLIWithin is runCLI with the context cancelled after d, so that a
// command that should have been refused (a schedule, say) cannot hang the test.
func runCLIWithin(t *testing.T, d time.Duration, environ map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	e := &env{stdout: &out, stderr: &errb, getenv: func(k string) string { return environ[k] }}
	code = run(ctx, args, e)
	return code, out.String(), errb.String()
}

// messages drops the log lines (slog's text handler) from stderr.
func messages(stderr string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if !strings.HasPrefix(l, "time=") {
			out = append(out, l)
		}
	}
	return out
}

// assertOneLineUsageError checks a refusal: status 2, one message line on
// stderr naming want, no resume hint.
func assertOneLineUsageError(t *testing.T, args []string, code int, stdout, stderr string, want ...string) {
	t.Helper()
	lines := messages(stderr)
	if code != exitUsage || len(lines) != 1 {
		t.Errorf("%q: exit %d, stderr %q; want status 2 and one line", args, code, stderr)
		return
	}
	for _, w := range want {
		if !strings.Contains(lines[0], w) {
			t.Errorf("%q: stderr %q does not name %q", args, lines[0], w)
		}
	}
	if strings.Contains(stderr+stdout, "resume with") {
		t.Errorf("%q: a configuration error carries a resume hint: %q", args, stderr)
	}
}

// TestBadValuesAreOneLineErrorsNamingTheFlag (issue 9, item 6): every
// value that makes no sense is refused at start with one line that names the
// flag and what it accepts, status 2.
func TestBadValuesAreOneLineErrorsNamingTheFlag(t *testing.T) {
	environ := map[string]string{"ETL_STAGE": "file://" + t.TempDir(),
		"ZUORA_BASE_URL": "http://127.0.0.1:1", "ZUORA_CLIENT_ID": "id", "ZUORA_CLIENT_SECRET": envZuoraSecret,
		"ERP_BASE_URL": "http://127.0.0.1:1", "ERP_TOKEN": envERPToken}
	t1, t2 := "2026-11-24T00:00:00Z", "2026-11-24T03:00:00Z"
	id := "20261124T000000Z-20261124T010000Z"
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"run", "--window", "0"}, []string{"--window", "1m"}},
		{[]string{"run", "--window", "-1h"}, []string{"--window", "1m"}},
		{[]string{"run", "--window", "1s"}, []string{"--window", "1m"}},
		{[]string{"run", "--window", "1d"}, []string{"--window", "24h"}},
		{[]string{"extract", "--window", "30s", "--from", t1, "--to", t2}, []string{"--window", "1m"}},
		{[]string{"schedule", "--window", "0"}, []string{"--window", "1m"}},
		{[]string{"run", "--settle-lag", "-5m"}, []string{"--settle-lag"}},
		{[]string{"run", "--overlap", "-1m"}, []string{"--overlap"}},
		{[]string{"run", "--breaker", "0"}, []string{"--breaker", "1"}},
		{[]string{"load", "--window", id, "--breaker", "-1"}, []string{"--breaker"}},
		{[]string{"run", "--zuora-concurrency", "0"}, []string{"--zuora-concurrency", "1"}},
		{[]string{"run", "--erp-concurrency", "0"}, []string{"--erp-concurrency", "1"}},
		{[]string{"run", "--slices", "0"}, []string{"--slices", "1"}},
		{[]string{"run", "--max-windows", "0"}, []string{"--max-windows", "1"}},
		{[]string{"run", "now"}, []string{`"now"`}},
		{[]string{"status", "extra"}, []string{`"extra"`}},
		{[]string{"load", "--window", id, "again"}, []string{`"again"`}},
		{[]string{"run", "--since", t2, "--until", t1}, []string{"--since", "--until"}},
		{[]string{"run", "--since", t1, "--until", t1}, []string{"--since", "--until"}},
		{[]string{"run", "--since", "yesterday"}, []string{"--since", "RFC3339"}},
		{[]string{"extract", "--from", t2, "--to", t1}, []string{"--from", "--to"}},
		{[]string{"extract", "--from", t1}, []string{"--to"}},
		{[]string{"schedule", "--cron", "@every 0s"}, []string{"--cron", "1m"}},
		{[]string{"schedule", "--cron", "@every 30s"}, []string{"--cron", "1m"}},
		{[]string{"schedule", "--cron", "0 0 31 2 *"}, []string{"--cron", "never"}},
		{[]string{"run", "--frobnicate"}, []string{"--frobnicate", "run --help"}},
	} {
		code, stdout, stderr := runCLIWithin(t, 5*time.Second, environ, tc.args...)
		assertOneLineUsageError(t, tc.args, code, stdout, stderr, tc.want...)
	}
}

// TestERPBaseURLIsCheckedAtStart (issue 9, item 7): an ERP URL that is not
// http(s) is refused before anything is extracted.
func TestERPBaseURLIsCheckedAtStart(t *testing.T) {
	srv, environ := demoEnviron(t)
	environ["ERP_BASE_URL"] = "ftp://x"
	args := []string{"run", "--since", demo.From.Format(time.RFC3339), "--until", demo.To.Format(time.RFC3339)}
	code, stdout, stderr := runCLI(t, environ, args...)
	assertOneLineUsageError(t, args, code, stdout, stderr, "ERP_BASE_URL", "--erp-base-url")
	if n := len(srv.Zuora.Stats().Requests); n != 0 {
		t.Errorf("Zuora got requests on %d endpoints before the ERP URL was refused", n)
	}
}

// TestConfigurationFailuresAreStatus2 (issue 9, item 8): credentials Zuora
// refuses, a stage scheme nobody serves and missing cloud credentials are
// configuration errors naming the setting to check, without a resume hint.
func TestConfigurationFailuresAreStatus2(t *testing.T) {
	_, environ := demoEnviron(t)
	since := []string{"--since", demo.From.Format(time.RFC3339), "--until", demo.To.Format(time.RFC3339)}

	bad := map[string]string{}
	for k, v := range environ {
		bad[k] = v
	}
	bad["ZUORA_CLIENT_SECRET"] = "not-the-secret"
	args := append([]string{"run"}, since...)
	code, stdout, stderr := runCLI(t, bad, args...)
	assertOneLineUsageError(t, args, code, stdout, stderr, "check", "ZUORA_CLIENT_ID", "ZUORA_CLIENT_SECRET")

	for k, v := range environ {
		bad[k] = v
	}
	bad["ETL_STAGE"] = "ftp://example/x"
	code, stdout, stderr = runCLI(t, bad, args...)
	assertOneLineUsageError(t, args, code, stdout, stderr, "check", "ETL_STAGE")

	// An S3 stage with no credentials anywhere.
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	bad["ETL_STAGE"] = "s3://etl-stage?region=us-east-1&endpoint=http://127.0.0.1:1&use_path_style=true&disable_https=true"
	code, stdout, stderr = runCLIWithin(t, time.Minute, bad, args...)
	assertOneLineUsageError(t, args, code, stdout, stderr, "check", "ETL_STAGE", "credentials")
}

// TestUsageNeverShowsSecrets (issue 9, item 15): with the secrets in the
// environment, no command's --help and no usage error prints them.
func TestUsageNeverShowsSecrets(t *testing.T) {
	environ := map[string]string{"ZUORA_CLIENT_SECRET": envZuoraSecret, "ERP_TOKEN": envERPToken, "ETL_STAGE": "file://" + t.TempDir()}
	for _, c := range commands {
		for _, args := range [][]string{{c.name, "--help"}, {c.name, "--no-such-flag"}, {c.name, "--window", "1d"}} {
			_, stdout, stderr := runCLI(t, environ, args...)
			for _, secret := range []string{envZuoraSecret, envERPToken} {
				if strings.Contains(stdout+stderr, secret) {
					t.Errorf("%q printed the secret %q:\n%s%s", args, secret, stdout, stderr)
				}
			}
		}
	}
}

// TestARefusedERPTokenIsStatus2 (issue 9, item 8): an ERP that refuses the
// token is a setting to fix, not an outage: status 2 naming ERP_BASE_URL and
// ERP_TOKEN, no resume hint, and the token never printed.
func TestARefusedERPTokenIsStatus2(t *testing.T) {
	srv, environ := demoEnviron(t)
	environ["ERP_TOKEN"] = envERPToken // not the token the ERP accepts
	args := []string{"run", "--since", demo.From.Format(time.RFC3339), "--until", demo.To.Format(time.RFC3339)}
	code, stdout, stderr := runCLI(t, environ, args...)
	lines := messages(stderr)
	if code != exitUsage || len(lines) != 1 {
		t.Fatalf("exit %d, stderr %q; want status 2 and one line", code, stderr)
	}
	for _, want := range []string{"check", "ERP_BASE_URL", "ERP_TOKEN", "401"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("stderr %q does not name %q", lines[0], want)
		}
	}
	if strings.Contains(stdout+stderr, "resume with") || strings.Contains(stdout+stderr, envERPToken) {
		t.Errorf("a refused token carries a resume hint or prints the token:\n%s%s", stdout, stderr)
	}
	if n := len(srv.ERP.Documents()); n != 0 {
		t.Errorf("the ERP holds %d documents posted with a refused token", n)
	}
}

// TestAnHourlyCapStopsAtOnceNamingTheLimit (issue 10, item 6): a 429 whose
// RateLimit-Reset lies beyond the retry budget ends the run at once; the first
// line names the limit and when it resets, and the resume command follows.
func TestAnHourlyCapStopsAtOnceNamingTheLimit(t *testing.T) {
	// The cap is per clock hour: on the wall clock, a run in the last seconds
	// of an hour meets a limit that resets within the retry budget, and rightly
	// waits for it. The simulator's clock runs from half past instead.
	shift := time.Now().Truncate(time.Hour).Add(30 * time.Minute).Sub(time.Now())
	srv, environ := demoEnvironWith(t, zuorasim.Options{Now: func() time.Time { return time.Now().Add(shift) }})
	srv.Zuora.SetFaults(zuorasim.Faults{HourlyLimit: 25, NoRetryAfter: true})
	args := []string{"run", "--since", demo.From.Format(time.RFC3339), "--until", demo.To.Format(time.RFC3339)}
	started := time.Now()
	code, _, stderr := runCLI(t, environ, args...)
	lines := messages(stderr)
	if code != exitFailed || len(lines) == 0 {
		t.Fatalf("exit %d, stderr %q; want status 1", code, stderr)
	}
	if took := time.Since(started); took > 30*time.Second {
		t.Errorf("the run took %s: it waited for a limit that resets after the retry budget", took)
	}
	for _, want := range []string{"hourly", "resets", "nothing was lost"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("first line %q does not say %q", lines[0], want)
		}
	}
	if !strings.Contains(stderr, "resume with: zuora-erp-etl ") {
		t.Errorf("no resume command:\n%s", stderr)
	}
}

// TestMarkRefusedSetting: ETL_MARK_REFUSED takes true or false, anything else
// is a one-line configuration error naming it; the flag overrides it, and a
// resume command carries a value that is not the default.
func TestMarkRefusedSetting(t *testing.T) {
	environ := map[string]string{"ETL_MARK_REFUSED": "sometimes", "ETL_STAGE": "file://" + t.TempDir()}
	code, _, stderr := runCLI(t, environ, "run", "--since", "2026-11-24T00:00:00Z")
	if lines := messages(stderr); code != exitUsage || len(lines) != 1 || !strings.Contains(lines[0], "ETL_MARK_REFUSED") {
		t.Fatalf("ETL_MARK_REFUSED=sometimes: exit %d, %q; want 2 and one line naming it", code, stderr)
	}
	s := newSettings("load", &env{getenv: func(k string) string { return map[string]string{"ETL_MARK_REFUSED": "false"}[k] }})
	if err := s.fs.Parse([]string{"--window", "20261124T000000Z-20261124T010000Z"}); err != nil || s.markRefused {
		t.Fatalf("ETL_MARK_REFUSED=false: mark refused %v (%v); want off", s.markRefused, err)
	}
	if got := s.command(pipeline.Step{Command: "run"}); !strings.Contains(got, "--mark-refused=false") {
		t.Errorf("the resume command %q does not carry --mark-refused=false", got)
	}
	s = newSettings("run", &env{getenv: func(string) string { return "" }})
	if err := s.fs.Parse([]string{"--mark-refused=false"}); err != nil || s.markRefused {
		t.Fatalf("--mark-refused=false: %v (%v)", s.markRefused, err)
	}
}
