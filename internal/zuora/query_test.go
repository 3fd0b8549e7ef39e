package zuora

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/retry"
)

// cursorFor is the nextPage that leads to page n (n ≥ 2); it holds + / = so a
// client that does not encode it verbatim is caught.
func cursorFor(n int) string {
	return fmt.Sprintf("W3sidmFsdWUiOiIyMDI2LTExLTI1VDIyOjAwOjAwKzAwOjAwIn1d+/%d==", n)
}

// testRecords has exact money literals that a float64 would not keep.
func testRecords(n int) []string {
	var out []string
	for i := 1; i <= n; i++ {
		out = append(out, fmt.Sprintf(`{"id":"inv-%d","amount":1234567890123.123456789,"balance":0.10000000000000000001,"updatedDate":"2026-11-25T14:00:0%d-08:00"}`, i, i%10))
	}
	return out
}

// pager serves records in pages of size, picking the page from the cursor.
// fault, when set, may answer a request instead (hit counts requests for that page).
type pager struct {
	t       *testing.T
	records []string
	size    int
	gzip    bool
	fault   func(w http.ResponseWriter, r *http.Request, page, hit int) bool

	mu   sync.Mutex
	hits map[int]int
}

func (p *pager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := 1
	if c, ok := r.URL.Query()["cursor"]; ok {
		n = -1
		for k := 2; k <= len(p.records)/p.size+2; k++ {
			if c[0] == cursorFor(k) {
				n = k
			}
		}
		if n < 0 {
			writeJSON(w, r, http.StatusBadRequest, `{"reasons":[{"code":50000027,"message":"invalid cursor"}],"requestId":"req-bad-cursor"}`, false)
			return
		}
	}
	p.mu.Lock()
	if p.hits == nil {
		p.hits = map[int]int{}
	}
	p.hits[n]++
	hit := p.hits[n]
	p.mu.Unlock()
	if p.fault != nil && p.fault(w, r, n, hit) {
		return
	}
	lo := (n - 1) * p.size
	hi := min(lo+p.size, len(p.records))
	body := `{"data":[` + strings.Join(p.records[lo:hi], ",") + `]`
	if hi < len(p.records) {
		body += `,"nextPage":"` + cursorFor(n+1) + `"`
	}
	writeJSON(w, r, http.StatusOK, body+"}", p.gzip)
}

// collect drains a walk.
func collect(c *Client, ctx context.Context, q Query) ([]string, error) {
	var got []string
	for rec, err := range c.Records(ctx, q) {
		if err != nil {
			return got, err
		}
		got = append(got, string(rec))
	}
	return got, nil
}

var invoiceQuery = Query{
	Object:      "invoices",
	Filters:     []string{"updateddate.GE:2026-11-25T22:00:00Z", "updateddate.LT:2026-11-25T23:00:00+01:00", "currency.IN:[CAD,GBP]"},
	Sort:        "updateddate.ASC",
	Fields:      []string{"id", "amount", "updateddate"},
	Expand:      []string{"account", "invoiceitems"},
	ChildFields: map[string][]string{"account": {"id", "ERPAccountId__c"}, "invoiceitems": {"id", "chargeamount"}},
	PageSize:    3,
}

func TestRecordsWalksEveryPageWithFixedParameters(t *testing.T) {
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprintf("gzip=%v", gz), func(t *testing.T) {
			recs := testRecords(7)
			f := newFake(t, (&pager{t: t, records: recs, size: 3, gzip: gz}).ServeHTTP)
			c, _ := newClient(t, f, nil)

			got, err := collect(c, context.Background(), invoiceQuery)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, recs) {
				t.Fatalf("records differ (money must keep its literal text):\n got %v\nwant %v", got, recs)
			}
			reqs := f.requests()
			if len(reqs) != 3 {
				t.Fatalf("%d requests, want 3 pages", len(reqs))
			}
			want := url.Values{
				"filter[]":              {"updateddate.GE:2026-11-25T22:00:00Z", "updateddate.LT:2026-11-25T23:00:00+01:00", "currency.IN:[CAD,GBP]"},
				"sort[]":                {"updateddate.ASC"},
				"fields[]":              {"id,amount,updateddate"},
				"account.fields[]":      {"id,ERPAccountId__c"},
				"invoiceitems.fields[]": {"id,chargeamount"},
				"expand[]":              {"account", "invoiceitems"},
				"pageSize":              {"3"},
			}
			for i, r := range reqs {
				if r.Method != http.MethodGet || r.Path != "/object-query/invoices" {
					t.Errorf("page %d: %s %s", i+1, r.Method, r.Path)
				}
				q := r.Query
				cursor, hasCursor := q["cursor"]
				q.Del("cursor")
				if !reflect.DeepEqual(q, want) {
					t.Errorf("page %d parameters:\n got %v\nwant %v", i+1, q, want)
				}
				if i == 0 && hasCursor {
					t.Errorf("page 1 sent a cursor %q", cursor)
				}
				if i > 0 && (len(cursor) != 1 || cursor[0] != cursorFor(i+1)) {
					t.Errorf("page %d cursor = %q, want %q verbatim", i+1, cursor, cursorFor(i+1))
				}
				if !strings.Contains(r.RawQuery, "23:00:00%2B01:00") {
					t.Errorf("page %d: a + in a value must go as %%2B: %s", i+1, r.RawQuery)
				}
				for h, v := range map[string]string{
					"Zuora-Version":   "2025-08-12",
					"Zuora-Track-Id":  testRunID,
					"Accept-Encoding": "gzip",
					"Authorization":   "Bearer " + f.tokens()[0],
				} {
					if got := r.Header.Get(h); got != v {
						t.Errorf("page %d header %s = %q, want %q", i+1, h, got, v)
					}
				}
			}
			if s := c.Stats(); s.Requests != 4 || s.TokensFetched != 1 {
				t.Errorf("stats = %+v, want 4 requests (3 pages + token) and 1 token", s)
			}
		})
	}
}

func TestEncodeQuery(t *testing.T) {
	tests := []struct {
		name string
		q    Query
		want string
		err  string
	}{
		{"defaults", Query{Object: "accounts"}, "pageSize=99", ""},
		{"everything in contract order", invoiceQuery,
			"filter[]=updateddate.GE:2026-11-25T22:00:00Z&filter[]=updateddate.LT:2026-11-25T23:00:00%2B01:00&filter[]=currency.IN:%5BCAD,GBP%5D" +
				"&sort[]=updateddate.ASC&fields[]=id,amount,updateddate&account.fields[]=id,ERPAccountId__c&invoiceitems.fields[]=id,chargeamount" +
				"&expand[]=account&expand[]=invoiceitems&pageSize=3", ""},
		{"space and empty-string marker", Query{Object: "accounts", Filters: []string{"name.EQ:Acme Corp", "crmid.EQ:\x02\x03"}, PageSize: 1},
			"filter[]=name.EQ:Acme%20Corp&filter[]=crmid.EQ:%02%03&pageSize=1", ""},
		{"ampersand and equals escaped", Query{Object: "accounts", Filters: []string{"name.EQ:A&B=C"}, PageSize: 99},
			"filter[]=name.EQ:A%26B%3DC&pageSize=99", ""},
		{"empty child field list skipped", Query{Object: "invoices", ChildFields: map[string][]string{"account": nil}}, "pageSize=99", ""},
		{"page size too big", Query{Object: "invoices", PageSize: 100}, "", "page size 100"},
		{"page size negative", Query{Object: "invoices", PageSize: -1}, "", "page size -1"},
		{"no object", Query{}, "", "no object"},
		{"object with slash", Query{Object: "invoices/123"}, "", "not a path segment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := encodeQuery(tt.q)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("encodeQuery = %q, %v\nwant %q", got, err, tt.want)
			}
			// What the server decodes must be what the caller wrote.
			vals, err := url.ParseQuery(got)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(vals["filter[]"], tt.q.Filters) {
				t.Errorf("filters decode to %q, want %q", vals["filter[]"], tt.q.Filters)
			}
		})
	}
}

func TestRecordsRecoversFromFaultsOnAPage(t *testing.T) {
	tests := []struct {
		name  string
		fault func(t *testing.T, w http.ResponseWriter, r *http.Request)
		stat  func(Stats) int64
		wait  time.Duration // the least the retry must have waited
	}{
		{"429 with Retry-After", func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "1")
			writeJSON(w, r, http.StatusTooManyRequests, `{"reasons":[{"code":50000070,"message":"concurrency limit"}]}`, false)
		}, func(s Stats) int64 { return s.RetriesRateLimit }, time.Second},
		{"500", func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			writeJSON(w, r, http.StatusInternalServerError, `{"reasons":[{"code":50000060,"message":"internal error"}]}`, false)
		}, func(s Stats) int64 { return s.Retries5xx }, 0},
		{"502 html", func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte("<html>bad gateway</html>"))
		}, func(s Stats) int64 { return s.Retries5xx }, 0},
		{"503", func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			writeJSON(w, r, http.StatusServiceUnavailable, `{}`, false)
		}, func(s Stats) int64 { return s.Retries5xx }, 0},
		{"dropped connection", func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			dropConnection(t, w)
		}, func(s Stats) int64 { return s.RetriesTransport }, 0},
		{"truncated body", func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			truncateBody(t, w, `{"data":[{"id":"inv-4","amount":1`)
		}, func(s Stats) int64 { return s.RetriesTransport }, 0},
		{"malformed body", func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			writeJSON(w, r, http.StatusOK, `{"data":[{"id":"inv-4",}`, false)
		}, func(s Stats) int64 { return s.RetriesTransport }, 0},
		{"body without data", func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			writeJSON(w, r, http.StatusOK, `{"nextPage":"x"}`, false)
		}, func(s Stats) int64 { return s.RetriesTransport }, 0},
		{"data null", func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			writeJSON(w, r, http.StatusOK, `{"data":null,"nextPage":"x"}`, false)
		}, func(s Stats) int64 { return s.RetriesTransport }, 0},
		{"data not an array", func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			writeJSON(w, r, http.StatusOK, `{"data":{"id":"inv-4"}}`, true)
		}, func(s Stats) int64 { return s.RetriesTransport }, 0},
		{"more after the page", func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			writeJSON(w, r, http.StatusOK, `{"data":[]} {"data":[]}`, true)
		}, func(s Stats) int64 { return s.RetriesTransport }, 0},
		{"corrupt gzip", func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Encoding", "gzip")
			w.Write([]byte("\x1f\x8b\x08\x00not-gzip"))
		}, func(s Stats) int64 { return s.RetriesTransport }, 0},
		{"reasons with retryable category", func(t *testing.T, w http.ResponseWriter, r *http.Request) {
			writeJSON(w, r, http.StatusOK, `{"reasons":[{"code":50000099,"message":"try later"}]}`, false)
		}, func(s Stats) int64 { return s.RetriesReasons }, 0},
	}
	for _, tt := range tests {
		for _, bodies := range []bool{true, false} { // pages read whole for the request log, or streamed
			t.Run(fmt.Sprintf("%s/log-bodies=%t", tt.name, bodies), func(t *testing.T) {
				recordsRecoverFromAFault(t, tt.fault, tt.stat, tt.wait, bodies)
			})
		}
	}
}

// recordsRecoverFromAFault walks 7 records in pages of 3 while page 2 first
// answers with fault, then checks that the walk got every record once after
// one retry of the same request, counted by stat.
func recordsRecoverFromAFault(t *testing.T, fault func(t *testing.T, w http.ResponseWriter, r *http.Request), stat func(Stats) int64, wait time.Duration, bodies bool) {
	recs := testRecords(7)
	p := &pager{t: t, records: recs, size: 3, fault: func(w http.ResponseWriter, r *http.Request, page, hit int) bool {
		if page == 2 && hit == 1 {
			fault(t, w, r)
			return true
		}
		return false
	}}
	f := newFake(t, p.ServeHTTP)
	// No keep-alive: the transport must not silently replay the GET itself.
	c, _ := newClient(t, f, func(cfg *Config) {
		cfg.HTTPClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		cfg.LogBodies = bodies
	})
	start := time.Now()
	got, err := collect(c, context.Background(), invoiceQuery)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, recs) {
		t.Fatalf("got %d records, want all %d exactly once", len(got), len(recs))
	}
	reqs := f.requests()
	if len(reqs) != 4 {
		t.Fatalf("%d requests, want 4 (page 2 twice)", len(reqs))
	}
	if reqs[1].RawQuery != reqs[2].RawQuery {
		t.Errorf("the retry changed the request:\n%s\n%s", reqs[1].RawQuery, reqs[2].RawQuery)
	}
	if n := stat(c.Stats()); n != 1 {
		t.Errorf("retry counter = %d, want 1 (stats %+v)", n, c.Stats())
	}
	if time.Since(start) < wait {
		t.Errorf("retried after %v, before Retry-After %v", time.Since(start), wait)
	}
}

func TestRecordsReasonsWithHTTP200AreAnError(t *testing.T) {
	p := &pager{t: t, records: testRecords(5), size: 3, fault: func(w http.ResponseWriter, r *http.Request, page, hit int) bool {
		if page == 2 {
			writeJSON(w, r, http.StatusOK, `{"reasons":[{"code":50000027,"message":"Invalid filter field 'transferredtoaccounting'"}],"requestId":"req-200-reasons"}`, false)
			return true
		}
		return false
	}}
	f := newFake(t, p.ServeHTTP)
	c, _ := newClient(t, f, nil)
	got, err := collect(c, context.Background(), invoiceQuery)
	if len(got) != 3 {
		t.Errorf("got %d records, want the 3 of page 1 only", len(got))
	}
	var ze *Error
	if !errors.As(err, &ze) || ze.Status != 200 || ze.RequestID != "req-200-reasons" || len(ze.Reasons) != 1 || ze.Reasons[0].Code != "50000027" {
		t.Fatalf("err = %#v, want *Error with status 200, the reason and the request id", err)
	}
	if retry.IsTransient(err) {
		t.Error("a bad filter must be permanent")
	}
	if !strings.Contains(err.Error(), "50000027 Invalid filter field 'transferredtoaccounting'") || !strings.Contains(err.Error(), "query invoices page 2") {
		t.Errorf("message %q must name the operation and the reason", err)
	}
	if n := len(f.requests()); n != 2 {
		t.Errorf("%d requests, want 2: no retry of a permanent error", n)
	}
}

func TestRecordsBadRequestIsPermanentAndNamesTheReason(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, r, http.StatusBadRequest, `{"reasons":[{"code":50000027,"message":"pageSize must be between 1 and 99"},{"code":50000027,"message":"unknown field 'foo'"}],"requestId":"7c0e-uuid"}`, false)
	})
	c, _ := newClient(t, f, nil)
	_, err := collect(c, context.Background(), Query{Object: "invoices", Fields: []string{"foo"}})
	var ze *Error
	if !errors.As(err, &ze) || ze.Status != 400 || ze.RequestID != "7c0e-uuid" || ze.Op != "query invoices page 1" {
		t.Fatalf("err = %v, want *Error 400 with request id", err)
	}
	if retry.IsTransient(err) {
		t.Error("400 must be permanent")
	}
	for _, part := range []string{"HTTP 400", "pageSize must be between 1 and 99", "unknown field 'foo'", "7c0e-uuid"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("message %q lacks %q", err, part)
		}
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestRecordsGivesUpAfterTheAttemptCapAndStaysTransient(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, r, http.StatusServiceUnavailable, `{"reasons":[{"code":50000060,"message":"down"}]}`, false)
	})
	c, _ := newClient(t, f, nil)
	_, err := collect(c, context.Background(), Query{Object: "payments"})
	var ze *Error
	if !errors.As(err, &ze) || ze.Status != 503 || !retry.IsTransient(err) {
		t.Fatalf("err = %v, want a transient *Error 503", err)
	}
	if n := len(f.requests()); n != fastPolicy.MaxAttempts {
		t.Errorf("%d requests, want %d", n, fastPolicy.MaxAttempts)
	}
	if s := c.Stats(); s.Retries5xx != int64(fastPolicy.MaxAttempts-1) {
		t.Errorf("Retries5xx = %d, want %d", s.Retries5xx, fastPolicy.MaxAttempts-1)
	}
}

func TestRecordsTokenExpiringMidWalkIsRefreshedOnce(t *testing.T) {
	var f *fakeZuora
	var expired atomic.Bool
	p := &pager{t: t, records: testRecords(7), size: 3}
	f = newFake(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("cursor") == cursorFor(2) && expired.CompareAndSwap(false, true) {
			f.expireTokens()
			writeJSON(w, r, http.StatusUnauthorized, `{"reasons":[{"code":50000011,"message":"token expired"}]}`, false)
			return
		}
		p.ServeHTTP(w, r)
	})
	c, _ := newClient(t, f, nil)
	got, err := collect(c, context.Background(), invoiceQuery)
	if err != nil || len(got) != 7 {
		t.Fatalf("got %d records, %v; want 7", len(got), err)
	}
	toks := f.tokens()
	if len(toks) != 2 {
		t.Fatalf("%d tokens fetched, want 2", len(toks))
	}
	reqs := f.requests()
	auth := []string{"Bearer " + toks[0], "Bearer " + toks[0], "Bearer " + toks[1], "Bearer " + toks[1]}
	if len(reqs) != len(auth) {
		t.Fatalf("%d requests, want %d", len(reqs), len(auth))
	}
	for i, r := range reqs {
		if r.Header.Get("Authorization") != auth[i] {
			t.Errorf("request %d used the wrong token", i+1)
		}
	}
	if s := c.Stats(); s.Refreshes401 != 1 || s.TokensFetched != 2 {
		t.Errorf("stats = %+v, want 1 refresh and 2 tokens", s)
	}
}

// TestRecordsRefusedFreshTokensAreRetriedWithinThePolicy: a token refused right
// after it was issued (revoked, or Zuora's token cache out of step) is retried
// with another fresh token, but only as often as the retry policy allows.
func TestRecordsRefusedFreshTokensAreRetriedWithinThePolicy(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, r, http.StatusUnauthorized, `{"reasons":[{"code":50000011,"message":"not allowed"}]}`, false)
	})
	c, _ := newClient(t, f, nil)
	_, err := collect(c, context.Background(), Query{Object: "refunds"})
	var ze *Error
	if !errors.As(err, &ze) || ze.Status != 401 {
		t.Fatalf("err = %v, want the 401", err)
	}
	want := 2 * fastPolicy.MaxAttempts // each attempt: the cached token, then one fresh token
	if n, toks := len(f.requests()), len(f.tokens()); n != want || toks != want {
		t.Errorf("%d requests and %d tokens, want %d and %d (attempts bounded by the policy)", n, toks, want, want)
	}
	assertNoSecrets(t, "error", err.Error(), f.tokens())
}

func TestRecordsStopsOnContextCancellation(t *testing.T) {
	t.Run("between pages", func(t *testing.T) {
		f := newFake(t, (&pager{t: t, records: testRecords(9), size: 3}).ServeHTTP)
		c, _ := newClient(t, f, nil)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var got int
		var err error
		for _, e := range c.Records(ctx, invoiceQuery) {
			if e != nil {
				err = e
				break
			}
			if got++; got == 3 {
				cancel()
			}
		}
		if got != 3 || !errors.Is(err, context.Canceled) {
			t.Fatalf("got %d records then %v; want 3 then context.Canceled", got, err)
		}
		if n := len(f.requests()); n != 1 {
			t.Errorf("%d requests after cancel, want only page 1", n)
		}
	})
	t.Run("during a backoff", func(t *testing.T) {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "30")
			writeJSON(w, r, http.StatusTooManyRequests, `{}`, false)
		})
		c, _ := newClient(t, f, func(cfg *Config) { cfg.Retry.MaxElapsed = time.Minute })
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := collect(c, ctx, Query{Object: "invoices"})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want the context's deadline", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %v to notice the cancellation", d)
		}
	})
}

func TestRecordsEarlyBreakSendsNoFurtherRequest(t *testing.T) {
	f := newFake(t, (&pager{t: t, records: testRecords(7), size: 3}).ServeHTTP)
	c, _ := newClient(t, f, nil)
	for rec, err := range c.Records(context.Background(), invoiceQuery) {
		if err != nil || !json.Valid(rec) {
			t.Fatal(rec, err)
		}
		break
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestRecordsRefusesARepeatedCursor(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, r, http.StatusOK, `{"data":[{"id":"a"}],"nextPage":"same"}`, false)
	})
	c, _ := newClient(t, f, nil)
	got, err := collect(c, context.Background(), Query{Object: "invoices"})
	if err == nil || !strings.Contains(err.Error(), "repeats the cursor") || len(got) != 2 {
		t.Fatalf("got %d records, %v; want 2 then a loop error", len(got), err)
	}
}

func TestConcurrencyIsBoundedAcrossCalls(t *testing.T) {
	var inFlight, peak atomic.Int64
	p := &pager{t: t, records: testRecords(6), size: 2}
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			old := peak.Load()
			if n <= old || peak.CompareAndSwap(old, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		p.ServeHTTP(w, r)
	})
	c, _ := newClient(t, f, func(cfg *Config) { cfg.MaxConcurrency = 2 })
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			got, err := collect(c, context.Background(), Query{Object: "invoices", PageSize: 2})
			if err == nil && len(got) != 6 {
				err = fmt.Errorf("got %d records", len(got))
			}
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
	if got := peak.Load(); got != 2 {
		t.Errorf("peak concurrency %d, want exactly 2", got)
	}
}

// BenchmarkRecords measures the client's cost per record over a local fake:
// ten pages of 99 invoices, gzipped.
func BenchmarkRecords(b *testing.B) {
	t := &testing.T{}
	recs := testRecords(990)
	p := &pager{t: t, records: recs, size: 99, gzip: true}
	f := &fakeZuora{t: t, valid: map[string]bool{}, handler: p.ServeHTTP}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	defer f.srv.Close()
	c, err := New(Config{BaseURL: f.srv.URL, ClientID: testClientID, ClientSecret: testSecret, Retry: fastPolicy})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		got, err := collect(c, context.Background(), Query{Object: "invoices"})
		if err != nil || len(got) != len(recs) {
			b.Fatalf("got %d records, %v", len(got), err)
		}
	}
	b.ReportMetric(float64(len(recs)*b.N)/b.Elapsed().Seconds(), "records/s")
}
