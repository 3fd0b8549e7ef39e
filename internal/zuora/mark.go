package zuora

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/retry"
)

// MarkBatchSize is the most objects Zuora accepts in one write-back call.
const MarkBatchSize = 50

// MarkTransferred sets TransferredToAccounting=Yes on exactly the given ids, 50
// per call, and returns one MarkResult per id in input order. Objects that fail
// with a retryable code are sent again under the retry policy; others keep their
// failure. When a whole call still fails after the retries it returns the error
// and no results: earlier batches may already be marked, and marking again is
// harmless.
func (c *Client) MarkTransferred(ctx context.Context, objectType string, ids []string) ([]MarkResult, error) {
	ep, ok := markEndpoints[objectType]
	if !ok {
		return nil, &Error{Op: "mark", Err: fmt.Errorf("unknown object type %q", objectType)}
	}
	var unique []string
	seen := make(map[string]bool, len(ids))
	for i, id := range ids {
		if id == "" {
			return nil, &Error{Op: "mark " + objectType, Err: fmt.Errorf("id %d is empty", i)}
		}
		if !seen[id] {
			seen[id] = true
			unique = append(unique, id)
		}
	}
	byID := make(map[string]MarkResult, len(unique))
	for n := 0; n*MarkBatchSize < len(unique); n++ {
		batch := unique[n*MarkBatchSize : min((n+1)*MarkBatchSize, len(unique))]
		op := fmt.Sprintf("mark %s batch %d", objectType, n+1)
		if err := ctx.Err(); err != nil {
			return nil, &Error{Op: op, Err: err}
		}
		results, err := c.markBatch(ctx, op, ep, objectType, batch)
		if err != nil {
			return nil, err
		}
		if err := c.fallBack(ctx, op, objectType, results); err != nil {
			return nil, err
		}
		for _, r := range results {
			byID[r.ID] = r
		}
	}
	out := make([]MarkResult, len(ids))
	for i, id := range ids {
		out[i] = byID[id]
	}
	return out, nil
}

// markEndpoint is where and how one object type is marked.
type markEndpoint struct {
	method, path, rawQuery string
	body                   func(objectType string, ids []string) ([]byte, error)
	decode                 func(op string, resp *response) ([]outcome, error)
}

var markEndpoints = map[string]markEndpoint{
	Invoice:    actionUpdate,
	Payment:    actionUpdate,
	Refund:     actionUpdate,
	CreditMemo: memoBulk("/v1/credit-memos/bulk"),
	DebitMemo:  memoBulk("/v1/debit-memos/bulk"),
}

// outcome is Zuora's answer for one object of a write-back call.
type outcome struct {
	id        string // empty when Zuora did not say
	ok        bool
	code      string
	message   string
	retryable bool
}

// pendingObjectsError asks the retry loop for another call with the objects
// that failed with a retryable code.
type pendingObjectsError struct {
	op   string
	n    int
	code string
}

func (e *pendingObjectsError) Error() string {
	return fmt.Sprintf("zuora: %s: %d objects failed with a retryable code (%s)", e.op, e.n, e.code)
}

// markBatch marks at most 50 objects, retrying the whole call on transient
// failures and then only the objects that failed with a retryable code.
func (c *Client) markBatch(ctx context.Context, op string, ep markEndpoint, objectType string, batch []string) ([]MarkResult, error) {
	results := make([]MarkResult, len(batch))
	index := make(map[string]int, len(batch))
	for i, id := range batch {
		results[i] = MarkResult{ID: id}
		index[id] = i
	}
	pending := batch
	_, err := c.withRetry(ctx, func(ctx context.Context, attempt int) error {
		body, err := ep.body(objectType, pending)
		if err != nil {
			return &Error{Op: op, Err: err}
		}
		for _, id := range pending {
			results[index[id]].Attempts++
		}
		resp, err := c.call(ctx, request{op: op, method: ep.method, path: ep.path, rawQuery: ep.rawQuery,
			body: body, ctype: "application/json"}, attempt)
		if err != nil {
			return err
		}
		outcomes, err := ep.decode(op, resp)
		if err != nil {
			return err
		}
		ordered, err := matchOutcomes(pending, outcomes)
		if err != nil {
			return retry.Transient(&Error{Op: op, Status: resp.status, RequestID: resp.requestID(), Err: err})
		}
		var again []string
		for i, o := range ordered {
			r := &results[index[pending[i]]]
			r.OK, r.Code, r.Message = o.ok, o.code, o.message
			if !o.ok && o.retryable {
				again = append(again, pending[i])
			}
		}
		pending = again
		if len(pending) > 0 {
			return retry.Transient(&pendingObjectsError{op: op, n: len(pending), code: results[index[pending[0]]].Code})
		}
		return nil
	})
	var pe *pendingObjectsError
	if err != nil && !(errors.As(err, &pe) && ctx.Err() == nil) {
		return nil, err
	}
	return results, nil
}

// matchOutcomes puts Zuora's per-object answers in the order of sent: by id
// when every answer names one, else by position.
func matchOutcomes(sent []string, got []outcome) ([]outcome, error) {
	if len(got) != len(sent) {
		return nil, fmt.Errorf("%d results for %d objects", len(got), len(sent))
	}
	byID := make(map[string]outcome, len(got))
	for _, o := range got {
		if o.id == "" {
			return got, nil
		}
		byID[o.id] = o
	}
	out := make([]outcome, len(sent))
	for i, id := range sent {
		o, ok := byID[id]
		if !ok {
			return nil, fmt.Errorf("no result for id %s", id)
		}
		out[i] = o
	}
	return out, nil
}

// retryableActionCode lists the per-object Action codes that mean "try again":
// the record was locked or busy, or the tenant was rate-limited or timed out.
var retryableActionCode = map[string]bool{
	"LOCK_COMPETITION": true, "TEMPORARY_ERROR": true,
	"REQUEST_EXCEEDED_RATE": true, "SERVER_UNAVAILABLE": true, "TRANSACTION_TIMEOUT": true,
}

// actionUpdate is POST /v1/action/update for invoices, payments and refunds.
var actionUpdate = markEndpoint{
	method:   http.MethodPost,
	path:     "/v1/action/update",
	rawQuery: "rejectUnknownFields=true",
	body: func(objectType string, ids []string) ([]byte, error) {
		type object struct {
			ID                      string `json:"Id"`
			TransferredToAccounting string `json:"TransferredToAccounting"`
		}
		req := struct {
			Type    string   `json:"type"`
			Objects []object `json:"objects"`
		}{Type: objectType}
		for _, id := range ids {
			req.Objects = append(req.Objects, object{ID: id, TransferredToAccounting: "Yes"})
		}
		return json.Marshal(req)
	},
	decode: func(op string, resp *response) ([]outcome, error) {
		var results []struct {
			ID      string `json:"Id"`
			Success bool   `json:"Success"`
			Errors  []struct {
				Code    string `json:"Code"`
				Message string `json:"Message"`
			} `json:"Errors"`
		}
		if err := json.Unmarshal(resp.body, &results); err != nil {
			return nil, wholeCallError(op, resp, err)
		}
		out := make([]outcome, len(results))
		for i, r := range results {
			o := outcome{id: r.ID, ok: r.Success}
			if !r.Success {
				o.code, o.message = "UNKNOWN_ERROR", "failed without a reason"
				if len(r.Errors) > 0 {
					o.code = r.Errors[0].Code
					var msgs []string
					for _, e := range r.Errors {
						msgs = append(msgs, e.Message)
					}
					o.message = strings.Join(msgs, "; ")
				}
				o.retryable = retryableActionCode[o.code]
			}
			out[i] = o
		}
		return out, nil
	},
}

// memoBulk is PUT /v1/{credit,debit}-memos/bulk, where each memo succeeds or
// fails on its own.
func memoBulk(path string) markEndpoint {
	return markEndpoint{
		method: http.MethodPut,
		path:   path,
		body: func(_ string, ids []string) ([]byte, error) {
			type memo struct {
				ID                      string `json:"id"`
				TransferredToAccounting string `json:"transferredToAccounting"`
			}
			req := struct {
				Memos []memo `json:"memos"`
			}{}
			for _, id := range ids {
				req.Memos = append(req.Memos, memo{ID: id, TransferredToAccounting: "Yes"})
			}
			return json.Marshal(req)
		},
		decode: func(op string, resp *response) ([]outcome, error) {
			var r struct {
				Memos *[]struct {
					ID      string   `json:"id"`
					Success bool     `json:"success"`
					Reasons []Reason `json:"reasons"`
				} `json:"memos"`
				Reasons   []Reason `json:"reasons"`
				RequestID string   `json:"requestId"`
			}
			if err := json.Unmarshal(resp.body, &r); err != nil {
				return nil, wholeCallError(op, resp, err)
			}
			if r.Memos == nil || (len(*r.Memos) == 0 && len(r.Reasons) > 0) {
				return nil, wholeCallError(op, resp, errors.New("answer has no memos"))
			}
			out := make([]outcome, len(*r.Memos))
			for i, m := range *r.Memos {
				o := outcome{id: m.ID, ok: m.Success}
				if !m.Success {
					o.code, o.message = "UNKNOWN_ERROR", "failed without a reason"
					if len(m.Reasons) > 0 {
						o.code = m.Reasons[0].Code
						var msgs []string
						for _, rs := range m.Reasons {
							msgs = append(msgs, rs.Message)
						}
						o.message = strings.Join(msgs, "; ")
					}
					o.retryable = allRetryable(m.Reasons)
				}
				out[i] = o
			}
			return out, nil
		},
	}
}

// wholeCallError reads a 2xx answer that has no per-object results: a reasons
// or message body is Zuora refusing the call (transient only when every reason
// has a retryable category); anything else is a malformed answer, retried
// because marking again is harmless.
func wholeCallError(op string, resp *response, cause error) error {
	var b errorBody
	if json.Unmarshal(resp.body, &b) == nil && (len(b.Reasons) > 0 || b.Message != "") {
		e := &Error{Op: op, Status: resp.status, Reasons: b.Reasons, Message: b.Message, RequestID: b.RequestID}
		if e.RequestID == "" {
			e.RequestID = resp.requestID()
		}
		if allRetryable(b.Reasons) {
			return retry.Transient(e)
		}
		return e
	}
	return retry.Transient(&Error{Op: op, Status: resp.status, RequestID: resp.requestID(),
		Err: fmt.Errorf("malformed answer: %w", cause)})
}

// financePaths are the v1 PUTs that set financeInformation.transferredToAccounting
// on one payment or refund: the fallback when the update action refuses one.
var financePaths = map[string]string{Payment: "/v1/payments/", Refund: "/v1/refunds/"}

// fallBack marks again, one PUT each, the payments and refunds the update action
// refused for good: Zuora's Invoice Settlement guide says Actions do not support
// refunding credit memos, so such refunds can only be marked through the PUT.
// An id Zuora does not know (INVALID_ID) is left as refused.
func (c *Client) fallBack(ctx context.Context, op, objectType string, results []MarkResult) error {
	path, ok := financePaths[objectType]
	if !ok {
		return nil
	}
	for i := range results {
		r := &results[i]
		if r.OK || r.Code == "INVALID_ID" || retryableActionCode[r.Code] {
			continue
		}
		refused := r.Code + " " + r.Message
		c.log.InfoContext(ctx, "update action refused the object; marking it with PUT", "doc_id", r.ID, "object", objectType, "code", r.Code)
		putOp := fmt.Sprintf("%s: PUT %s%s", op, path, r.ID)
		n, err := c.withRetry(ctx, func(ctx context.Context, attempt int) error {
			resp, err := c.call(ctx, request{op: putOp, method: http.MethodPut, path: path + url.PathEscape(r.ID),
				body: []byte(`{"financeInformation":{"transferredToAccounting":"Yes"}}`), ctype: "application/json"}, attempt)
			if err != nil {
				return err
			}
			var out struct {
				Success *bool    `json:"success"`
				Reasons []Reason `json:"reasons"`
			}
			if err := json.Unmarshal(resp.body, &out); err != nil || out.Success == nil {
				return retry.Transient(&Error{Op: putOp, Status: resp.status, RequestID: resp.requestID(), Err: errors.New("malformed answer")})
			}
			if !*out.Success {
				e := &Error{Op: putOp, Status: resp.status, Reasons: out.Reasons, RequestID: resp.requestID()}
				if allRetryable(out.Reasons) {
					return retry.Transient(e)
				}
				return e
			}
			return nil
		})
		r.Attempts += n
		var e *Error
		switch {
		case err == nil:
			r.OK, r.Code, r.Message = true, "", ""
			c.stats.fallbacks.Add(1)
		case retry.IsTransient(err) || ctx.Err() != nil:
			return err
		case errors.As(err, &e):
			r.Message = refused + "; PUT " + path + r.ID + ": " + e.Error()
		default:
			return err
		}
	}
	return nil
}
