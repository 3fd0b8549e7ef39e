package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/retry"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// postResult is how the ERP settled one document.
type postResult struct {
	outcome   string // created, duplicate, rejected or transient
	status    int    // the last HTTP status, 0 when none arrived
	erpID     string
	message   string
	attempts  int
	ambiguous bool  // a request may have reached the ERP without an answer
	err       error // why a transient post gave up
	started   time.Time
	finished  time.Time
}

// fatalError means no document can be posted (bad token, wrong URL): the run stops.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

// RefusedError is the ERP refusing the integration itself rather than a
// document: 401 or 403 (the token) or 404 or 405 (the base URL). No document
// can be posted until the setting is fixed.
type RefusedError struct {
	Status   int
	Endpoint string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("the ERP answered %d to %s", e.Status, e.Endpoint)
}

// rejectedError is the ERP's permanent refusal of one document.
type rejectedError struct {
	status  int
	message string
}

func (e *rejectedError) Error() string {
	return fmt.Sprintf("erp refused the document (%d): %s", e.status, e.message)
}

// erpClient posts documents to the ERP; it is the project's only ERP HTTP client.
type erpClient struct {
	base    string
	token   string
	http    *http.Client
	timeout time.Duration
	policy  retry.Policy
}

// post sends one document until the ERP settles it or the retry policy runs out.
// The same Idempotency-Key goes with every attempt, so a retry after a lost
// answer can only ever find the document the first attempt created.
func (c *erpClient) post(ctx context.Context, d posting) postResult {
	res := postResult{started: time.Now().UTC()}
	attempts, err := retry.Do(ctx, c.policy, func(ctx context.Context, _ int) error {
		return c.attempt(ctx, d, &res)
	})
	res.attempts, res.finished = attempts, time.Now().UTC()
	var rej *rejectedError
	switch {
	case err == nil:
	case errors.As(err, &rej):
		res.outcome, res.message = stage.OutcomeRejected, rej.message
	default:
		res.outcome, res.message, res.err = stage.OutcomeTransient, err.Error(), err
	}
	return res
}

// attempt is one HTTP exchange; it fills res and returns nil, a transient
// error, a *rejectedError or a *fatalError.
func (c *erpClient) attempt(ctx context.Context, d posting, res *postResult) error {
	endpoint := d.DocType.Endpoint()
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var sent atomic.Bool // written from the transport's goroutine
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) { sent.Store(info.Err == nil) },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+endpoint, bytes.NewReader(d.payload))
	if err != nil {
		return &fatalError{fmt.Errorf("build request for %s %s: %w", d.DocType, d.ZuoraID, err)}
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", d.IdempotencyKey)
	resp, err := c.http.Do(req)
	if err != nil {
		if sent.Load() {
			res.ambiguous = true
		}
		res.status = 0
		if parent.Err() != nil { // cancelled: not worth another attempt
			return fmt.Errorf("post %s %s: %w", d.DocType, d.ZuoraID, context.Cause(parent))
		}
		return retry.Transient(fmt.Errorf("post %s %s: %w", d.DocType, d.ZuoraID, err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	res.status = resp.StatusCode
	if err != nil {
		res.ambiguous = true
		return retry.Transient(fmt.Errorf("post %s %s: read answer %d: %w", d.DocType, d.ZuoraID, resp.StatusCode, err))
	}
	var answer struct {
		ID    string `json:"id"`
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &answer) // an unparseable body leaves both empty
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		if answer.ID == "" {
			return retry.Transient(fmt.Errorf("post %s %s: erp answered %d without an id", d.DocType, d.ZuoraID, code))
		}
		res.erpID = answer.ID
		res.outcome = stage.OutcomeCreated
		if code == http.StatusOK || resp.Header.Get("Idempotent-Replayed") == "true" {
			res.outcome = stage.OutcomeDuplicate
		}
		res.message = ""
		return nil
	case code == http.StatusUnauthorized, code == http.StatusForbidden, code == http.StatusNotFound, code == http.StatusMethodNotAllowed:
		return &fatalError{&RefusedError{Status: code, Endpoint: endpoint}}
	case retry.RetryableStatus(code):
		err := fmt.Errorf("post %s %s: erp answered %d: %s", d.DocType, d.ZuoraID, code, message(answer.Error, body))
		if after, ok := retry.RetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return retry.TransientAfter(err, after)
		}
		return retry.Transient(err)
	case code >= 400 && code < 500:
		return &rejectedError{status: code, message: message(answer.Error, body)}
	default:
		return &fatalError{fmt.Errorf("erp answered %d to %s", code, endpoint)}
	}
}

// message is the ERP's error text, or the start of the body when it sent no JSON.
func message(msg string, body []byte) string {
	if msg != "" {
		return msg
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
