// Package testutil holds the helpers the tests of several packages share:
// registry coverage, a fast retry policy, a log buffer safe for concurrent
// writers, a clock a test sets by hand, real HTTP servers for simulators, and
// a sampler of the heap's peak.
package testutil

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/retry"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// CoversDocTypes fails t unless m, a stage's behaviour per document type, has
// an entry for each of the five documents of the registry and none for anything else.
func CoversDocTypes[V any](t testing.TB, name string, m map[stage.DocType]V) {
	t.Helper()
	CoversTypes(t, name, m, stage.Documents())
}

// CoversTypes fails t unless m has an entry for each of types and none for
// anything else, such as stage.Streams() for what the extract walks.
func CoversTypes[V any](t testing.TB, name string, m map[stage.DocType]V, types []stage.DocType) {
	t.Helper()
	for _, dt := range types {
		if _, ok := m[dt]; !ok {
			t.Errorf("%s has nothing for %s", name, dt)
		}
	}
	for dt := range m {
		if !slices.Contains(types, dt) {
			t.Errorf("%s has an entry for %q, which is not one of %v", name, dt, types)
		}
	}
}

// FastRetry is a retry policy that rides out injected faults in milliseconds:
// attempts tries at most, 1 to 5 ms apart, within maxElapsed.
func FastRetry(attempts int, maxElapsed time.Duration) retry.Policy {
	return retry.Policy{MaxAttempts: attempts, Initial: time.Millisecond, Max: 5 * time.Millisecond, MaxElapsed: maxElapsed}
}

// SyncBuffer collects what concurrent writers write, such as log lines.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Clock is a time source a test sets and moves by hand; safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock that reads t (its wall clock: no monotonic reading).
func NewClock(t time.Time) *Clock { return &Clock{t: t.Round(0)} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t.Round(0) // wall clock only, as times read back from the stage are
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Serve serves h on a real loopback HTTP server, closed when t ends, and returns its URL.
func Serve(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// ServeChild serves h on loopback, prints its URL on stdout and exits when
// stdin closes: the test that started this process (StartChild) ended or died.
func ServeChild(h http.Handler) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("http://" + ln.Addr().String())
	go func() { _ = http.Serve(ln, h) }()
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// StartChild starts the test binary again with env added, for its TestMain to
// call ServeChild, and returns the URL it serves; it stops with the test. A
// simulator in another process keeps its memory out of a memory test's figures.
func StartChild(t testing.TB, env ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	url, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("the child process printed no address: %v", err)
	}
	return strings.TrimSpace(url)
}
