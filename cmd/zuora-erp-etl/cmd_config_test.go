package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/config"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/demo"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/erpsim"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/s3test"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// showRows parses config show into setting → (value, source).
func showRows(t *testing.T, out string) map[string][2]string {
	t.Helper()
	rows := map[string][2]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) < 3 {
			t.Fatalf("config show line %q: want setting, value, source", l)
		}
		// The value may hold spaces ("******** (set)"): the source is the last one or two fields.
		src := f[len(f)-1]
		rest := f[1 : len(f)-1]
		if n := len(f); n >= 4 && (f[n-2] == "env" || f[n-2] == "file") {
			src = f[n-2] + " " + f[n-1]
			rest = f[1 : n-2]
		}
		rows[f[0]] = [2]string{strings.Join(rest, " "), src}
	}
	return rows
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigPrecedence: a flag beats the environment, which beats the file,
// which beats the default; config show says which won, masks secrets, and a
// secret may come from a file.
func TestConfigPrecedence(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "zuora-secret")
	if err := os.WriteFile(secretFile, []byte("from-a-secret-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, `
stage: file:///from/the/file
zuora-base-url: https://file.example.com
zuora-client-id: file-client
erp-concurrency: 7
breaker: 9
doc-types: [invoice, payment]
status: ["payments=Processed,Posted", invoices=Posted]
cron: "15 * * * *"
`)
	environ := map[string]string{
		"ETL_CONFIG":               cfg,
		"ZUORA_BASE_URL":           "https://env.example.com",
		"ZUORA_CLIENT_SECRET_FILE": secretFile,
		"ERP_TOKEN":                "erp-token-from-env",
	}
	code, stdout, stderr := runCLI(t, environ, "config", "show", "--breaker", "3")
	if code != exitOK {
		t.Fatalf("config show: exit %d: %s", code, stderr)
	}
	rows := showRows(t, stdout)
	for name, want := range map[string][2]string{
		"breaker":             {"3", "flag"},
		"zuora-base-url":      {"https://env.example.com", "env ZUORA_BASE_URL"},
		"stage":               {"file:///from/the/file", "file " + cfg + ":2"},
		"zuora-client-id":     {"file-client", "file " + cfg + ":4"},
		"erp-concurrency":     {"7", "file " + cfg + ":5"},
		"doc-types":           {"invoice,payment", "file " + cfg + ":7"},
		"status":              {"invoices=Posted payments=Processed,Posted", "file " + cfg + ":8"},
		"cron":                {"15 * * * *", "file " + cfg + ":9"},
		"zuora-client-secret": {"******** (set)", "env ZUORA_CLIENT_SECRET_FILE"},
		"erp-token":           {"******** (set)", "env ERP_TOKEN"},
		"overlap":             {"10m0s", "default"},
	} {
		if got := rows[name]; got != want {
			t.Errorf("%s: config show says %q from %q; want %q from %q", name, got[0], got[1], want[0], want[1])
		}
	}
	for _, secret := range []string{"from-a-secret-file", "erp-token-from-env"} {
		if strings.Contains(stdout+stderr, secret) {
			t.Errorf("config show printed the secret %q", secret)
		}
	}

	// The environment wins over the file, the flag over both.
	environ["ETL_STAGE"] = "file:///from/the/env"
	_, stdout, _ = runCLI(t, environ, "config", "show")
	if got := showRows(t, stdout)["stage"]; got != [2]string{"file:///from/the/env", "env ETL_STAGE"} {
		t.Errorf("stage with ETL_STAGE set: %q", got)
	}
	_, stdout, _ = runCLI(t, environ, "config", "show", "--stage", "file:///from/the/flag")
	if got := showRows(t, stdout)["stage"]; got != [2]string{"file:///from/the/flag", "flag"} {
		t.Errorf("stage with --stage: %q", got)
	}
}

// TestConfigFileRefusals: an unknown key is an error naming it (exit 2); a
// bad value names its line; a secret in the file is taken with a warning; a
// secret file that cannot be read, or one set besides the variable, is refused.
func TestConfigFileRefusals(t *testing.T) {
	unknown := writeConfig(t, "stage: mem://x\nzuora-url: https://typo.example.com\n")
	code, _, stderr := runCLI(t, nil, "config", "show", "--config", unknown)
	if code != exitUsage || !strings.Contains(stderr, `unknown setting "zuora-url"`) || !strings.Contains(stderr, unknown+":2") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("unknown key: exit %d, stderr %q; want one line naming zuora-url and its line, status 2", code, stderr)
	}
	for _, body := range []string{"breaker: many\n", "window: 1d\n", "stage: {a: b}\n", "- stage\n"} {
		code, _, stderr := runCLI(t, nil, "run", "--config", writeConfig(t, body))
		if code != exitUsage || !strings.Contains(stderr, "config") {
			t.Errorf("config %q: exit %d, stderr %q; want status 2 naming the file", body, code, stderr)
		}
	}
	plain := writeConfig(t, "zuora-client-secret: plain-text-secret\nstage: mem://plain\n")
	code, stdout, stderr := runCLI(t, nil, "config", "show", "--config", plain)
	if code != exitOK || !strings.Contains(stderr, "warning") || !strings.Contains(stderr, "ZUORA_CLIENT_SECRET_FILE") ||
		strings.Contains(stdout+stderr, "plain-text-secret") || showRows(t, stdout)["zuora-client-secret"][0] != "******** (set)" {
		t.Errorf("plain-text secret: exit %d, stdout %q, stderr %q; want it taken, masked, with a warning", code, stdout, stderr)
	}
	code, _, stderr = runCLI(t, map[string]string{"ERP_TOKEN_FILE": filepath.Join(t.TempDir(), "missing")}, "config", "show")
	if code != exitUsage || !strings.Contains(stderr, "ERP_TOKEN_FILE") {
		t.Errorf("missing secret file: exit %d, stderr %q; want status 2 naming ERP_TOKEN_FILE", code, stderr)
	}
	f := filepath.Join(t.TempDir(), "token")
	os.WriteFile(f, []byte("x"), 0o600)
	code, _, stderr = runCLI(t, map[string]string{"ERP_TOKEN_FILE": f, "ERP_TOKEN": "y"}, "config", "show")
	if code != exitUsage || !strings.Contains(stderr, "both ERP_TOKEN and ERP_TOKEN_FILE") {
		t.Errorf("both set: exit %d, stderr %q; want status 2", code, stderr)
	}
}

// TestExampleConfigIsReal: examples/config.yaml parses, every key is a real
// flag of run or schedule, and a comment line documents every setting.
func TestExampleConfigIsReal(t *testing.T) {
	path := filepath.Join("..", "..", "examples", "config.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := config.Parse(path, data, func(k string) bool { return settingNames[k] })
	if err != nil {
		t.Fatalf("the example does not parse: %v", err)
	}
	if len(f.Values) < 15 {
		t.Fatalf("the example sets only %d settings", len(f.Values))
	}
	sched := newSettings("schedule", &env{getenv: func(string) string { return "" }})
	lines := strings.Split(string(data), "\n")
	for _, v := range f.Values {
		if sched.fs.Lookup(v.Key) == nil {
			t.Errorf("%s:%d: %s is not a flag of schedule", path, v.Line, v.Key)
		}
		documented := false
		for i := v.Line - 2; i >= 0 && strings.TrimSpace(lines[i]) != ""; i-- {
			documented = documented || strings.HasPrefix(strings.TrimSpace(lines[i]), "#")
		}
		if !documented {
			t.Errorf("%s:%d: %s has no comment above it", path, v.Line, v.Key)
		}
	}
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil || len(raw) != len(f.Values) {
		t.Fatalf("yaml sees %d keys (%v); the parser %d", len(raw), err, len(f.Values))
	}
	// The example runs as a configuration: config show takes it whole.
	code, _, stderr := runCLI(t, nil, "config", "show", "--config", path)
	if code != exitOK {
		t.Fatalf("config show --config %s: exit %d: %s", path, code, stderr)
	}
}

// TestConfigCheck runs config check against the simulators: every check
// passes and nothing is left behind; then each kind of failure gives its status.
func TestConfigCheck(t *testing.T) {
	srv, environ := demoEnviron(t)
	stageDir := filepath.Join(t.TempDir(), "new-stage")
	environ["ETL_STAGE"] = "file://" + stageDir
	c := &cli{t: t, environ: environ}
	code, stdout, _ := c.run("config", "check")
	if code != exitOK || strings.Count(stdout, "ok    ") != 5 || !strings.Contains(stdout, "nothing was changed") {
		t.Fatalf("config check: exit %d\n%s\nwant five checks passed", code, stdout)
	}
	if _, err := os.Stat(stageDir); !os.IsNotExist(err) {
		t.Errorf("config check created the stage folder (%v)", err)
	}
	if n := len(srv.ERP.Documents()); n != 0 {
		t.Errorf("config check made %d ERP documents", n)
	}
	// On an existing stage, the probe leaves nothing.
	existing := t.TempDir()
	environ["ETL_STAGE"] = "file://" + existing
	if code, stdout, _ := c.run("config", "check"); code != exitOK {
		t.Fatalf("config check on an existing folder: exit %d\n%s", code, stdout)
	}
	if left, _ := os.ReadDir(existing); len(left) != 0 {
		t.Errorf("config check left %v in the stage", left)
	}

	fails := func(name string, change map[string]string, args []string, want int, says string) {
		t.Helper()
		env := map[string]string{}
		for k, v := range environ {
			env[k] = v
		}
		for k, v := range change {
			env[k] = v
		}
		c := &cli{t: t, environ: env}
		code, stdout, stderr := c.run(append([]string{"config", "check"}, args...)...)
		if code != want || !strings.Contains(stdout+stderr, says) {
			t.Errorf("%s: exit %d, want %d and %q in:\n%s%s", name, code, want, says, stdout, stderr)
		}
		if strings.Contains(stdout+stderr, "demo-client-secret") || strings.Contains(stdout+stderr, "wrong-secret") {
			t.Errorf("%s: a secret reached the output", name)
		}
	}
	fails("a bad setting", nil, []string{"--zuora-concurrency", "0"}, exitUsage, "--zuora-concurrency")
	fails("no ERP token", map[string]string{"ERP_TOKEN": ""}, nil, exitUsage, "ERP_TOKEN")
	fails("Zuora unreachable", map[string]string{"ZUORA_BASE_URL": "http://127.0.0.1:1"}, nil, exitFailed, "FAIL  zuora")
	fails("Zuora refuses the secret", map[string]string{"ZUORA_CLIENT_SECRET": "wrong-secret"}, nil, exitUsage, "FAIL  zuora")
	fails("the ERP refuses the token", map[string]string{"ERP_TOKEN": "wrong-secret"}, nil, exitUsage, "FAIL  erp")
	fails("the ERP unreachable", map[string]string{"ERP_BASE_URL": "http://127.0.0.1:1"}, nil, exitFailed, "FAIL  erp")
	blocker := filepath.Join(t.TempDir(), "a-file")
	os.WriteFile(blocker, []byte("x"), 0o600)
	fails("a stage folder under a file", map[string]string{"ETL_STAGE": "file://" + blocker + "/stage"}, nil, exitUsage, "check ETL_STAGE")
	noBucket := strings.Replace(s3test.StageURL(t), "s3://"+s3test.Bucket+"?", "s3://no-such-bucket?", 1)
	fails("a stage that refuses writes", map[string]string{"ETL_STAGE": noBucket}, nil, exitFailed, "FAIL  stage")

	// A lease held by another writer: exit 4, naming it and how to break it.
	held := t.TempDir()
	holdLease(t, "file://"+held)
	fails("the lease held", map[string]string{"ETL_STAGE": "file://" + held}, nil, exitLeaseHeld, "lease break")
	_ = demo.ClientID
}

// holdLease takes the stage's lease as another writer would, until the test ends.
func holdLease(t *testing.T, stageURL string) {
	t.Helper()
	st, err := stage.Open(context.Background(), stageURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	l, err := st.AcquireLease(context.Background(), stage.LeaseOptions{Holder: stage.Holder{RunID: "run-other", Command: "run"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Release(context.Background()) })
}

// TestResumeCarriesTheConfigFile: a failed run's resume command names the
// configuration file rather than repeating its settings, and runs as printed.
func TestResumeCarriesTheConfigFile(t *testing.T) {
	srv, environ := demoEnviron(t)
	cfg := writeConfig(t, "stage: "+environ["ETL_STAGE"]+"\nerp-base-url: "+srv.ERPURL+"\nerp-concurrency: 3\n")
	delete(environ, "ETL_STAGE")
	delete(environ, "ERP_BASE_URL")
	environ["ETL_CONFIG"] = cfg
	srv.ERP.SetFaults(erpsim.Faults{Outage: true})
	c := &cli{t: t, environ: environ}
	code, _, stderr := c.run("run", "--since", demo.From.Format(time.RFC3339), "--until", demo.From.Add(time.Hour).Format(time.RFC3339), "--breaker", "1")
	next := printed(t, stderr, "resume with: ")
	if code != exitFailed || !strings.Contains(next, "--config="+cfg) || strings.Contains(next, "erp-concurrency") || strings.Contains(next, "--stage") {
		t.Fatalf("exit %d, resume with %q; want --config and not the file's settings", code, next)
	}
	srv.ERP.SetFaults(erpsim.Faults{})
	delete(environ, "ETL_CONFIG")
	if code, _, _ := c.verbatim(next); code != exitRejected {
		t.Fatalf("the printed resume: exit %d", code)
	}
}
