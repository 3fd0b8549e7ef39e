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

// tokenCache holds the current bearer token and the fetch in flight, which
// every caller that needs a token meanwhile shares: one fetch (with its
// retries) and one outcome, a token or the same error, for all of them.
type tokenCache struct {
	mu        sync.Mutex
	value     string
	refreshAt time.Time
	fetch     *tokenFetch
}

// tokenFetch is one token fetch, retried within the policy, and its outcome.
type tokenFetch struct {
	done chan struct{}
	tok  string
	err  error
}

// cachedLocked returns the current token while it is not due for refresh; c.tok.mu is held.
func (c *Client) cachedLocked() (string, bool) {
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
// for refresh. Concurrent callers share one fetch; a fetch that fails after
// the retry policy fails every one of them with the same permanent error, so
// no caller retries it again on its own.
func (c *Client) token(ctx context.Context) (string, error) {
	for {
		c.tok.mu.Lock()
		if tok, ok := c.cachedLocked(); ok {
			c.tok.mu.Unlock()
			return tok, nil
		}
		f := c.tok.fetch
		lead := f == nil
		if lead {
			f = &tokenFetch{done: make(chan struct{})}
			c.tok.fetch = f
		}
		c.tok.mu.Unlock()
		if lead {
			f.tok, f.err = c.fetchTokenRetried(ctx)
			c.tok.mu.Lock()
			c.tok.fetch = nil
			c.tok.mu.Unlock()
			close(f.done)
			return f.tok, f.err
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return "", &Error{Op: "fetch token", Err: ctx.Err()}
		}
		if f.err != nil && ctx.Err() == nil && (errors.Is(f.err, context.Canceled) || errors.Is(f.err, context.DeadlineExceeded)) {
			continue // the caller that fetched gave up on its own context, not on Zuora
		}
		return f.tok, f.err
	}
}

// fetchTokenRetried fetches a token within the retry policy. Its failure is
// permanent: a *CredentialsError when Zuora refused the client credentials,
// else a *TokenError with the last answer.
func (c *Client) fetchTokenRetried(ctx context.Context) (string, error) {
	var tok string
	attempts, err := c.withRetry(ctx, func(ctx context.Context, attempt int) error {
		t, err := c.fetchToken(ctx, attempt)
		tok = t
		return err
	})
	if err == nil {
		return tok, nil
	}
	var ze *Error
	if !errors.As(err, &ze) || ctx.Err() != nil {
		return "", err
	}
	if ze.Status == http.StatusUnauthorized || ze.Status == http.StatusForbidden {
		return "", &CredentialsError{Err: ze}
	}
	return "", &TokenError{Err: ze, Attempts: attempts}
}

// fetchToken makes one client-credentials exchange. Failures are classified
// like any call, so the retry loop of fetchTokenRetried covers it.
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
