package zuora

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/retry"
)

// refreshMargin is how long before expiry a token is replaced; short-lived
// tokens are replaced at half-life instead.
const refreshMargin = 5 * time.Minute

// defaultLifetime applies when the token answer has no usable expires_in.
const defaultLifetime = time.Hour

// tokenCache holds the current bearer token. lock is a one-slot semaphore
// whose holder may fetch, so concurrent callers share one fetch and a waiter
// can still give up on its context.
type tokenCache struct {
	lock      chan struct{}
	mu        sync.Mutex
	value     string
	refreshAt time.Time
}

// cached returns the current token while it is not due for refresh.
func (c *Client) cached() (string, bool) {
	c.tok.mu.Lock()
	defer c.tok.mu.Unlock()
	if c.tok.value == "" || !c.now().Before(c.tok.refreshAt) {
		return "", false
	}
	return c.tok.value, true
}

// invalidate drops tok after Zuora refused it, unless another caller already
// replaced it.
func (c *Client) invalidate(tok string) {
	c.tok.mu.Lock()
	defer c.tok.mu.Unlock()
	if c.tok.value == tok {
		c.tok.value = ""
	}
}

// token returns a bearer token, fetching one when none is cached or it is due
// for refresh.
func (c *Client) token(ctx context.Context, attempt int) (string, error) {
	if tok, ok := c.cached(); ok {
		return tok, nil
	}
	select {
	case c.tok.lock <- struct{}{}:
	case <-ctx.Done():
		return "", &Error{Op: "fetch token", Err: ctx.Err()}
	}
	defer func() { <-c.tok.lock }()
	if tok, ok := c.cached(); ok {
		return tok, nil
	}
	return c.fetchToken(ctx, attempt)
}

// fetchToken makes one client-credentials exchange. Failures are classified
// like any call, so the caller's retry loop covers the token endpoint too.
func (c *Client) fetchToken(ctx context.Context, attempt int) (string, error) {
	const op = "fetch token"
	form := url.Values{
		"client_id":     {c.cfg.ClientID},
		"client_secret": {c.cfg.ClientSecret},
		"grant_type":    {"client_credentials"},
	}
	start := c.now()
	resp, err := c.roundTrip(ctx, request{
		op:     op,
		method: http.MethodPost,
		path:   "/oauth/token",
		body:   []byte(form.Encode()),
		ctype:  "application/x-www-form-urlencoded",
		token:  true,
	}, "", attempt)
	if err != nil {
		return "", err
	}
	if err := c.check(op, resp); err != nil {
		return "", err
	}
	var tr struct {
		AccessToken string          `json:"access_token"`
		ExpiresIn   json.RawMessage `json:"expires_in"`
	}
	if err := json.Unmarshal(resp.body, &tr); err != nil || tr.AccessToken == "" {
		// Never quote this body: it may hold a token.
		return "", retry.Transient(&Error{Op: op, Status: resp.status, RequestID: resp.requestID(),
			Err: errors.New("answer has no access_token")})
	}
	c.secrets.add(tr.AccessToken)
	lifetime := parseLifetime(tr.ExpiresIn)
	margin := refreshMargin
	if lifetime/2 < margin {
		margin = lifetime / 2
	}
	c.tok.mu.Lock()
	c.tok.value = tr.AccessToken
	c.tok.refreshAt = start.Add(lifetime - margin)
	c.tok.mu.Unlock()
	c.stats.tokens.Add(1)
	c.log.Debug("zuora token fetched", "lifetime", lifetime)
	return tr.AccessToken, nil
}

// parseLifetime reads expires_in (seconds, a number or a numeric string).
func parseLifetime(raw json.RawMessage) time.Duration {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		s = string(raw)
	}
	secs, err := strconv.ParseFloat(s, 64)
	if err != nil || secs <= 0 {
		return defaultLifetime
	}
	return time.Duration(secs * float64(time.Second))
}
