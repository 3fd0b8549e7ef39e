package zuora

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/retry"
)

// Reason is one entry of Zuora's "reasons" array: a code (8 digits whose last
// two are the category) and a message.
type Reason struct {
	Code    string
	Message string
}

// UnmarshalJSON accepts the code as a JSON number (Object Query, v1) or a string.
func (r *Reason) UnmarshalJSON(b []byte) error {
	var raw struct {
		Code    json.RawMessage `json:"code"`
		Message string          `json:"message"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	r.Message = raw.Message
	code := bytes.TrimSpace(raw.Code)
	switch {
	case len(code) == 0 || string(code) == "null":
		r.Code = ""
	case code[0] == '"':
		if err := json.Unmarshal(code, &r.Code); err != nil {
			return err
		}
	default:
		r.Code = string(code)
	}
	return nil
}

// Category is the last two digits of the code, e.g. "27" for a bad filter or
// "70" for a concurrency limit; empty when the code is not numeric.
func (r Reason) Category() string {
	if len(r.Code) < 2 {
		return ""
	}
	if _, err := strconv.ParseUint(r.Code, 10, 64); err != nil {
		return ""
	}
	return r.Code[len(r.Code)-2:]
}

// retryableCategory reports whether a reason's category means "try again later":
// 50 and 61 (server side), 70 (rate or concurrency limit), 99 (unknown).
func retryableCategory(r Reason) bool {
	switch r.Category() {
	case "50", "61", "70", "99":
		return true
	}
	return false
}

// allCategory reports whether there is at least one reason and every one has category cat.
func allCategory(reasons []Reason, cat string) bool {
	for _, r := range reasons {
		if r.Category() != cat {
			return false
		}
	}
	return len(reasons) > 0
}

// allRetryable reports whether there is at least one reason and every one is retryable.
func allRetryable(reasons []Reason) bool {
	for _, r := range reasons {
		if !retryableCategory(r) {
			return false
		}
	}
	return len(reasons) > 0
}

// Error is a failed Zuora call: the operation, the HTTP status (0 when no answer
// arrived), Zuora's reasons and request id, and the underlying transport or
// decoding failure. Retryable ones reach callers wrapped by retry.Transient.
type Error struct {
	Op        string // e.g. "query invoices page 3", "mark Invoice batch 2", "fetch token"
	Status    int
	Reasons   []Reason
	Message   string // a {"message": …} body, or the start of a body that is not JSON
	RequestID string
	Err       error
	Limit     *Limit // what a 429 said of the limit it hit
}

// Mentions reports whether Zuora's own answer (its reasons or message, not
// this client's context) names word, in any case: which field a 400 refused.
func (e *Error) Mentions(word string) bool {
	word = strings.ToLower(word)
	if strings.Contains(strings.ToLower(e.Message), word) {
		return true
	}
	for _, r := range e.Reasons {
		if strings.Contains(strings.ToLower(r.Message), word) {
			return true
		}
	}
	return false
}

// Limit is what Zuora's rate and concurrency headers said on a 429.
type Limit struct {
	RateLimit        string        // RateLimit-Limit, e.g. "5000, 2500;w=60, 5000;w=3600, 10000;w=86400"
	Reset            time.Duration // RateLimit-Reset; 0 when absent
	Concurrency      bool          // Concurrency-Limit-* headers: the concurrency cap, not the rate, was hit
	ConcurrencyLimit string        // Concurrency-Limit-Limit
}

// limitFrom reads a 429's rate and concurrency headers.
func limitFrom(h http.Header) *Limit {
	l := &Limit{RateLimit: h.Get("RateLimit-Limit"), ConcurrencyLimit: h.Get("Concurrency-Limit-Limit")}
	l.Reset, _ = retry.RateLimitReset(h.Get("RateLimit-Reset"))
	l.Concurrency = h.Get("Concurrency-Limit-Type") != "" || l.ConcurrencyLimit != ""
	return l
}

// RateLimitError is a rate limit that resets later than the retry budget
// allows waiting for: the run stops at once. Nothing was sent that a later run
// cannot send again.
type RateLimitError struct {
	Op      string
	Window  string        // which limit, e.g. "per-minute", "hourly", "daily"
	Limit   string        // the RateLimit-Limit header
	ResetIn time.Duration // from RateLimit-Reset or Retry-After
	ResetAt time.Time
	Budget  time.Duration // what was left of the retry budget
	Err     *Error
}

func (e *RateLimitError) Error() string {
	msg := fmt.Sprintf("zuora: %s: the tenant's %s API rate limit is used up", e.Op, e.Window)
	if e.Limit != "" {
		msg += " (RateLimit-Limit: " + e.Limit + ")"
	}
	return msg + fmt.Sprintf("; it resets in %s, at %s, longer than the %s left to retry; nothing was lost, run again after it resets",
		e.ResetIn.Round(time.Second), e.ResetAt.UTC().Format(time.RFC3339), e.Budget.Round(time.Second))
}

func (e *RateLimitError) Unwrap() error { return e.Err }

// rateLimitError names the limit a too-long wait belongs to: the shortest of
// RateLimit-Limit's windows (";w=seconds") that the wait fits in.
func rateLimitError(e *Error, wait, left time.Duration, now time.Time) *RateLimitError {
	re := &RateLimitError{Op: e.Op, ResetIn: wait, ResetAt: now.Add(wait), Budget: left, Err: e, Window: "request"}
	if e.Limit != nil {
		re.Limit = e.Limit.RateLimit
	}
	best := 0
	for _, part := range strings.Split(re.Limit, ",") {
		_, w, ok := strings.Cut(part, ";w=")
		secs, err := strconv.Atoi(strings.TrimSpace(w))
		if !ok || err != nil || time.Duration(secs)*time.Second < wait || (best != 0 && secs >= best) {
			continue
		}
		best = secs
	}
	switch best {
	case 0:
	case 60:
		re.Window = "per-minute"
	case 3600:
		re.Window = "hourly"
	case 86400:
		re.Window = "daily"
	default:
		re.Window = fmt.Sprintf("per-%ds", best)
	}
	return re
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("zuora: ")
	b.WriteString(e.Op)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	for i, r := range e.Reasons {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		if r.Code != "" {
			b.WriteString(r.Code)
			b.WriteString(" ")
		}
		b.WriteString(r.Message)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request id %s)", e.RequestID)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// CredentialsError is Zuora's token endpoint refusing the client id and
// secret (HTTP 401 or 403): a configuration error, never retried.
type CredentialsError struct{ Err *Error }

func (e *CredentialsError) Error() string {
	return "zuora refused the client credentials: " + e.Err.Error()
}

func (e *CredentialsError) Unwrap() error { return e.Err }

// TokenError is a token fetch that failed after the retry policy. Every
// caller that waited for the fetch gets it, and it is permanent, so that a
// Zuora outage ends the callers at once instead of each retrying the token.
type TokenError struct {
	Err      *Error
	Attempts int
}

func (e *TokenError) Error() string {
	return fmt.Sprintf("%v (after %d attempts)", e.Err, e.Attempts)
}

func (e *TokenError) Unwrap() error { return e.Err }

// errorBody is every shape of error body Zuora and OAuth send.
type errorBody struct {
	Reasons          []Reason        `json:"reasons"`
	RequestID        string          `json:"requestId"`
	Message          string          `json:"message"`
	OAuthError       json.RawMessage `json:"error"` // a string from OAuth, sometimes an object elsewhere
	ErrorDescription string          `json:"error_description"`
}

// snippet is the start of a body for an error message, on one line.
func snippet(b []byte) string {
	const max = 200
	s := strings.TrimSpace(string(b))
	if len(s) > max {
		s = s[:max] + "…"
	}
	return strings.Join(strings.Fields(s), " ")
}
