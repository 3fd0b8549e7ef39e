package zuora

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/retry"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/testutil"
)

const (
	testClientID = "0b5c1f4e-7a3d-4c55-9a3e-1f2e3d4c5b6a"
	testSecret   = "s3cr3t+Value/With=Odd&Chars0123456789"
	testRunID    = "run-20261125T220000Z-abc"
)

// fastPolicy keeps retries in milliseconds.
var fastPolicy = retry.Policy{MaxAttempts: 4, Initial: time.Millisecond, Max: 4 * time.Millisecond, MaxElapsed: 10 * time.Second}

// seen is one request as it arrived at the fake.
type seen struct {
	Method   string
	Path     string
	RawQuery string
	Query    url.Values
	Header   http.Header
	Body     []byte
}

// fakeZuora is an httptest server speaking Zuora's auth; tests supply the API
// handler and read back what went over the wire.
type fakeZuora struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	api       []seen // every non-token request, in arrival order
	tokenReqs []seen
	issued    []string
	valid     map[string]bool

	expiresIn  string        // expires_in literal; "" → 3599
	tokenDelay time.Duration // slows the token endpoint
	tokenFault http.HandlerFunc
	handler    http.HandlerFunc // the API under test
}

func newFake(t *testing.T, handler http.HandlerFunc) *fakeZuora {
	t.Helper()
	f := &fakeZuora{t: t, valid: map[string]bool{}, handler: handler}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeZuora) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	s := seen{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Query: r.URL.Query(), Header: r.Header.Clone(), Body: body}
	if r.URL.Path == "/oauth/token" {
		f.mu.Lock()
		f.tokenReqs = append(f.tokenReqs, s)
		fault := f.tokenFault
		f.mu.Unlock()
		time.Sleep(f.tokenDelay)
		if fault != nil {
			fault(w, r)
			return
		}
		f.mu.Lock()
		tok := fmt.Sprintf("at-%d-9f8e7d6c5b4a39281706f5e4d3c2b1a0", len(f.issued)+1)
		f.issued = append(f.issued, tok)
		f.valid[tok] = true
		exp := f.expiresIn
		f.mu.Unlock()
		if exp == "" {
			exp = "3599"
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"bearer","expires_in":%s,"scope":"entity.1","jti":"j1"}`, tok, exp)
		return
	}
	f.mu.Lock()
	f.api = append(f.api, s)
	ok := f.valid[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	f.mu.Unlock()
	if !ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"reasons":[{"code":50000011,"message":"Authentication error"}],"requestId":"req-401"}`)
		return
	}
	f.handler(w, r)
}

// expireTokens makes Zuora refuse every token issued so far.
func (f *fakeZuora) expireTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.valid)
}

func (f *fakeZuora) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.api...)
}

func (f *fakeZuora) tokens() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.issued...)
}

func (f *fakeZuora) tokenRequests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.tokenReqs...)
}

// newClient returns a client of f with a fast policy and a request log with
// bodies; at the end of the test the log must hold neither the secret nor a token.
func newClient(t *testing.T, f *fakeZuora, mod func(*Config)) (*Client, *testutil.SyncBuffer) {
	t.Helper()
	log := &testutil.SyncBuffer{}
	cfg := Config{
		BaseURL:      f.srv.URL,
		ClientID:     testClientID,
		ClientSecret: testSecret,
		RunID:        testRunID,
		Retry:        fastPolicy,
		RequestLog:   log,
		LogBodies:    true,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { assertNoSecrets(t, "request log", log.String(), f.tokens()) })
	return c, log
}

// assertNoSecrets fails when text holds the client secret or a token, in any spelling.
func assertNoSecrets(t *testing.T, what, text string, tokens []string) {
	t.Helper()
	for _, s := range append([]string{testSecret, url.QueryEscape(testSecret), "s3cr3t"}, tokens...) {
		if strings.Contains(text, s) {
			t.Errorf("%s contains the secret or a token %q:\n%s", what, s, text)
		}
	}
}

// writeJSON answers with status and body, gzipped when the client accepts it
// and gz is set.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, body string, gz bool) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Zuora-Request-Id", "req-"+fmt.Sprint(status))
	if gz && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		io.WriteString(zw, body)
		zw.Close()
		w.Header().Set("Content-Encoding", "gzip")
		w.WriteHeader(status)
		w.Write(b.Bytes())
		return
	}
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// dropConnection closes the connection without an answer.
func dropConnection(t *testing.T, w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	conn.Close()
}

// truncateBody promises more bytes than it sends, then closes the connection.
func truncateBody(t *testing.T, w http.ResponseWriter, body string) {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body)+100, body)
	buf.Flush()
	conn.Close()
}

// decodeJSON parses a request body for assertions.
func decodeJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("request body %q: %v", b, err)
	}
	return m
}
