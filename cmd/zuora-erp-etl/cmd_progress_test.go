package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/demo"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
)

// slowPosts delays every ERP post, so that a load lasts long enough to be watched.
func slowPosts(d time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost {
				time.Sleep(d)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// TestProgressOnATerminal runs the binary with stderr on a pseudo-terminal:
// it draws, per raw table, the pages and records fetched with a rate, and
// per document type the documents posted out of the total with a rate.
func TestProgressOnATerminal(t *testing.T) {
	w := newProcWorldWith(t, "file", procOptions{erp: slowPosts(5 * time.Millisecond)})
	ptm, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("open a pseudo-terminal: %v", err)
	}
	defer ptm.Close()
	pty.Setsize(ptm, &pty.Winsize{Rows: 50, Cols: 200})
	cmd := binaryCommand(t, "run", "--since", demo.From.Format(time.RFC3339), "--until", demo.To.Format(time.RFC3339), "--log-level", "warn")
	cmd.Env = w.env
	cmd.Stderr = tty
	var stdout strings.Builder
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close() // the child holds it now
	screen := make(chan string)
	go func() {
		data, _ := io.ReadAll(ptm) // until the child closes its end (EIO)
		screen <- string(data)
	}()
	err = cmd.Wait()
	var ee *exec.ExitError
	if err != nil && (!errors.As(err, &ee) || ee.ExitCode() != exitRejected) {
		t.Fatalf("run: %v\n%s", err, stdout.String())
	}
	var out string
	select {
	case out = <-screen:
	case <-time.After(10 * time.Second):
		t.Fatal("the terminal did not close")
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`fetch invoices\s+.*\d+ pages, \d+ records\s+\d+(\.\d)? records/s`),
		regexp.MustCompile(`fetch payments\s+.*\d+ pages, \d+ records`),
		regexp.MustCompile(`post invoice\s+.*\d+ / \d+ posted\s+\d+(\.\d)? docs/s`),
	} {
		if !want.MatchString(out) {
			t.Errorf("the terminal shows no %s in:\n%s", want, out)
		}
	}
	if strings.Contains(stdout.String(), "records/s") {
		t.Error("the progress went to stdout, with the report")
	}
}

// TestNoProgressBarsOffATerminal: with stderr a file, no bar is drawn;
// instead a log line every --progress-interval says the same, and every line
// logged for a window carries run_id and window (here as JSON).
func TestNoProgressBarsOffATerminal(t *testing.T) {
	w := newProcWorldWith(t, "file", procOptions{erp: slowPosts(10 * time.Millisecond)})
	w.zuora.SetFaults(zuorasim.Faults{Status429Every: 25}) // the client's retry warnings must name the window too
	logFile := filepath.Join(t.TempDir(), "stderr.log")
	f, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := binaryCommand(t, "run", "--since", demo.From.Format(time.RFC3339), "--until", demo.To.Format(time.RFC3339),
		"--log-format", "json", "--progress-interval", "100ms", "--erp-concurrency", "1")
	cmd.Env, cmd.Stderr = w.env, f
	err = cmd.Run()
	f.Close()
	var ee *exec.ExitError
	if err != nil && (!errors.As(err, &ee) || ee.ExitCode() != exitRejected) {
		t.Fatalf("run: %v", err)
	}
	data, _ := os.ReadFile(logFile)
	if strings.ContainsAny(string(data), "\r\x1b") || strings.Contains(string(data), "records/s") {
		t.Fatalf("bars or terminal codes in a file:\n%s", data)
	}
	var posting, fetching int
	window := ""
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "{") {
			continue // the failure lines of a rejected run are plain text
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a log line is not JSON: %q", line)
		}
		if rec["run_id"] == nil {
			t.Errorf("no run_id: %s", line)
		}
		if strings.Count(line, `"run_id"`) > 1 || strings.Count(line, `"window"`) > 1 {
			t.Errorf("a field twice: %s", line)
		}
		msg, _ := rec["msg"].(string)
		switch {
		case strings.HasPrefix(msg, "progress: posting"):
			posting++
			if rec["total"] == nil || rec["posted"] == nil || rec["documents_per_second"] == nil {
				t.Errorf("progress line without its figures: %s", line)
			}
		case strings.HasPrefix(msg, "progress: fetching"):
			fetching++
		case msg == "load started", msg == "extract committed", msg == "transform committed":
			window, _ = rec["window"].(string)
		}
		// Between a window's first step and its end, every line says which window.
		if window != "" && rec["window"] == nil && msg != "reject index built from every window" {
			t.Errorf("a line logged during window %s does not name it: %s", window, line)
		}
		if msg == "window done" {
			window = ""
		}
	}
	// Every retry of a window's requests says which window: those before the
	// last window is done (the re-check of rejects after it belongs to none).
	all := strings.Split(string(data), "\n")
	last := -1
	for i, l := range all {
		if strings.Contains(l, `"msg":"window done"`) {
			last = i
		}
	}
	retries := 0
	for _, l := range all[:max(last, 0)] {
		if strings.Contains(l, `"msg":"zuora call will be retried"`) {
			retries++
			if !strings.Contains(l, `"window":"`) {
				t.Errorf("a retry during the windows does not name its window: %s", l)
			}
		}
	}
	if retries == 0 {
		t.Errorf("no retry was logged during the windows; the tenant answers 429 to every 25th request")
	}
	if posting == 0 {
		t.Errorf("no progress line while posting, every 100ms, in:\n%s", data)
	}
	_ = fetching
}
