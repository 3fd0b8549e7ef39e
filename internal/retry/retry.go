// Package retry is the project's one retry policy: jittered exponential backoff
// (github.com/cenkalti/backoff/v5), Retry-After honoured, a cap on attempts and
// on total time, and context cancellation. Only errors marked transient are
// retried; everything else is permanent.
package retry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Policy bounds the retries of one operation. The zero value means the defaults.
type Policy struct {
	MaxAttempts int           // attempts in all, the first included; 0 → 6
	Initial     time.Duration // first backoff; 0 → 500ms
	Max         time.Duration // largest backoff; 0 → 30s
	MaxElapsed  time.Duration // total time across attempts; 0 → 5m
	// Notify, when set, is told of each retry before it waits.
	Notify func(err error, wait time.Duration)
}

func (p Policy) withDefaults() Policy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 6
	}
	if p.Initial <= 0 {
		p.Initial = 500 * time.Millisecond
	}
	if p.Max <= 0 {
		p.Max = 30 * time.Second
	}
	if p.MaxElapsed <= 0 {
		p.MaxElapsed = 5 * time.Minute
	}
	return p
}

// TransientError marks an error worth retrying, optionally after a server-given delay.
type TransientError struct {
	Err   error
	After time.Duration // from Retry-After; 0 lets the backoff decide
}

func (e *TransientError) Error() string { return e.Err.Error() }
func (e *TransientError) Unwrap() error { return e.Err }

// As lets the backoff library see a server-given delay.
func (e *TransientError) As(target any) bool {
	if t, ok := target.(**backoff.RetryAfterError); ok && e.After > 0 {
		*t = &backoff.RetryAfterError{Duration: e.After}
		return true
	}
	return false
}

// Transient marks err as retryable.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &TransientError{Err: err}
}

// TransientAfter marks err as retryable no sooner than after d.
func TransientAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &TransientError{Err: err, After: d}
}

// IsTransient reports whether err (or an error it wraps) is marked retryable.
func IsTransient(err error) bool {
	var t *TransientError
	return errors.As(err, &t)
}

// BudgetError is a server-given wait (Retry-After, RateLimit-Reset) longer than
// what is left of the policy's time budget: Do stops at once rather than sleep
// through most of the budget and fail anyway. Err is the transient error that
// asked for the wait.
type BudgetError struct {
	Wait, Left time.Duration
	Err        error
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("%v (the server asks to wait %s, more than the %s left of the retry budget)", e.Err, e.Wait, e.Left.Round(time.Second))
}

func (e *BudgetError) Unwrap() error { return e.Err }

// Do calls op until it succeeds, returns a permanent error, or the policy runs
// out; it returns the number of attempts made and the last error. When the
// attempts run out on a transient error, the error stays transient so callers
// can tell "gave up on a flaky peer" from "the peer said no".
func Do(ctx context.Context, p Policy, op func(ctx context.Context, attempt int) error) (attempts int, err error) {
	p = p.withDefaults()
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = p.Initial
	b.MaxInterval = p.Max
	start := time.Now()
	_, err = backoff.Retry(ctx, func() (struct{}, error) {
		attempts++
		err := op(ctx, attempts)
		if err != nil && !IsTransient(err) {
			return struct{}{}, backoff.Permanent(err)
		}
		var te *TransientError
		if errors.As(err, &te) && te.After > 0 {
			if left := p.MaxElapsed - time.Since(start); te.After > left {
				return struct{}{}, backoff.Permanent(&BudgetError{Wait: te.After, Left: left, Err: err})
			}
		}
		return struct{}{}, err
	},
		backoff.WithBackOff(b),
		backoff.WithMaxTries(uint(p.MaxAttempts)),
		backoff.WithMaxElapsedTime(p.MaxElapsed),
		backoff.WithNotify(func(err error, d time.Duration) {
			if p.Notify != nil {
				p.Notify(err, d)
			}
		}),
	)
	if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		err = fmt.Errorf("%w (after %d attempts: %v)", ctx.Err(), attempts, err)
	}
	return attempts, err
}

// RetryAfter parses a Retry-After header (seconds or an HTTP date) relative to now.
func RetryAfter(h string, now time.Time) (time.Duration, bool) {
	if h == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(h); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		if d := t.Sub(now); d > 0 {
			return d, true
		}
		return 0, true
	}
	return 0, false
}

// RateLimitReset parses a RateLimit-Reset header: the seconds until the limit's
// window resets (draft-ietf-httpapi-ratelimit-headers, as Zuora sends it).
func RateLimitReset(h string) (time.Duration, bool) {
	s, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || s < 0 {
		return 0, false
	}
	return time.Duration(s) * time.Second, true
}

// RetryableStatus reports whether an HTTP status is worth retrying: 408, 429 and 5xx
// other than 501 and 505.
func RetryableStatus(code int) bool {
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
		return true
	case code == http.StatusNotImplemented, code == http.StatusHTTPVersionNotSupported:
		return false
	case code >= 500:
		return true
	}
	return false
}
