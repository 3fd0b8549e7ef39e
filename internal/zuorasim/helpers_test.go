package zuorasim

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/testutil"
)

var (
	genFrom = time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC)
	genTo   = time.Date(2026, 11, 25, 23, 0, 0, 0, time.UTC)
)

// harness is a running simulator with a default tenant and a valid token.
type harness struct {
	t      *testing.T
	sim    *Sim
	srv    *httptest.Server
	clock  *testutil.Clock
	token  string
	id     string
	secret string
	entity string // sent as Zuora-Entity-Ids when set
}

var (
	defaultTenantOnce sync.Once
	defaultTenant     *Tenant
)

func tenant() *Tenant {
	defaultTenantOnce.Do(func() { defaultTenant = Generate(1, DefaultVolume(), genFrom, genTo) })
	return defaultTenant
}

func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	clock := testutil.NewClock(time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC))
	if opts.Now == nil {
		opts.Now = clock.Now
	}
	sim := New(opts)
	sim.Load(tenant())
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	h := &harness{t: t, sim: sim, srv: srv, clock: clock, id: opts.ClientID, secret: opts.ClientSecret, entity: opts.RequireEntityID}
	if h.id == "" {
		h.id, h.secret = DefaultClientID, DefaultClientSecret
	}
	h.token = h.newToken()
	return h
}

func (h *harness) newToken() string {
	h.t.Helper()
	resp, body := h.do(http.MethodPost, "/oauth/token", nil, "application/x-www-form-urlencoded",
		strings.NewReader(url.Values{"client_id": {h.id}, "client_secret": {h.secret},
			"grant_type": {"client_credentials"}}.Encode()), false)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("token: status %d: %s", resp.StatusCode, body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		h.t.Fatalf("token body %s: %v", body, err)
	}
	return tok.AccessToken
}

// do sends a request; auth adds the bearer token. Headers may be passed via hdr.
func (h *harness) do(method, path string, hdr http.Header, ctype string, body io.Reader, auth bool) (*http.Response, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if h.entity != "" && req.Header.Get("Zuora-Entity-Ids") == "" {
		req.Header.Set("Zuora-Entity-Ids", h.entity)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	if req.Header.Get("Zuora-Version") == "" && hdr.Get("X-No-Version") == "" {
		req.Header.Set("Zuora-Version", LatestVersion)
	}
	req.Header.Del("X-No-Version")
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, raw
}

// get runs an Object Query GET with the given query string.
func (h *harness) get(path string, q url.Values) (*http.Response, []byte) {
	h.t.Helper()
	p := path
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	return h.do(http.MethodGet, p, nil, "", nil, true)
}

// page is a decoded Object Query envelope.
type page struct {
	NextPage *string          `json:"nextPage"`
	Data     []map[string]any `json:"data"`
}

func decode[T any](t *testing.T, raw []byte) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %.300s: %v", raw, err)
	}
	return v
}

func (h *harness) list(path string, q url.Values) page {
	h.t.Helper()
	resp, body := h.get(path, q)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("GET %s?%s: status %d: %s", path, q.Encode(), resp.StatusCode, body)
	}
	return decode[page](h.t, body)
}

// walk follows nextPage to the end and returns every record.
func (h *harness) walk(path string, q url.Values) []map[string]any {
	h.t.Helper()
	var all []map[string]any
	for n := 0; ; n++ {
		if n > 100000 {
			h.t.Fatal("walk does not end")
		}
		p := h.list(path, q)
		all = append(all, p.Data...)
		if p.NextPage == nil {
			return all
		}
		q = cloneValues(q)
		q.Set("cursor", *p.NextPage)
	}
}

func cloneValues(q url.Values) url.Values {
	c := url.Values{}
	for k, v := range q {
		c[k] = append([]string(nil), v...)
	}
	return c
}

type reasonsBody struct {
	Reasons []struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"reasons"`
	RequestID string `json:"requestId"`
}

// wantReasons asserts a §2.5 error: status and 8-digit code.
func wantReasons(t *testing.T, resp *http.Response, body []byte, status, code int) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	rb := decode[reasonsBody](t, body)
	if len(rb.Reasons) != 1 || rb.Reasons[0].Code != code || rb.Reasons[0].Message == "" {
		t.Fatalf("reasons %+v, want one with code %d", rb.Reasons, code)
	}
	if len(rb.RequestID) != 36 {
		t.Fatalf("requestId %q is not a 36-char uuid", rb.RequestID)
	}
}

func ids(recs []map[string]any) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i], _ = r["id"].(string)
	}
	return out
}

func q(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// find returns the first snapshot record of object satisfying pred.
func find(t *testing.T, s *Sim, object string, pred func(map[string]any) bool) map[string]any {
	t.Helper()
	for _, r := range s.Snapshot(object) {
		if pred(r) {
			return r
		}
	}
	t.Fatalf("no %s matches", object)
	return nil
}
