package zuora

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/retry"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/testutil"
)

func TestNewChecksTheConfig(t *testing.T) {
	good := Config{BaseURL: "https://rest.test.zuora.com", ClientID: testClientID, ClientSecret: testSecret, RunID: testRunID}
	tests := []struct {
		name string
		mod  func(*Config)
		err  string // "" → valid
	}{
		{"valid", func(*Config) {}, ""},
		{"no run id", func(c *Config) { c.RunID = "" }, ""},
		{"64-char run id", func(c *Config) { c.RunID = strings.Repeat("r", 64) }, ""},
		{"missing BaseURL", func(c *Config) { c.BaseURL = "" }, "BaseURL"},
		{"missing ClientID", func(c *Config) { c.ClientID = "" }, "ClientID"},
		{"missing ClientSecret", func(c *Config) { c.ClientSecret = "" }, "ClientSecret"},
		{"relative BaseURL", func(c *Config) { c.BaseURL = "rest.zuora.com" }, "BaseURL"},
		{"BaseURL with query", func(c *Config) { c.BaseURL = "https://rest.zuora.com?x=1" }, "BaseURL"},
		{"65-char run id", func(c *Config) { c.RunID = strings.Repeat("r", 65) }, "RunID"},
		{"colon in run id", func(c *Config) { c.RunID = "run:1" }, "RunID"},
		{"semicolon in run id", func(c *Config) { c.RunID = "run;1" }, "RunID"},
		{"double quote in run id", func(c *Config) { c.RunID = `run"1` }, "RunID"},
		{"single quote in run id", func(c *Config) { c.RunID = "run'1" }, "RunID"},
		{"non-ASCII run id", func(c *Config) { c.RunID = "rün" }, "RunID"},
		{"newline in run id", func(c *Config) { c.RunID = "run\n1" }, "RunID"},
		{"negative concurrency", func(c *Config) { c.MaxConcurrency = -1 }, "MaxConcurrency"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.mod(&cfg)
			c, err := New(cfg)
			if tt.err == "" {
				if err != nil || c == nil {
					t.Fatalf("New = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err = %v, want one naming %s", err, tt.err)
			}
			assertNoSecrets(t, "error", err.Error(), nil)
		})
	}
}

func TestConfigAndClientPrintWithoutTheSecret(t *testing.T) {
	cfg := Config{BaseURL: "https://rest.zuora.com", ClientID: testClientID, ClientSecret: testSecret}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.tok.value = "at-cached-token-value"
	var log testutil.SyncBuffer
	logger := slog.New(slog.NewJSONHandler(&log, nil))
	logger.Info("config", "cfg", cfg, "client", c)
	out := fmt.Sprintf("%v %+v %v %+v", cfg, cfg, c, c) + log.String()
	assertNoSecrets(t, "printed config", out, []string{"at-cached-token-value"})
	if !strings.Contains(out, testClientID) {
		t.Errorf("printed config lost the client id: %s", out)
	}
}

func TestTokenRequestIsAClientCredentialsForm(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, r, 200, `{"data":[]}`, false) })
	c, _ := newClient(t, f, nil)
	if _, err := collect(c, context.Background(), Query{Object: "invoices"}); err != nil {
		t.Fatal(err)
	}
	reqs := f.tokenRequests()
	if len(reqs) != 1 {
		t.Fatalf("%d token requests, want 1", len(reqs))
	}
	r := reqs[0]
	form, err := url.ParseQuery(string(r.Body))
	if err != nil {
		t.Fatal(err)
	}
	want := url.Values{"client_id": {testClientID}, "client_secret": {testSecret}, "grant_type": {"client_credentials"}}
	if r.Method != http.MethodPost || form.Encode() != want.Encode() {
		t.Errorf("token request %s %v, want POST %v", r.Method, form, want)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type = %q", ct)
	}
	if a := r.Header.Get("Authorization"); a != "" {
		t.Errorf("token request carries Authorization %q", a)
	}
}

func TestTokenIsRefreshedBeforeExpiry(t *testing.T) {
	tests := []struct {
		expiresIn   string
		stillCached time.Duration // a fetch this long after the first reuses the token
		refreshed   time.Duration // and this long after, fetches a new one
	}{
		{"3599", 3599*time.Second - 5*time.Minute - time.Second, 3599*time.Second - 5*time.Minute},
		{"600", 300*time.Second - time.Second, 300 * time.Second},
		{"60", 29 * time.Second, 30 * time.Second},
		{`"120"`, 59 * time.Second, 60 * time.Second},
		{"0", 55*time.Minute - time.Second, 55 * time.Minute}, // no usable lifetime: assume an hour
	}
	for _, tt := range tests {
		t.Run("expires_in="+tt.expiresIn, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, r, 200, `{"data":[]}`, false) })
			f.expiresIn = tt.expiresIn
			c, _ := newClient(t, f, nil)
			t0 := time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC)
			now := t0
			c.now = func() time.Time { return now }
			walk := func() {
				t.Helper()
				if _, err := collect(c, context.Background(), Query{Object: "invoices"}); err != nil {
					t.Fatal(err)
				}
			}
			walk()
			now = t0.Add(tt.stillCached)
			walk()
			if n := len(f.tokens()); n != 1 {
				t.Fatalf("after %v: %d tokens, want the cached one", tt.stillCached, n)
			}
			now = t0.Add(tt.refreshed)
			walk()
			if n := len(f.tokens()); n != 2 {
				t.Fatalf("after %v: %d tokens, want a refresh", tt.refreshed, n)
			}
			reqs := f.requests()
			if reqs[2].Header.Get("Authorization") != "Bearer "+f.tokens()[1] {
				t.Error("the call after the refresh did not use the new token")
			}
		})
	}
}

func TestConcurrentCallersShareOneTokenFetch(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, r, 200, `{"data":[{"id":"x"}]}`, false) })
	f.tokenDelay = 50 * time.Millisecond
	c, _ := newClient(t, f, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			_, err := collect(c, context.Background(), Query{Object: "invoices"})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.tokenRequests()); n != 1 {
		t.Errorf("%d token fetches for 16 concurrent callers, want 1", n)
	}
	if s := c.Stats(); s.TokensFetched != 1 || s.Requests != 17 {
		t.Errorf("stats = %+v, want 1 token and 17 requests", s)
	}
}

func TestTokenEndpointFailures(t *testing.T) {
	tests := []struct {
		name      string
		fault     http.HandlerFunc
		transient bool
		msg       string
	}{
		{"bad credentials echoing the secret", func(w http.ResponseWriter, r *http.Request) {
			r.ParseForm()
			writeJSON(w, r, http.StatusUnauthorized, `{"error":"invalid_client","error_description":"bad secret `+r.PostForm.Get("client_secret")+`"}`, false)
		}, false, "invalid_client"},
		{"rate limited", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-RateLimit-Remaining-minute", "0")
			writeJSON(w, r, http.StatusTooManyRequests, `{"message":"too many requests"}`, false)
		}, true, "too many requests"},
		{"no access token", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, r, http.StatusOK, `{"token_type":"bearer","note":"`+testSecret+`"}`, false)
		}, true, "no access_token"},
		{"plain-text error echoing the secret", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte("rejected " + testSecret))
		}, false, "rejected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request) { t.Error("API called without a token") })
			f.tokenFault = tt.fault
			c, log := newClient(t, f, nil)
			_, err := collect(c, context.Background(), Query{Object: "invoices"})
			// A token fetch is retried within the policy when the failure is
			// transient; what reaches the callers is permanent either way.
			var ze *Error
			if !errors.As(err, &ze) || ze.Op != "fetch token" || retry.IsTransient(err) {
				t.Fatalf("err = %v, want a permanent fetch token *Error", err)
			}
			if want := map[bool]int{true: fastPolicy.MaxAttempts, false: 1}[tt.transient]; len(f.tokenRequests()) != want {
				t.Errorf("%d token requests; want %d", len(f.tokenRequests()), want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("message %q lacks %q", err, tt.msg)
			}
			assertNoSecrets(t, "error", err.Error(), nil)
			if !strings.Contains(log.String(), `"op":"fetch token"`) {
				t.Errorf("token exchange missing from the request log:\n%s", log)
			}
		})
	}
}

func TestRequestLogHasOneRedactedLinePerExchange(t *testing.T) {
	var f *fakeZuora
	first := true
	var mu sync.Mutex
	f = newFake(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if first {
			first = false
			f.expireTokens()
			writeJSON(w, r, http.StatusUnauthorized, `{"message":"Authentication error"}`, false)
			return
		}
		writeJSON(w, r, http.StatusOK, `{"data":[{"id":"inv-1","amount":10.50}]}`, true)
	})
	c, log := newClient(t, f, nil)
	if _, err := collect(c, context.Background(), Query{Object: "invoices"}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) != 4 { // token, 401, token, 200
		t.Fatalf("%d log lines, want 4:\n%s", len(lines), log)
	}
	var entries []exchangeLog
	for _, l := range lines {
		var e exchangeLog
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		entries = append(entries, e)
	}
	wantStatus := []int{200, 401, 200, 200}
	for i, e := range entries {
		if e.Status != wantStatus[i] || e.Method == "" || !strings.HasPrefix(e.URL, f.srv.URL) || e.Attempt != 1 || e.DurationMS < 0 {
			t.Errorf("line %d = %+v", i+1, e)
		}
	}
	if e := entries[0]; !strings.Contains(e.RequestBody, "client_secret=%5BREDACTED%5D") || !strings.Contains(e.ResponseBody, `"access_token":"[REDACTED]"`) {
		t.Errorf("token exchange not redacted field by field: %+v", e)
	}
	if e := entries[3]; e.ResponseBody != `{"data":[{"id":"inv-1","amount":10.50}]}` || e.ResponseBytes != len(e.ResponseBody) || e.RequestID != "req-200" {
		t.Errorf("query exchange logged as %+v, want the gunzipped body and its size", e)
	}
	if e := entries[0]; e.RequestBytes == 0 {
		t.Errorf("token request size not logged: %+v", e)
	}
	// The fake checks for the secret and both tokens at cleanup; make sure there were two.
	if n := len(f.tokens()); n != 2 {
		t.Errorf("%d tokens, want 2", n)
	}
}

func TestReasonCodeCategories(t *testing.T) {
	tests := []struct {
		body      string
		code, cat string
		retryable bool
	}{
		{`{"code":50000027,"message":"m"}`, "50000027", "27", false},
		{`{"code":53000061,"message":"m"}`, "53000061", "61", true},
		{`{"code":"50000070","message":"m"}`, "50000070", "70", true},
		{`{"code":50000050,"message":"m"}`, "50000050", "50", true},
		{`{"code":50000099,"message":"m"}`, "50000099", "99", true},
		{`{"code":50000060,"message":"m"}`, "50000060", "60", false},
		{`{"code":"INVALID_VALUE","message":"m"}`, "INVALID_VALUE", "", false},
		{`{"message":"m"}`, "", "", false},
	}
	for _, tt := range tests {
		var r Reason
		if err := json.Unmarshal([]byte(tt.body), &r); err != nil {
			t.Fatal(err)
		}
		if r.Code != tt.code || r.Category() != tt.cat || retryableCategory(r) != tt.retryable || r.Message != "m" {
			t.Errorf("%s → %+v category %q retryable %v; want %q %q %v", tt.body, r, r.Category(), retryableCategory(r), tt.code, tt.cat, tt.retryable)
		}
	}
}
