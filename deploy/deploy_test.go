// Package deploy holds the deployment examples (systemd units, a Kubernetes
// CronJob, a Dockerfile and a docker-compose file); its test checks each
// with the tool that exists offline: systemd-analyze, a YAML parse with the
// fields a deployment relies on, and buildkit's Dockerfile parser.
package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"go.yaml.in/yaml/v3"
)

// TestSystemdUnits verifies the units with systemd-analyze where it exists
// (a warning fails the test too), else parses them: every line a section, a
// comment or a key=value, and the keys a deployment needs.
func TestSystemdUnits(t *testing.T) {
	units, _ := filepath.Glob("systemd/*.service")
	timers, _ := filepath.Glob("systemd/*.timer")
	if len(units) != 2 || len(timers) != 1 {
		t.Fatalf("units %v, timers %v", units, timers)
	}
	for _, u := range append(units, timers...) {
		keys := parseUnit(t, u)
		switch {
		case strings.HasSuffix(u, ".timer"):
			if keys["Timer.OnCalendar"] == "" || keys["Timer.Persistent"] != "true" || keys["Timer.Unit"] != "zuora-erp-etl.service" {
				t.Errorf("%s: %v", u, keys)
			}
		default:
			exec := keys["Service.ExecStart"]
			if !strings.HasPrefix(exec, "/usr/local/bin/zuora-erp-etl ") || keys["Service.User"] == "" || keys["Service.KillSignal"] != "SIGTERM" ||
				!strings.Contains(keys["Service.Environment"], "ZUORA_CLIENT_SECRET_FILE=") {
				t.Errorf("%s: %v", u, keys)
			}
		}
	}
	if keys := parseUnit(t, "systemd/zuora-erp-etl.service"); !strings.Contains(keys["Service.ExecStart"], "--metrics-file") {
		t.Errorf("the timer's unit writes no textfile metrics")
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze is not installed: the units were parsed, not verified")
		return
	}
	// verify wants the binary to exist: point the units at an executable of ours.
	dir := t.TempDir()
	bin := filepath.Join(dir, "zuora-erp-etl")
	os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755)
	var args []string
	for _, u := range append(units, timers...) {
		data, _ := os.ReadFile(u)
		dst := filepath.Join(dir, filepath.Base(u))
		os.WriteFile(dst, bytes.ReplaceAll(data, []byte("/usr/local/bin/zuora-erp-etl"), []byte(bin)), 0o644)
		args = append(args, dst)
	}
	out, err := exec.Command(analyze, append([]string{"verify"}, args...)...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// parseUnit reads a unit file into Section.Key → value (repeated keys joined by spaces).
func parseUnit(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	section := ""
	for i, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			section = strings.Trim(l, "[]")
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: %q is neither a section nor key=value", path, i+1, l)
			}
			k = section + "." + k
			keys[k] = strings.TrimSpace(keys[k] + " " + v)
		}
	}
	return keys
}

// TestKubernetesCronJob parses the manifests and checks what the CronJob
// relies on: no two runs at once, the secret volume read by the _FILE
// variables, the configuration file, and the textfile metrics on a hostPath.
func TestKubernetesCronJob(t *testing.T) {
	data, err := os.ReadFile("kubernetes/cronjob.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	docs := map[string]map[string]any{}
	for {
		var d map[string]any
		if err := dec.Decode(&d); err != nil {
			break
		}
		docs[d["kind"].(string)] = d
	}
	cj, cm := docs["CronJob"], docs["ConfigMap"]
	if cj == nil || cm == nil {
		t.Fatalf("want a CronJob and a ConfigMap; got %v", slices.Collect(mapKeys(docs)))
	}
	at := func(v any, path ...string) any {
		for _, p := range path {
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: no %s", path, p)
			}
			v = m[p]
		}
		return v
	}
	if at(cj, "apiVersion") != "batch/v1" || at(cj, "spec", "concurrencyPolicy") != "Forbid" || at(cj, "spec", "schedule") == nil {
		t.Errorf("CronJob spec: %v", at(cj, "spec"))
	}
	pod := at(cj, "spec", "jobTemplate", "spec", "template", "spec")
	c := at(pod, "containers").([]any)[0].(map[string]any)
	env := map[string]string{}
	for _, e := range c["env"].([]any) {
		m := e.(map[string]any)
		env[m["name"].(string)], _ = m["value"].(string)
	}
	mounts := map[string]string{}
	for _, v := range c["volumeMounts"].([]any) {
		m := v.(map[string]any)
		mounts[m["name"].(string)] = m["mountPath"].(string)
	}
	volumes := map[string]map[string]any{}
	for _, v := range at(pod, "volumes").([]any) {
		m := v.(map[string]any)
		volumes[m["name"].(string)] = m
	}
	if s := volumes["secrets"]; s == nil || at(s, "secret", "secretName") == nil {
		t.Fatal("no secret volume")
	}
	for _, v := range []string{"ZUORA_CLIENT_SECRET_FILE", "ERP_TOKEN_FILE"} {
		if !strings.HasPrefix(env[v], mounts["secrets"]+"/") {
			t.Errorf("%s=%q is not in the secret volume mounted at %s", v, env[v], mounts["secrets"])
		}
	}
	for _, v := range []string{"ZUORA_CLIENT_SECRET", "ERP_TOKEN"} {
		if _, plain := env[v]; plain {
			t.Errorf("%s is set in plain text", v)
		}
	}
	args := strings.Join(toStrings(c["args"]), " ")
	if !strings.Contains(args, "run") || !strings.Contains(args, "--metrics-file="+mounts["textfile"]+"/") || at(volumes["textfile"], "hostPath", "path") == nil {
		t.Errorf("textfile metrics: args %q, mounts %v, volume %v", args, mounts, volumes["textfile"])
	}
	if !strings.HasPrefix(env["ETL_CONFIG"], mounts["config"]+"/") || at(volumes["config"], "configMap", "name") != at(cm, "metadata", "name") {
		t.Errorf("ETL_CONFIG %q and the ConfigMap volume %v", env["ETL_CONFIG"], volumes["config"])
	}
	if cfg, _ := at(cm, "data", "config.yaml").(string); !strings.Contains(cfg, "stage:") || strings.Contains(cfg, "secret") || strings.Contains(cfg, "token") {
		t.Errorf("the ConfigMap's config.yaml: %q", cfg)
	}
	// DuckDB spills a month-end hour's 1.2GB to a folder of the pod's own,
	// sized, not to the container's root file system.
	if env["ETL_DUCKDB_TEMP_DIR"] == "" || env["ETL_DUCKDB_TEMP_DIR"] != mounts["spill"] || at(volumes["spill"], "emptyDir", "sizeLimit") == nil ||
		at(c, "resources", "limits", "ephemeral-storage") == nil {
		t.Errorf("spill folder: ETL_DUCKDB_TEMP_DIR %q, mounts %v, volume %v, resources %v", env["ETL_DUCKDB_TEMP_DIR"], mounts, volumes["spill"], c["resources"])
	}
}

// TestDockerfile parses the Dockerfile with buildkit's parser: a multi-stage
// build with cgo on, a glibc runtime stage that copies the binary from the
// builder, runs as a user and has an entrypoint.
func TestDockerfile(t *testing.T) {
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("the Dockerfile does not parse: %v", err)
	}
	var stages []string
	var cgo, copyFrom, user, entrypoint, build bool
	for _, n := range res.AST.Children {
		words := []string{}
		for x := n.Next; x != nil; x = x.Next {
			words = append(words, x.Value)
		}
		line := strings.Join(words, " ")
		switch strings.ToLower(n.Value) {
		case "from":
			stages = append(stages, line)
		case "env":
			cgo = cgo || strings.Contains(line, "CGO_ENABLED 1") || strings.Contains(line, "CGO_ENABLED=1")
		case "run":
			build = build || strings.Contains(line, "go build") && strings.Contains(line, "./cmd/zuora-erp-etl")
		case "copy":
			copyFrom = copyFrom || slices.Contains(n.Flags, "--from=build")
		case "user":
			user = line != "root" && line != "0"
		case "entrypoint":
			entrypoint = strings.Contains(n.Original, "zuora-erp-etl")
		}
	}
	if len(stages) < 2 || !strings.Contains(stages[0], "golang") || strings.Contains(stages[len(stages)-1], "alpine") || strings.Contains(stages[len(stages)-1], "scratch") {
		t.Errorf("stages %v: want a Go builder and a glibc runtime (DuckDB links libstdc++)", stages)
	}
	if !cgo || !build || !copyFrom || !user || !entrypoint {
		t.Errorf("cgo %v, go build %v, COPY --from=build %v, USER %v, ENTRYPOINT %v", cgo, build, copyFrom, user, entrypoint)
	}
	for _, w := range res.Warnings {
		t.Errorf("Dockerfile warning: %s", w.Short)
	}
}

// TestDockerCompose parses docker-compose.yml: schedule against the simulators,
// its secrets from files, its health and metrics port published.
func TestDockerCompose(t *testing.T) {
	data, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]struct {
			Build       map[string]string `yaml:"build"`
			Command     any               `yaml:"command"`
			Entrypoint  []string          `yaml:"entrypoint"`
			Environment map[string]string `yaml:"environment"`
			Secrets     []string          `yaml:"secrets"`
			Ports       []string          `yaml:"ports"`
			DependsOn   []string          `yaml:"depends_on"`
		} `yaml:"services"`
		Secrets map[string]struct {
			File string `yaml:"file"`
		} `yaml:"secrets"`
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	sim, etl := c.Services["sim"], c.Services["etl"]
	if !strings.Contains(strings.Join(toStrings(sim.Command), " "), "sim") || sim.Build["dockerfile"] != "deploy/Dockerfile" {
		t.Errorf("sim service: %+v", sim)
	}
	cmd := strings.Join(toStrings(etl.Command), " ")
	if !strings.Contains(cmd, "schedule") || !strings.Contains(cmd, "--listen :9090") || !slices.Contains(etl.Ports, "9090:9090") || !slices.Contains(etl.DependsOn, "sim") {
		t.Errorf("etl service: command %q, ports %v", cmd, etl.Ports)
	}
	if !strings.Contains(etl.Environment["ZUORA_BASE_URL"], "sim:8081") || !strings.Contains(etl.Environment["ERP_BASE_URL"], "sim:8082") {
		t.Errorf("etl does not point at the simulators: %v", etl.Environment)
	}
	for _, s := range etl.Secrets {
		f := c.Secrets[s].File
		if data, err := os.ReadFile(f); err != nil || len(bytes.TrimSpace(data)) == 0 {
			t.Errorf("secret %s: file %q: %v", s, f, err)
		}
	}
	if etl.Environment["ZUORA_CLIENT_SECRET_FILE"] == "" || etl.Environment["ERP_TOKEN_FILE"] == "" {
		t.Errorf("the secrets do not come from files: %v", etl.Environment)
	}
}

func toStrings(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			s, _ := e.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
