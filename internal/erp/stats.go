package erp

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/retry"
)

// Stats counts what a Client sent, for the run report and the metrics.
type Stats struct {
	Requests    int64 // HTTP attempts, retries and pings included
	Retries     int64 // attempts after the first of one post
	RateLimited int64 // answers 429
}

type counters struct{ requests, retries, rateLimited atomic.Int64 }

// Stats returns the counters so far.
func (c *Client) Stats() Stats {
	return Stats{Requests: c.stats.requests.Load(), Retries: c.stats.retries.Load(), RateLimited: c.stats.rateLimited.Load()}
}

// count records one answer's status (0: none arrived).
func (c *Client) count(status int) {
	c.stats.requests.Add(1)
	if status == http.StatusTooManyRequests {
		c.stats.rateLimited.Add(1)
	}
}

// PingPath is the ERP API's harmless read (docs/design.md "ERP API").
const PingPath = "/api/ping"

// Ping makes the ERP API's harmless read under the retry policy: nil when the
// ERP answers 200 to the token, a *RefusedError when it refuses the token or
// has no such endpoint (the base URL), another error when it cannot be reached.
func (c *Client) Ping(ctx context.Context) error {
	_, err := retry.Do(ctx, c.policy, func(ctx context.Context, _ int) error {
		ctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+PingPath, nil)
		if err != nil {
			return fmt.Errorf("ping the ERP: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := c.http.Do(req)
		if err != nil {
			c.count(0)
			return retry.Transient(fmt.Errorf("ping the ERP: %w", err))
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		c.count(resp.StatusCode)
		var answer struct {
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &answer)
		switch code := resp.StatusCode; {
		case code == http.StatusOK && answer.OK:
			return nil
		case code == http.StatusUnauthorized, code == http.StatusForbidden, code == http.StatusNotFound, code == http.StatusMethodNotAllowed:
			return &RefusedError{Status: code, Endpoint: PingPath}
		case retry.RetryableStatus(code):
			err := fmt.Errorf("ping the ERP: it answered %d: %s", code, message(answer.Error, body))
			if after, ok := retry.RetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
				return retry.TransientAfter(err, after)
			}
			return retry.Transient(err)
		default:
			return fmt.Errorf("ping the ERP: it answered %d: %s", code, message(answer.Error, body))
		}
	})
	return err
}
