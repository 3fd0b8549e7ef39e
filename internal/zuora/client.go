// Package zuora is the only Zuora HTTP client of the project: OAuth tokens,
// one retry policy for every call, Object Query pages and the
// TransferredToAccounting write-back.
package zuora

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/time/rate"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/retry"
)

// APIVersion is pinned on every request so errors come back as 4xx/5xx with
// reasons, never as HTTP 200.
const APIVersion = "2025-08-12"

// DefaultMaxConcurrency bounds the requests one Client has in flight.
const DefaultMaxConcurrency = 8

// maxBody caps a response body held in memory.
const maxBody = 64 << 20

// Config configures a Client.
type Config struct {
	BaseURL, ClientID, ClientSecret string
	HTTPClient                      *http.Client // nil → a client with sane timeouts
	MaxConcurrency                  int          // requests in flight across all calls; 0 → 8 (Zuora allows 80 Object Query calls per tenant)
	RunID                           string       // sent as Zuora-Track-Id
	Retry                           retry.Policy
	RequestLog                      io.Writer // one JSON line per HTTP exchange, secrets redacted
	LogBodies                       bool      // also log request and response bodies
	Logger                          *slog.Logger
	// EntityID, on a multi-entity tenant, is sent as Zuora-Entity-Ids on every
	// call (the token call included) to name the entity the OAuth client acts in.
	EntityID string
	// RequestsPerMinute spaces requests (token calls excepted) so the client stays
	// under a tenant's rate cap, e.g. a sandbox's; 0 sends as fast as allowed.
	RequestsPerMinute int
	// ConcurrencyRecovery is how long after a concurrency 429 the client waits
	// before widening again by one request; 0 means 10s.
	ConcurrencyRecovery time.Duration
}

// Client speaks Zuora's REST API. It is safe for concurrent use.
type Client struct {
	cfg     Config
	base    string
	http    *http.Client
	gate    *gate
	limiter *rate.Limiter // nil without RequestsPerMinute
	log     *slog.Logger
	now     func() time.Time
	tok     tokenCache
	stats   counters
	logMu   sync.Mutex
	secrets secretSet
	bodies  chan *bytes.Buffer // buffers kept for the next page bodies (keptBodies)
}

// Stats counts what a Client did, for the run report.
type Stats struct {
	Requests         int64 // HTTP exchanges, token requests included
	TokensFetched    int64
	RetriesRateLimit int64 // 429
	Retries5xx       int64 // 5xx and 408
	RetriesTransport int64 // connection failures, truncated or malformed bodies
	RetriesReasons   int64 // an answer whose reasons all have a retryable category
	RetriedObjects   int64 // write-back objects sent again after a retryable code
	Refreshes401     int64 // a 401 answered with a fresh token and one more try
	ConcurrencyCuts  int64 // a concurrency 429 narrowed the requests in flight
	Fallbacks        int64 // objects marked through a v1 PUT after the update action refused them
}

type counters struct {
	requests, tokens, rateLimit, server, transport, reasons, objects, refresh401, cuts, fallbacks atomic.Int64
}

// New checks cfg and returns a Client; nothing is sent until the first call.
func New(cfg Config) (*Client, error) {
	switch {
	case cfg.BaseURL == "":
		return nil, errors.New("zuora: missing BaseURL")
	case cfg.ClientID == "":
		return nil, errors.New("zuora: missing ClientID")
	case cfg.ClientSecret == "":
		return nil, errors.New("zuora: missing ClientSecret")
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("zuora: BaseURL %q is not an http(s) URL", cfg.BaseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("zuora: BaseURL %q has a query or fragment", cfg.BaseURL)
	}
	if err := validTrackID(cfg.RunID); err != nil {
		return nil, fmt.Errorf("zuora: RunID: %w", err)
	}
	if cfg.MaxConcurrency < 0 {
		return nil, fmt.Errorf("zuora: MaxConcurrency %d is negative", cfg.MaxConcurrency)
	}
	if cfg.MaxConcurrency == 0 {
		cfg.MaxConcurrency = DefaultMaxConcurrency
	}
	if err := validTrackID(cfg.EntityID); err != nil || strings.ContainsAny(cfg.EntityID, " ,") {
		return nil, fmt.Errorf("zuora: EntityID %q is not an entity id", cfg.EntityID)
	}
	if cfg.RequestsPerMinute < 0 {
		return nil, fmt.Errorf("zuora: RequestsPerMinute %d is negative", cfg.RequestsPerMinute)
	}
	if cfg.ConcurrencyRecovery <= 0 {
		cfg.ConcurrencyRecovery = 10 * time.Second
	}
	c := &Client{
		cfg:    cfg,
		base:   strings.TrimRight(cfg.BaseURL, "/"),
		http:   cfg.HTTPClient,
		gate:   newGate(cfg.MaxConcurrency, cfg.ConcurrencyRecovery),
		log:    cfg.Logger,
		now:    time.Now,
		bodies: make(chan *bytes.Buffer, keptBodies),
	}
	if cfg.RequestsPerMinute > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(float64(cfg.RequestsPerMinute)/60), 1)
	}
	if c.http == nil {
		c.http = defaultHTTPClient(cfg.MaxConcurrency)
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if cfg.RunID != "" {
		c.log = c.log.With("run_id", cfg.RunID)
	}
	c.secrets.add(cfg.ClientSecret)
	return c, nil
}

// defaultHTTPClient bounds every phase of an exchange; Zuora itself gives up on a
// request after 120 s.
func defaultHTTPClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 3 * time.Minute,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 150 * time.Second,
			ExpectContinueTimeout: time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   conns,
		},
	}
}

// validTrackID enforces Zuora's Zuora-Track-Id rules: at most 64 printable ASCII
// characters, none of : ; " '.
func validTrackID(s string) error {
	if len(s) > 64 {
		return fmt.Errorf("%d characters, at most 64 allowed", len(s))
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b < 0x20 || b > 0x7e {
			return fmt.Errorf("byte %d is not printable ASCII", i)
		}
		if strings.IndexByte(`:;"'`, b) >= 0 {
			return fmt.Errorf("character %q is not allowed", b)
		}
	}
	return nil
}

// Stats returns the counters so far.
func (c *Client) Stats() Stats {
	return Stats{
		Requests:         c.stats.requests.Load(),
		TokensFetched:    c.stats.tokens.Load(),
		RetriesRateLimit: c.stats.rateLimit.Load(),
		Retries5xx:       c.stats.server.Load(),
		RetriesTransport: c.stats.transport.Load(),
		RetriesReasons:   c.stats.reasons.Load(),
		RetriedObjects:   c.stats.objects.Load(),
		Refreshes401:     c.stats.refresh401.Load(),
		ConcurrencyCuts:  c.stats.cuts.Load(),
		Fallbacks:        c.stats.fallbacks.Load(),
	}
}

// request is one HTTP exchange to make; the body is bytes so it can be replayed.
type request struct {
	op       string // names the operation in errors and logs
	method   string
	path     string // below BaseURL, e.g. "/object-query/invoices"
	rawQuery string // already encoded
	body     []byte
	ctype    string
	token    bool // the token endpoint: no Authorization, bodies redacted
	// decode, when set, reads a 2xx answer as it arrives instead of holding
	// the whole body (unless the request log keeps bodies); its error, already
	// classified, fails the attempt. Other answers are read whole.
	decode func(status int, h http.Header, body io.Reader) error
}

type response struct {
	status   int
	header   http.Header
	body     []byte
	decoded  bool  // decode read the body: body is nil
	received int64 // bytes of the body as sent, after gunzip
}

// requestID is Zuora's id for the exchange, from the header.
func (r *response) requestID() string { return r.header.Get("Zuora-Request-Id") }

// withRetry runs op under the configured policy, counting each retry by reason.
func (c *Client) withRetry(ctx context.Context, op func(ctx context.Context, attempt int) error) (int, error) {
	p := c.cfg.Retry
	user := p.Notify
	p.Notify = func(err error, wait time.Duration) {
		c.countRetry(ctx, err)
		c.log.WarnContext(ctx, "zuora call will be retried", "err", err, "wait", wait)
		if user != nil {
			user(err, wait)
		}
	}
	n, err := retry.Do(ctx, p, op)
	var be *retry.BudgetError
	var e *Error
	if errors.As(err, &be) && errors.As(be.Err, &e) && e.Status == http.StatusTooManyRequests {
		return n, rateLimitError(e, be.Wait, be.Left, c.now())
	}
	return n, err
}

func (c *Client) countRetry(ctx context.Context, err error) {
	var pe *pendingObjectsError
	if errors.As(err, &pe) {
		c.stats.objects.Add(int64(pe.n))
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		c.stats.transport.Add(1)
		return
	}
	switch {
	case e.Status == http.StatusTooManyRequests:
		c.stats.rateLimit.Add(1)
		if e.Limit != nil && e.Limit.Concurrency && c.gate.narrow(c.now()) {
			c.stats.cuts.Add(1)
			c.log.WarnContext(ctx, "zuora concurrency limit reached: fewer requests in flight for a while",
				"limit", e.Limit.ConcurrencyLimit, "in_flight", c.gate.widthNow())
		}
	case e.Status == http.StatusRequestTimeout || e.Status >= 500:
		c.stats.server.Add(1)
	case e.Err != nil || e.Status == 0:
		c.stats.transport.Add(1)
	default:
		c.stats.reasons.Add(1)
	}
}

// call makes one attempt of rq with a bearer token, fetching a fresh token and
// trying once more after a 401, and turns a non-2xx answer into an *Error.
func (c *Client) call(ctx context.Context, rq request, attempt int) (*response, error) {
	tok, err := c.token(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := c.roundTrip(ctx, rq, tok, attempt)
	if err != nil {
		return nil, err
	}
	if resp.status == http.StatusUnauthorized {
		c.stats.refresh401.Add(1)
		c.log.InfoContext(ctx, "zuora token refused, fetching a fresh one", "op", rq.op)
		c.invalidate(tok)
		if tok, err = c.token(ctx); err != nil {
			return nil, err
		}
		if resp, err = c.roundTrip(ctx, rq, tok, attempt); err != nil {
			return nil, err
		}
		if resp.status == http.StatusUnauthorized {
			// A token issued a moment ago was refused too (revoked, or a token
			// cache out of step on Zuora's side). Bad credentials already fail
			// at /oauth/token, so retry within the policy's limits.
			c.invalidate(tok)
			return resp, retry.Transient(c.errorFrom(rq.op, resp))
		}
	}
	return resp, c.check(rq.op, resp)
}

// check classifies an answer: nil for 2xx; a transient *Error for 408, 429,
// 5xx and a 409 whose reasons are all locking contention (category 50),
// honouring Retry-After, or RateLimit-Reset on a 429 without it; a permanent
// *Error for the rest.
func (c *Client) check(op string, resp *response) error {
	if resp.status >= 200 && resp.status < 300 {
		return nil
	}
	e := c.errorFrom(op, resp)
	if resp.status == http.StatusConflict && allCategory(e.Reasons, "50") {
		return retry.Transient(e)
	}
	if !retry.RetryableStatus(resp.status) {
		return e
	}
	if resp.status == http.StatusTooManyRequests {
		e.Limit = limitFrom(resp.header)
	}
	if d, ok := retry.RetryAfter(resp.header.Get("Retry-After"), time.Now()); ok {
		return retry.TransientAfter(e, d)
	}
	if e.Limit != nil && e.Limit.Reset > 0 {
		return retry.TransientAfter(e, e.Limit.Reset)
	}
	return retry.Transient(e)
}

// errorFrom reads whatever error body Zuora sent into an *Error.
func (c *Client) errorFrom(op string, resp *response) *Error {
	e := &Error{Op: op, Status: resp.status, RequestID: resp.requestID()}
	var b errorBody
	if err := json.Unmarshal(resp.body, &b); err != nil {
		e.Message = c.secrets.scrub(snippet(resp.body))
		return e
	}
	e.Reasons = b.Reasons
	if b.RequestID != "" {
		e.RequestID = b.RequestID
	}
	msg := b.Message
	var oauth string
	if json.Unmarshal(b.OAuthError, &oauth) == nil && oauth != "" {
		msg = strings.TrimSpace(oauth + " " + b.ErrorDescription)
	}
	if msg == "" && len(b.Reasons) == 0 {
		msg = snippet(resp.body)
	}
	e.Message = c.secrets.scrub(msg)
	return e
}

// roundTrip makes one HTTP exchange within the concurrency bound, decodes gzip
// and writes the request log. A failure to get a whole answer is a transient
// *Error with status 0 unless the context ended.
func (c *Client) roundTrip(ctx context.Context, rq request, bearer string, attempt int) (*response, error) {
	if c.limiter != nil && !rq.token {
		if err := c.limiter.Wait(ctx); err != nil {
			return nil, &Error{Op: rq.op, Err: err}
		}
	}
	if err := c.gate.acquire(ctx); err != nil {
		return nil, &Error{Op: rq.op, Err: err}
	}
	defer c.gate.release()

	u := c.base + rq.path
	if rq.rawQuery != "" {
		u += "?" + rq.rawQuery
	}
	var body io.Reader
	if rq.body != nil {
		body = bytes.NewReader(rq.body)
	}
	req, err := http.NewRequestWithContext(ctx, rq.method, u, body)
	if err != nil {
		return nil, &Error{Op: rq.op, Err: err}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Accept-Encoding", "gzip")
	req.Header.Set("Zuora-Version", APIVersion)
	if c.cfg.EntityID != "" {
		req.Header.Set("Zuora-Entity-Ids", c.cfg.EntityID)
	}
	if c.cfg.RunID != "" {
		req.Header.Set("Zuora-Track-Id", c.cfg.RunID)
	}
	if rq.ctype != "" {
		req.Header.Set("Content-Type", rq.ctype)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}

	c.stats.requests.Add(1)
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.failed(ctx, rq, u, attempt, start, 0, nil, err)
	}
	defer resp.Body.Close()
	if rq.decode != nil && resp.StatusCode >= 200 && resp.StatusCode < 300 && !c.cfg.LogBodies {
		return c.decodeStream(rq, u, attempt, start, resp)
	}
	data, err := readBody(resp)
	if err != nil {
		return nil, c.failed(ctx, rq, u, attempt, start, resp.StatusCode, resp.Header, err)
	}
	out := &response{status: resp.StatusCode, header: resp.Header, body: data, received: int64(len(data))}
	c.logExchange(rq, u, attempt, start, out, nil)
	return out, nil
}

// decodeStream hands a 2xx body to rq.decode as it arrives, gunzipped and
// capped at maxBody, then reads what is left so the connection can be reused.
func (c *Client) decodeStream(rq request, u string, attempt int, start time.Time, resp *http.Response) (*response, error) {
	out := &response{status: resp.StatusCode, header: resp.Header, decoded: true}
	body, closeBody, err := bodyReader(resp)
	if err != nil {
		return nil, c.failedDecode(rq, u, attempt, start, out, retry.Transient(&Error{Op: rq.op, Status: resp.StatusCode, RequestID: out.requestID(), Err: err}))
	}
	defer closeBody()
	counted := &countingReader{r: &cappedReader{r: body, left: maxBody}}
	err = rq.decode(resp.StatusCode, resp.Header, counted)
	if err == nil {
		_, _ = io.Copy(io.Discard, counted)
	}
	out.received = counted.n
	if err != nil {
		return nil, c.failedDecode(rq, u, attempt, start, out, err)
	}
	c.logExchange(rq, u, attempt, start, out, nil)
	return out, nil
}

// failedDecode logs an exchange whose body could not be decoded and returns
// the decoder's error as it classified it.
func (c *Client) failedDecode(rq request, u string, attempt int, start time.Time, out *response, err error) error {
	c.logExchange(rq, u, attempt, start, out, err)
	return err
}

// failed logs and classifies an exchange that produced no whole answer.
func (c *Client) failed(ctx context.Context, rq request, u string, attempt int, start time.Time, status int, h http.Header, err error) error {
	e := &Error{Op: rq.op, Status: status, Err: err}
	if h != nil {
		e.RequestID = h.Get("Zuora-Request-Id")
	}
	c.logExchange(rq, u, attempt, start, &response{status: status, header: h}, e)
	if ctx.Err() != nil {
		return e
	}
	return retry.Transient(e)
}

// gzipReaders are reused from one answer to the next (a reader holds some
// 40 KB of decompressor state).
var gzipReaders sync.Pool

// bodyReader is the answer's body, gunzipped when Zuora compressed it; done
// releases the decompressor.
func bodyReader(resp *http.Response) (r io.Reader, done func(), err error) {
	if !strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		return resp.Body, func() {}, nil
	}
	zr, _ := gzipReaders.Get().(*gzip.Reader)
	if zr == nil {
		zr, err = gzip.NewReader(resp.Body)
	} else {
		err = zr.Reset(resp.Body)
	}
	if err != nil {
		return nil, func() {}, fmt.Errorf("read gzip body: %w", err)
	}
	return zr, func() { zr.Close(); gzipReaders.Put(zr) }, nil
}

// cappedReader fails once more than left bytes are read, so that no answer
// grows without bound in memory.
type cappedReader struct {
	r    io.Reader
	left int64
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		var one [1]byte
		n, err := c.r.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("read body: larger than %d bytes", maxBody)
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// countingReader counts the bytes read through it, for the request log.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// readBody reads a whole response body, gunzipping it when Zuora compressed it.
func readBody(resp *http.Response) ([]byte, error) {
	r, done, err := bodyReader(resp)
	if err != nil {
		return nil, err
	}
	defer done()
	data, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(data) > maxBody {
		return nil, fmt.Errorf("read body: larger than %d bytes", maxBody)
	}
	return data, nil
}
