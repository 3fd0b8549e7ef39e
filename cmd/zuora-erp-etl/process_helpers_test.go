package main

// Helpers for the tests that run real processes of the binary (the lease tests
// and the soak): the binary built once, the two simulators and a stage served
// by the test process on loopback, and the children's output.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/demo"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/erpsim"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/s3test"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
)

// binDir holds the binary the process tests build, once per test binary.
var (
	binDir    string
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "zuora-erp-etl-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// binary builds the command once (go build, as a user would) and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("the process tests build the binary with the go command: %v", err)
			return
		}
		binPath = filepath.Join(binDir, "zuora-erp-etl")
		// -buildvcs=auto: the revision goes into the build info when there is a
		// repository, as with a user's go build (GOFLAGS may say otherwise).
		out, err := exec.Command(goTool, "build", "-buildvcs=auto", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// childTimeout bounds every child process of a test: a child that hangs
// fails its test with what it wrote, instead of the package's timeout ending
// the whole suite without saying which test.
const childTimeout = 3 * time.Minute

// binaryCommand is exec.Command for the binary, killed after childTimeout (or when
// the test ends), whose Wait returns even if something still holds its output.
func binaryCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), childTimeout)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// procWorld is a Zuora simulator and an ERP simulator served by the test
// process over loopback, and one stage the child processes share.
type procWorld struct {
	zuora    *zuorasim.Sim
	erp      *erpsim.Sim
	gate     *erpGate
	marks    *markLog
	stageURL string
	env      []string
}

const procLeaseTTL = 2 * time.Second

// procOptions changes what newProcWorldWith serves; the zero value is the
// demo tenant of seed 11.
type procOptions struct {
	tenant *zuorasim.Tenant
	// zuora and erp, when set, wrap the handlers the children reach (outside
	// the mark log and the ERP gate), so a test can watch or cut requests.
	zuora, erp func(http.Handler) http.Handler
	// stageURL, when set, is the stage instead of the backend's fresh one.
	stageURL string
}

func newProcWorld(t *testing.T, backend string) *procWorld {
	t.Helper()
	return newProcWorldWith(t, backend, procOptions{})
}

func newProcWorldWith(t *testing.T, backend string, o procOptions) *procWorld {
	t.Helper()
	w := &procWorld{}
	switch backend {
	case "file":
		w.stageURL = "file://" + filepath.ToSlash(t.TempDir()) + "/stage"
	case "s3":
		w.stageURL = s3test.StageURL(t) // also sets the fake AWS credentials the children inherit
	default:
		t.Fatalf("unknown backend %q", backend)
	}
	if o.stageURL != "" {
		w.stageURL = o.stageURL
	}
	if o.tenant == nil {
		o.tenant = zuorasim.Generate(11, zuorasim.DefaultVolume(), demo.From, demo.To)
	}
	w.zuora = zuorasim.New(zuorasim.Options{ClientID: demo.ClientID, ClientSecret: demo.ClientSecret})
	w.zuora.Load(o.tenant)
	w.erp = erpsim.New(erpsim.Options{Token: demo.ERPToken})
	w.gate = &erpGate{next: w.erp, limit: -1, opened: make(chan struct{})}
	w.marks = &markLog{next: w.zuora, counts: map[string]int{}}
	var zh, eh http.Handler = w.marks, w.gate
	if o.zuora != nil {
		zh = o.zuora(zh)
	}
	if o.erp != nil {
		eh = o.erp(eh)
	}
	zs := httptest.NewServer(zh)
	t.Cleanup(zs.Close)
	es := httptest.NewServer(eh)
	t.Cleanup(es.Close)
	t.Cleanup(w.gate.open) // never leave a child's request hanging

	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "ZUORA_") || strings.HasPrefix(k, "ERP_") || strings.HasPrefix(k, "ETL_") {
			continue
		}
		w.env = append(w.env, kv)
	}
	w.env = append(w.env,
		"ZUORA_BASE_URL="+zs.URL, "ZUORA_CLIENT_ID="+demo.ClientID, "ZUORA_CLIENT_SECRET="+demo.ClientSecret,
		"ERP_BASE_URL="+es.URL, "ERP_TOKEN="+demo.ERPToken,
		"ETL_STAGE="+w.stageURL, "ETL_LEASE_TTL="+procLeaseTTL.String(),
		"XDG_CACHE_HOME="+t.TempDir(), // local copies of s3 objects stay in the test's folders
	)
	return w
}

// proc is one child process of the binary.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{}
	code           int
}

func (w *procWorld) start(t *testing.T, args ...string) *proc {
	t.Helper()
	return w.startWatched(t, nil, args...)
}

// startWatched starts a child and, when onLine is not nil, calls it with each
// line the child writes to stderr as it arrives.
func (w *procWorld) startWatched(t *testing.T, onLine func(string), args ...string) *proc {
	t.Helper()
	p := &proc{cmd: binaryCommand(t, args...), done: make(chan struct{})}
	p.cmd.Env = w.env
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if onLine != nil {
		p.cmd.Stderr = io.MultiWriter(&p.stderr, &lineWriter{fn: onLine})
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := p.cmd.Wait()
		var ee *exec.ExitError
		switch {
		case err == nil:
			p.code = 0
		case errors.As(err, &ee):
			p.code = ee.ExitCode() // -1 when killed by a signal
		default:
			p.code = -2
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// run starts a child and waits for it to exit.
func (w *procWorld) run(t *testing.T, args ...string) *proc {
	t.Helper()
	p := w.start(t, args...)
	p.wait(t, args)
	return p
}

// wait waits for the child to exit, at most a minute.
func (p *proc) wait(t *testing.T, args []string) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("%v did not finish within 60s\nstderr:\n%s", args, p.stderr.String())
	}
}

func (p *proc) String() string {
	return fmt.Sprintf("pid %d exit %d\nstdout:\n%s\nstderr:\n%s", p.cmd.Process.Pid, p.code, p.stdout.String(), p.stderr.String())
}

var runIDPattern = regexp.MustCompile(`run-\d{8}T\d{6}\.\d{3}Z`)

// runID returns the run id a child printed in its report or logs.
func (p *proc) runID() string {
	if id := runIDPattern.FindString(p.stdout.String()); id != "" {
		return id
	}
	return runIDPattern.FindString(p.stderr.String())
}

// lineWriter calls fn with every complete line written to it.
type lineWriter struct {
	mu  sync.Mutex
	buf []byte
	fn  func(string)
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.fn(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

// erpGate passes ERP posts to next until limit have passed, then holds the
// rest until open is called (or the client hangs up). limit -1 holds nothing.
type erpGate struct {
	next    http.Handler
	mu      sync.Mutex
	limit   int
	passed  int
	opened  chan struct{}
	once    sync.Once
	waiting atomic.Int32 // posts being held now
}

func (g *erpGate) hold(after int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.limit = after
}

func (g *erpGate) open() { g.once.Do(func() { close(g.opened) }) }

func (g *erpGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api/") {
		g.mu.Lock()
		held := g.limit >= 0 && g.passed >= g.limit
		if !held {
			g.passed++
		}
		g.mu.Unlock()
		if held {
			g.waiting.Add(1)
			select {
			case <-g.opened:
				g.waiting.Add(-1)
			case <-r.Context().Done():
				g.waiting.Add(-1)
				return
			}
		}
	}
	g.next.ServeHTTP(w, r)
}

// markLog counts, per document id, the TransferredToAccounting=Yes values sent
// to Zuora's write-back endpoints (the update action, the memo bulk endpoints
// and the PUT of a payment's or refund's finance information), then passes the
// request on.
type markLog struct {
	next   http.Handler
	mu     sync.Mutex
	counts map[string]int
}

func (m *markLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v1/action/update" || strings.HasSuffix(r.URL.Path, "-memos/bulk") {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var req map[string]any // {"type": …, "objects": [...]} or {"memos": [...]}
		_ = json.Unmarshal(body, &req)
		m.mu.Lock()
		for _, list := range req {
			objs, _ := list.([]any)
			for _, obj := range objs {
				o, _ := obj.(map[string]any)
				var id, val string
				for k, v := range o {
					s, _ := v.(string)
					switch strings.ToLower(k) {
					case "id":
						id = s
					case "transferredtoaccounting":
						val = s
					}
				}
				if val == "Yes" {
					m.counts[id]++
				}
			}
		}
		m.mu.Unlock()
	}
	if id, ok := financeID(r); ok && r.Method == http.MethodPut {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var req struct {
			FinanceInformation struct {
				TransferredToAccounting string `json:"transferredToAccounting"`
			} `json:"financeInformation"`
		}
		if json.Unmarshal(body, &req) == nil && req.FinanceInformation.TransferredToAccounting == "Yes" {
			m.mu.Lock()
			m.counts[id]++
			m.mu.Unlock()
		}
	}
	m.next.ServeHTTP(w, r)
}

// financeID returns the id of PUT /v1/payments/{id} or /v1/refunds/{id}.
func financeID(r *http.Request) (string, bool) {
	for _, prefix := range []string{"/v1/payments/", "/v1/refunds/"} {
		if id, ok := strings.CutPrefix(r.URL.Path, prefix); ok && id != "" && !strings.Contains(id, "/") {
			return id, true
		}
	}
	return "", false
}

func (m *markLog) snapshot() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]int, len(m.counts))
	for k, v := range m.counts {
		out[k] = v
	}
	return out
}

func (m *markLog) total() int {
	n := 0
	for _, v := range m.snapshot() {
		n += v
	}
	return n
}
