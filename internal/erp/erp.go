// Package erp is the project's only ERP HTTP client: it posts one document to
// the ERP API of docs/design.md with its Idempotency-Key, under the retry
// policy, and says how the ERP settled it.
package erp

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/retry"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// Config configures a Client. Zero values take the defaults noted.
type Config struct {
	BaseURL, Token string
	HTTPClient     *http.Client  // nil → a plain client; each request is bounded by Timeout
	Conns          int           // posts in flight at once, each kept a connection between posts; 0 → 4 (with HTTPClient nil)
	Timeout        time.Duration // one HTTP attempt; 0 → 30s
	Retry          retry.Policy  // retries of one post
}

// Client posts documents to the ERP.
type Client struct {
	base    string
	token   string
	http    *http.Client
	timeout time.Duration
	policy  retry.Policy
	stats   counters
}

// New returns a client for the ERP at cfg.BaseURL.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" {
		return nil, errors.New("erp: the base URL is not set")
	}
	if cfg.Token == "" {
		return nil, errors.New("erp: the token is not set")
	}
	c := &Client{base: strings.TrimRight(cfg.BaseURL, "/"), token: cfg.Token, http: cfg.HTTPClient, timeout: cfg.Timeout, policy: cfg.Retry}
	if c.http == nil {
		c.http = &http.Client{Transport: keepAlive(cmp.Or(cfg.Conns, 4))}
	}
	if c.timeout <= 0 {
		c.timeout = 30 * time.Second
	}
	return c, nil
}

// keepAlive is the default transport, keeping conns idle connections to
// the ERP between posts: the default keeps two, so every post beyond two in
// flight opened a connection of its own and closed it after.
func keepAlive(conns int) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = conns
	t.MaxIdleConns = max(t.MaxIdleConns, conns)
	return t
}

// Document is one document to post: to its type's endpoint, with its payload
// exactly as the transform wrote it.
type Document struct {
	DocType        stage.DocType
	ZuoraID        string
	IdempotencyKey string
	Payload        json.RawMessage
}

// Result is how the ERP settled one document.
type Result struct {
	Outcome   string // stage.OutcomeCreated, OutcomeDuplicate, OutcomeRejected or OutcomeTransient
	Status    int    // the last HTTP status, 0 when none arrived
	ERPID     string
	Message   string
	Attempts  int
	Ambiguous bool  // a request may have reached the ERP without an answer
	Err       error // why a transient post gave up; a *FatalError when no document can be posted
	Started   time.Time
	Finished  time.Time
}

// FatalError means no document can be posted (bad token, wrong URL): the run stops.
type FatalError struct{ Err error }

func (e *FatalError) Error() string { return e.Err.Error() }
func (e *FatalError) Unwrap() error { return e.Err }

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

// Post sends one document until the ERP settles it or the retry policy runs out.
// The same Idempotency-Key goes with every attempt, so a retry after a lost
// answer can only ever find the document the first attempt created.
func (c *Client) Post(ctx context.Context, d Document) Result {
	res := Result{Started: time.Now().UTC()}
	attempts, err := retry.Do(ctx, c.policy, func(ctx context.Context, _ int) error {
		return c.attempt(ctx, d, &res)
	})
	res.Attempts, res.Finished = attempts, time.Now().UTC()
	if attempts > 1 {
		c.stats.retries.Add(int64(attempts - 1))
	}
	var rej *rejectedError
	switch {
	case err == nil:
	case errors.As(err, &rej):
		res.Outcome, res.Message = stage.OutcomeRejected, rej.message
	default:
		res.Outcome, res.Message, res.Err = stage.OutcomeTransient, err.Error(), err
	}
	return res
}

// attempt is one HTTP exchange; it fills res and returns nil, a transient
// error, a *rejectedError or a *FatalError.
func (c *Client) attempt(ctx context.Context, d Document, res *Result) error {
	endpoint := d.DocType.Endpoint()
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var sent atomic.Bool // written from the transport's goroutine
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) { sent.Store(info.Err == nil) },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+endpoint, bytes.NewReader(d.Payload))
	if err != nil {
		return &FatalError{fmt.Errorf("build request for %s %s: %w", d.DocType, d.ZuoraID, err)}
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", d.IdempotencyKey)
	resp, err := c.http.Do(req)
	if err != nil {
		c.count(0)
		if sent.Load() {
			res.Ambiguous = true
		}
		res.Status = 0
		if parent.Err() != nil { // cancelled: not worth another attempt
			return fmt.Errorf("post %s %s: %w", d.DocType, d.ZuoraID, context.Cause(parent))
		}
		return retry.Transient(fmt.Errorf("post %s %s: %w", d.DocType, d.ZuoraID, err))
	}
	defer resp.Body.Close()
	c.count(resp.StatusCode)
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	res.Status = resp.StatusCode
	if err != nil {
		res.Ambiguous = true
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
		res.ERPID = answer.ID
		res.Outcome = stage.OutcomeCreated
		if code == http.StatusOK || resp.Header.Get("Idempotent-Replayed") == "true" {
			res.Outcome = stage.OutcomeDuplicate
		}
		res.Message = ""
		return nil
	case code == http.StatusUnauthorized, code == http.StatusForbidden, code == http.StatusNotFound, code == http.StatusMethodNotAllowed:
		return &FatalError{&RefusedError{Status: code, Endpoint: endpoint}}
	case retry.RetryableStatus(code):
		err := fmt.Errorf("post %s %s: erp answered %d: %s", d.DocType, d.ZuoraID, code, message(answer.Error, body))
		if after, ok := retry.RetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return retry.TransientAfter(err, after)
		}
		return retry.Transient(err)
	case code >= 400 && code < 500:
		return &rejectedError{status: code, message: message(answer.Error, body)}
	default:
		return &FatalError{fmt.Errorf("erp answered %d to %s", code, endpoint)}
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

// Held is one document as the ERP holds it (GET /api/documents/{zuora_id}):
// its live copy, else its latest, with the open balance the ERP computes.
type Held struct {
	ZuoraID     string          `json:"zuora_id"`
	DocType     string          `json:"doc_type"`
	ERPID       string          `json:"erp_id"`
	Number      string          `json:"number"`
	Customer    string          `json:"customer"`
	Currency    string          `json:"currency"`
	Amount      decimal.Decimal `json:"amount"`
	Live        bool            `json:"live"`
	OpenBalance decimal.Decimal `json:"open_balance"`
	Copies      int             `json:"copies"`
}

// Document reads what the ERP holds of one Zuora document, under the retry
// policy; found is false when the ERP never held it (404). Amounts are read
// exactly from the answer's JSON numbers.
func (c *Client) Document(ctx context.Context, zuoraID string) (held Held, found bool, err error) {
	path := "/api/documents/" + url.PathEscape(zuoraID)
	_, err = retry.Do(ctx, c.policy, func(ctx context.Context, _ int) error {
		actx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(actx, http.MethodGet, c.base+path, nil)
		if err != nil {
			return &FatalError{fmt.Errorf("build request for document %s: %w", zuoraID, err)}
		}
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := c.http.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("read document %s: %w", zuoraID, context.Cause(ctx))
			}
			return retry.Transient(fmt.Errorf("read document %s: %w", zuoraID, err))
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return retry.Transient(fmt.Errorf("read document %s: read answer %d: %w", zuoraID, resp.StatusCode, err))
		}
		switch code := resp.StatusCode; {
		case code == http.StatusOK:
			held, found = Held{}, true
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.UseNumber()
			if err := dec.Decode(&held); err != nil || held.ZuoraID != zuoraID {
				return fmt.Errorf("read document %s: the ERP answered 200 with a body that is not the document (%s)", zuoraID, message("", body))
			}
			return nil
		case code == http.StatusNotFound:
			found = false
			return nil
		case code == http.StatusUnauthorized, code == http.StatusForbidden, code == http.StatusMethodNotAllowed:
			return &FatalError{&RefusedError{Status: code, Endpoint: "/api/documents"}}
		case retry.RetryableStatus(code):
			err := fmt.Errorf("read document %s: erp answered %d", zuoraID, code)
			if after, ok := retry.RetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
				return retry.TransientAfter(err, after)
			}
			return retry.Transient(err)
		default:
			var answer struct {
				Error string `json:"error"`
			}
			_ = json.Unmarshal(body, &answer)
			return fmt.Errorf("read document %s: erp answered %d: %s", zuoraID, code, message(answer.Error, body))
		}
	})
	return held, found, err
}
