package zuora

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/retry"
)

// answerFunc decides Zuora's per-object answer; call counts the calls that
// carried this id so far (1 on the first).
type answerFunc func(id string, call int) (ok bool, code, message string)

func allOK(string, int) (bool, string, string) { return true, "", "" }

// markFake answers the Action and the bulk memo endpoints per object and keeps
// the ids of each call.
type markFake struct {
	t      *testing.T
	answer answerFunc

	mu    sync.Mutex
	calls [][]string
	count map[string]int
}

func (m *markFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body := decodeJSON(m.t, mustRead(m.t, r))
	var ids []string
	memo := strings.HasSuffix(r.URL.Path, "-memos/bulk")
	if memo {
		for _, o := range body["memos"].([]any) {
			ids = append(ids, o.(map[string]any)["id"].(string))
		}
	} else {
		for _, o := range body["objects"].([]any) {
			ids = append(ids, o.(map[string]any)["Id"].(string))
		}
	}
	m.mu.Lock()
	m.calls = append(m.calls, ids)
	if m.count == nil {
		m.count = map[string]int{}
	}
	var parts []string
	for _, id := range ids {
		m.count[id]++
		ok, code, msg := m.answer(id, m.count[id])
		switch {
		case memo && ok:
			parts = append(parts, fmt.Sprintf(`{"id":%q,"success":true,"memoNumber":"CM-1","totalAmount":10.5}`, id))
		case memo:
			parts = append(parts, fmt.Sprintf(`{"id":%q,"success":false,"reasons":[{"code":%s,"message":%q}]}`, id, code, msg))
		case ok:
			parts = append(parts, fmt.Sprintf(`{"Id":%q,"Success":true}`, id))
		default:
			parts = append(parts, fmt.Sprintf(`{"Id":%q,"Success":false,"Errors":[{"Code":%q,"Message":%q}]}`, id, code, msg))
		}
	}
	m.mu.Unlock()
	if memo {
		writeJSON(w, r, http.StatusOK, `{"success":true,"memos":[`+strings.Join(parts, ",")+`],"requestId":"req-memo"}`, true)
		return
	}
	writeJSON(w, r, http.StatusOK, "["+strings.Join(parts, ",")+"]", true)
}

func (m *markFake) batches() [][]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([][]string(nil), m.calls...)
}

func mustRead(t *testing.T, r *http.Request) []byte {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Errorf("read request body: %v", err)
	}
	return b
}

func ids(prefix string, n int) []string {
	var out []string
	for i := 1; i <= n; i++ {
		out = append(out, fmt.Sprintf("%s%030d", prefix, i))
	}
	return out
}

func TestMarkTransferredBatchesByFifty(t *testing.T) {
	tests := []struct {
		n     int
		sizes []int
	}{
		{0, nil},
		{1, []int{1}},
		{50, []int{50}},
		{51, []int{50, 1}},
		{120, []int{50, 50, 20}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			m := &markFake{t: t, answer: allOK}
			f := newFake(t, m.ServeHTTP)
			c, _ := newClient(t, f, nil)
			in := ids("ab", tt.n)
			res, err := c.MarkTransferred(context.Background(), Invoice, in)
			if err != nil {
				t.Fatal(err)
			}
			var sizes []int
			var sent []string
			for _, b := range m.batches() {
				sizes = append(sizes, len(b))
				sent = append(sent, b...)
			}
			if !reflect.DeepEqual(sizes, tt.sizes) {
				t.Errorf("batch sizes %v, want %v", sizes, tt.sizes)
			}
			if !reflect.DeepEqual(sent, in) {
				t.Errorf("sent ids differ from the input")
			}
			if len(res) != tt.n {
				t.Fatalf("%d results, want %d", len(res), tt.n)
			}
			for i, r := range res {
				if r.ID != in[i] || !r.OK || r.Attempts != 1 || r.Code != "" {
					t.Errorf("result %d = %+v", i, r)
				}
			}
		})
	}
}

func TestMarkTransferredUsesTheEndpointOfEachType(t *testing.T) {
	tests := []struct {
		objectType, method, path, query, body string
	}{
		{Invoice, "POST", "/v1/action/update", "rejectUnknownFields=true",
			`{"type":"Invoice","objects":[{"Id":"i1","TransferredToAccounting":"Yes"},{"Id":"i2","TransferredToAccounting":"Yes"}]}`},
		{Payment, "POST", "/v1/action/update", "rejectUnknownFields=true",
			`{"type":"Payment","objects":[{"Id":"i1","TransferredToAccounting":"Yes"},{"Id":"i2","TransferredToAccounting":"Yes"}]}`},
		{Refund, "POST", "/v1/action/update", "rejectUnknownFields=true",
			`{"type":"Refund","objects":[{"Id":"i1","TransferredToAccounting":"Yes"},{"Id":"i2","TransferredToAccounting":"Yes"}]}`},
		{CreditMemo, "PUT", "/v1/credit-memos/bulk", "",
			`{"memos":[{"id":"i1","transferredToAccounting":"Yes"},{"id":"i2","transferredToAccounting":"Yes"}]}`},
		{DebitMemo, "PUT", "/v1/debit-memos/bulk", "",
			`{"memos":[{"id":"i1","transferredToAccounting":"Yes"},{"id":"i2","transferredToAccounting":"Yes"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.objectType, func(t *testing.T) {
			m := &markFake{t: t, answer: allOK}
			f := newFake(t, m.ServeHTTP)
			c, _ := newClient(t, f, nil)
			res, err := c.MarkTransferred(context.Background(), tt.objectType, []string{"i1", "i2"})
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != 2 || !res[0].OK || !res[1].OK {
				t.Fatalf("results %+v", res)
			}
			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != tt.method || r.Path != tt.path || r.RawQuery != tt.query || string(r.Body) != tt.body {
				t.Errorf("sent %s %s?%s %s\nwant %s %s?%s %s", r.Method, r.Path, r.RawQuery, r.Body, tt.method, tt.path, tt.query, tt.body)
			}
			for h, v := range map[string]string{"Content-Type": "application/json", "Zuora-Version": APIVersion, "Zuora-Track-Id": testRunID} {
				if got := r.Header.Get(h); got != v {
					t.Errorf("header %s = %q, want %q", h, got, v)
				}
			}
		})
	}
}

func TestMarkTransferredRetriesOnlyRetryableObjects(t *testing.T) {
	in := []string{"ok-1", "locked", "invalid", "temp", "ok-2"}
	tests := []struct {
		objectType string
		answer     answerFunc
	}{
		{Invoice, func(id string, call int) (bool, string, string) {
			switch {
			case id == "locked" && call == 1:
				return false, "LOCK_COMPETITION", "record locked"
			case id == "temp" && call < 3:
				return false, "TEMPORARY_ERROR", "try again"
			case id == "invalid":
				return false, "INVALID_VALUE", "invoice is not posted"
			}
			return true, "", ""
		}},
		{CreditMemo, func(id string, call int) (bool, string, string) {
			switch {
			case id == "locked" && call == 1:
				return false, "53000070", "concurrency limit"
			case id == "temp" && call < 3:
				return false, "53000061", "temporary error"
			case id == "invalid":
				return false, "53000020", "invoice is not posted"
			}
			return true, "", ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.objectType, func(t *testing.T) {
			m := &markFake{t: t, answer: tt.answer}
			f := newFake(t, m.ServeHTTP)
			c, _ := newClient(t, f, nil)
			res, err := c.MarkTransferred(context.Background(), tt.objectType, in)
			if err != nil {
				t.Fatal(err)
			}
			wantCalls := [][]string{in, {"locked", "temp"}, {"temp"}}
			if got := m.batches(); !reflect.DeepEqual(got, wantCalls) {
				t.Errorf("calls %v, want %v", got, wantCalls)
			}
			wantOK := map[string]bool{"ok-1": true, "locked": true, "invalid": false, "temp": true, "ok-2": true}
			wantAttempts := map[string]int{"ok-1": 1, "locked": 2, "invalid": 1, "temp": 3, "ok-2": 1}
			for i, r := range res {
				if r.ID != in[i] || r.OK != wantOK[r.ID] || r.Attempts != wantAttempts[r.ID] {
					t.Errorf("result %d = %+v, want ok=%v attempts=%d", i, r, wantOK[r.ID], wantAttempts[r.ID])
				}
			}
			if r := res[2]; r.Code == "" || !strings.Contains(r.Message, "not posted") {
				t.Errorf("the permanent failure lost its reason: %+v", r)
			}
			if r := res[1]; r.Code != "" || r.Message != "" {
				t.Errorf("a success after a retry kept the old failure: %+v", r)
			}
			if s := c.Stats(); s.RetriedObjects != 3 {
				t.Errorf("RetriedObjects = %d, want 3", s.RetriedObjects)
			}
		})
	}
}

func TestMarkTransferredGivesUpOnAnObjectAfterTheAttemptCap(t *testing.T) {
	m := &markFake{t: t, answer: func(id string, call int) (bool, string, string) {
		if id == "stuck" {
			return false, "LOCK_COMPETITION", "locked"
		}
		return true, "", ""
	}}
	f := newFake(t, m.ServeHTTP)
	c, _ := newClient(t, f, nil)
	res, err := c.MarkTransferred(context.Background(), Payment, []string{"fine", "stuck"})
	if err != nil {
		t.Fatalf("err = %v; a failing object is a result, not an error", err)
	}
	want := []MarkResult{
		{ID: "fine", OK: true, Attempts: 1},
		{ID: "stuck", OK: false, Code: "LOCK_COMPETITION", Message: "locked", Attempts: fastPolicy.MaxAttempts},
	}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("results %+v\nwant %+v", res, want)
	}
}

func TestMarkTransferredWholeCallFailures(t *testing.T) {
	t.Run("dropped connection then success", func(t *testing.T) {
		m := &markFake{t: t, answer: allOK}
		first := true
		var mu sync.Mutex
		f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			drop := first
			first = false
			mu.Unlock()
			if drop {
				dropConnection(t, w)
				return
			}
			m.ServeHTTP(w, r)
		})
		c, _ := newClient(t, f, func(cfg *Config) {
			cfg.HTTPClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		})
		res, err := c.MarkTransferred(context.Background(), Invoice, []string{"a", "b"})
		if err != nil {
			t.Fatal(err)
		}
		if len(f.requests()) != 2 || res[0].Attempts != 2 || !res[0].OK || !res[1].OK {
			t.Errorf("%d requests, results %+v; want 2 requests and both marked after 2 attempts", len(f.requests()), res)
		}
		if s := c.Stats(); s.RetriesTransport != 1 {
			t.Errorf("RetriesTransport = %d, want 1", s.RetriesTransport)
		}
	})
	t.Run("503 until the cap", func(t *testing.T) {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, r, http.StatusServiceUnavailable, `{"reasons":[{"code":53000060,"message":"down"}]}`, false)
		})
		c, _ := newClient(t, f, nil)
		res, err := c.MarkTransferred(context.Background(), CreditMemo, []string{"a"})
		var ze *Error
		if res != nil || !errors.As(err, &ze) || ze.Status != 503 || !retry.IsTransient(err) || ze.Op != "mark CreditMemo batch 1" {
			t.Fatalf("res %v, err %v; want no results and a transient 503", res, err)
		}
		if n := len(f.requests()); n != fastPolicy.MaxAttempts {
			t.Errorf("%d requests, want %d", n, fastPolicy.MaxAttempts)
		}
	})
	t.Run("unknown field is permanent", func(t *testing.T) {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, r, http.StatusBadRequest, `{"message":"Error - unrecognised fields"}`, false)
		})
		c, _ := newClient(t, f, nil)
		_, err := c.MarkTransferred(context.Background(), Invoice, []string{"a"})
		if err == nil || retry.IsTransient(err) || !strings.Contains(err.Error(), "unrecognised fields") {
			t.Fatalf("err = %v, want a permanent error naming the problem", err)
		}
		if n := len(f.requests()); n != 1 {
			t.Errorf("%d requests, want 1", n)
		}
	})
	t.Run("memo call refused with reasons in a 200", func(t *testing.T) {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, r, http.StatusOK, `{"success":false,"reasons":[{"code":53000040,"message":"memos not found"}],"requestId":"rq-1"}`, false)
		})
		c, _ := newClient(t, f, nil)
		_, err := c.MarkTransferred(context.Background(), DebitMemo, []string{"a"})
		var ze *Error
		if !errors.As(err, &ze) || retry.IsTransient(err) || ze.RequestID != "rq-1" || !strings.Contains(err.Error(), "53000040 memos not found") {
			t.Fatalf("err = %v, want a permanent error with the reason and request id", err)
		}
	})
	t.Run("results that do not match the request", func(t *testing.T) {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, r, http.StatusOK, `[{"Id":"a","Success":true}]`, false)
		})
		c, _ := newClient(t, f, nil)
		res, err := c.MarkTransferred(context.Background(), Invoice, []string{"a", "b"})
		if res != nil || err == nil || !strings.Contains(err.Error(), "1 results for 2 objects") {
			t.Fatalf("res %v, err %v; want an error and no results", res, err)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		m := &markFake{t: t, answer: allOK}
		f := newFake(t, m.ServeHTTP)
		c, _ := newClient(t, f, nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		res, err := c.MarkTransferred(ctx, Invoice, ids("x", 60))
		if res != nil || !errors.Is(err, context.Canceled) {
			t.Fatalf("res %v, err %v; want context.Canceled", res, err)
		}
		if n := len(f.requests()); n != 0 {
			t.Errorf("%d requests after cancel", n)
		}
	})
}

func TestMarkTransferredMatchesResultsByID(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		// Answers in reverse order; each memo names its id.
		writeJSON(w, r, http.StatusOK, `{"success":true,"memos":[{"id":"b","success":false,"reasons":[{"code":53000020,"message":"bad"}]},{"id":"a","success":true}]}`, false)
	})
	c, _ := newClient(t, f, nil)
	res, err := c.MarkTransferred(context.Background(), CreditMemo, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].OK || res[1].OK || res[1].Code != "53000020" {
		t.Errorf("results %+v, want a ok and b failed", res)
	}
}

func TestMarkTransferredRejectsBadInput(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) { t.Error("nothing should be sent") })
	c, _ := newClient(t, f, nil)
	for _, tt := range []struct {
		objectType string
		ids        []string
		err        string
	}{
		{"Account", []string{"a"}, `unknown object type "Account"`},
		{"invoice", []string{"a"}, `unknown object type "invoice"`},
		{Invoice, []string{"a", ""}, "id 1 is empty"},
	} {
		if _, err := c.MarkTransferred(context.Background(), tt.objectType, tt.ids); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s %q: err = %v, want %q", tt.objectType, tt.ids, err, tt.err)
		}
	}
}

func TestMarkTransferredSendsDuplicatesOnce(t *testing.T) {
	m := &markFake{t: t, answer: allOK}
	f := newFake(t, m.ServeHTTP)
	c, _ := newClient(t, f, nil)
	res, err := c.MarkTransferred(context.Background(), Refund, []string{"a", "b", "a"})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.batches(); !reflect.DeepEqual(got, [][]string{{"a", "b"}}) {
		t.Errorf("calls %v, want one call with a and b", got)
	}
	if len(res) != 3 || res[0].ID != "a" || res[1].ID != "b" || res[2].ID != "a" || !res[2].OK {
		t.Errorf("results %+v, want one per input id", res)
	}
}
