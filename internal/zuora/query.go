package zuora

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/fastjson"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/retry"
)

// Records walks an Object Query page by page, following nextPage until it is
// absent, and yields each record as raw JSON so callers decode numbers from
// their literal text. Only one page is held at a time. After an error it yields
// nothing more; stopping the loop early sends no further request.
func (c *Client) Records(ctx context.Context, q Query) iter.Seq2[json.RawMessage, error] {
	return func(yield func(json.RawMessage, error) bool) {
		params, err := encodeQuery(q)
		if err != nil {
			yield(nil, &Error{Op: "query " + q.Object, Err: err})
			return
		}
		cursor := ""
		for n := 1; ; n++ {
			next, more := c.yieldPage(ctx, q, params, cursor, n, yield)
			if !more {
				return
			}
			if next == cursor {
				yield(nil, &Error{Op: fmt.Sprintf("query %s page %d", q.Object, n),
					Message: "nextPage repeats the cursor just sent; stopping to avoid a loop"})
				return
			}
			cursor = next
		}
	}
}

// yieldPage fetches page n of q, the one after cursor, and yields its
// records; it returns the page's nextPage, with more false when the walk
// ends there (the last page, an error yielded, or the caller stopped).
func (c *Client) yieldPage(ctx context.Context, q Query, params, cursor string, n int, yield func(json.RawMessage, error) bool) (next string, more bool) {
	if err := ctx.Err(); err != nil {
		yield(nil, &Error{Op: fmt.Sprintf("query %s page %d", q.Object, n), Err: err})
		return "", false
	}
	p, err := c.page(ctx, q.Object, params, cursor, n)
	if err != nil {
		yield(nil, err)
		return "", false
	}
	if q.Paging != nil {
		q.Paging.Pages = n
		if p.NextPage != nil && *p.NextPage != "" && !keysetCursor(*p.NextPage) {
			q.Paging.NonKeyset = true
		}
	}
	for _, rec := range p.Data {
		if !yield(rec, nil) {
			return "", false
		}
	}
	if p.NextPage == nil || *p.NextPage == "" {
		return "", false
	}
	return *p.NextPage, true
}

// keysetCursor reports whether a nextPage is a keyset: base64 of a JSON array
// or object. Anything else (an offset, an opaque token) is treated as a
// position that shifts when rows leave the result. The cursor itself is never
// changed: it is sent back verbatim.
func keysetCursor(s string) bool {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if raw, err := enc.DecodeString(s); err == nil {
			raw = bytes.TrimSpace(raw)
			return len(raw) > 0 && (raw[0] == '[' || raw[0] == '{') && json.Valid(raw)
		}
	}
	return false
}

// page is one Object Query answer.
type page struct {
	NextPage  *string            `json:"nextPage"`
	Data      *[]json.RawMessage `json:"data"`
	Reasons   []Reason           `json:"reasons"`
	RequestID string             `json:"requestId"`
}

type pageData struct {
	NextPage *string
	Data     []json.RawMessage
}

// page fetches page n: the fixed parameters plus the previous nextPage, verbatim.
func (c *Client) page(ctx context.Context, object, params, cursor string, n int) (pageData, error) {
	rq := request{
		op:       fmt.Sprintf("query %s page %d", object, n),
		method:   http.MethodGet,
		path:     "/object-query/" + object,
		rawQuery: params,
	}
	if cursor != "" {
		rq.rawQuery += "&cursor=" + escapeValue(cursor)
	}
	var out pageData
	rq.decode = func(status int, h http.Header, body io.Reader) error {
		var err error
		out, err = c.decodePageStream(rq.op, &response{status: status, header: h}, body)
		return err
	}
	_, err := c.withRetry(ctx, func(ctx context.Context, attempt int) error {
		resp, err := c.call(ctx, rq, attempt)
		if err != nil || resp.decoded {
			return err
		}
		out, err = decodePage(rq.op, resp) // read whole: the request log keeps bodies
		return err
	})
	return out, err
}

// decodePage reads a 200 answer held whole.
func decodePage(op string, resp *response) (pageData, error) {
	return decodePageBytes(op, resp, resp.body)
}

// decodePageStream reads a 200 answer as it arrives, then decodes it whole:
// the page's records are copied out of the body (fastjson never aliases its
// input), whose buffer serves the next page, so no body is held beside them.
func (c *Client) decodePageStream(op string, resp *response, body io.Reader) (pageData, error) {
	var buf *bytes.Buffer
	select {
	case buf = <-c.bodies:
		buf.Reset()
	default:
		buf = new(bytes.Buffer)
	}
	defer func() {
		if buf.Cap() > maxKeptBody {
			return
		}
		select {
		case c.bodies <- buf:
		default:
		}
	}()
	if _, err := buf.ReadFrom(body); err != nil {
		return malformedPage(op, resp, err)
	}
	return decodePageBytes(op, resp, buf.Bytes())
}

// keptBodies buffers of at most maxKeptBody are kept for the next pages,
// whatever the requests in flight: a page arrives faster than it is decoded,
// so about one buffer per CPU is in use, and what a client keeps stays
// allocated for as long as it lives.
const (
	keptBodies  = 2
	maxKeptBody = 8 << 20
)

func malformedPage(op string, resp *response, err error) (pageData, error) {
	return pageData{}, retry.Transient(&Error{Op: op, Status: resp.status, RequestID: resp.requestID(),
		Err: fmt.Errorf("malformed page: %w", err)})
}

// decodePageBytes decodes one answer, each record copied out of raw as the
// JSON it was sent as. A body that is not a whole page is transient (a GET
// can be repeated); a reasons body is Zuora saying no, never an empty page.
// Like json.Unmarshal into page, it matches the names in any case and keeps
// the last of a repeated one.
func decodePageBytes(op string, resp *response, raw []byte) (pageData, error) {
	var p page
	if fastjson.Unmarshal(raw, &p) != nil {
		var err error
		if p, err = decodePageTokens(raw); err != nil {
			return malformedPage(op, resp, err)
		}
	}
	if len(p.Reasons) > 0 {
		e := &Error{Op: op, Status: resp.status, Reasons: p.Reasons, RequestID: p.RequestID}
		if e.RequestID == "" {
			e.RequestID = resp.requestID()
		}
		if allRetryable(p.Reasons) {
			return pageData{}, retry.Transient(e)
		}
		return pageData{}, e
	}
	if p.Data == nil {
		return pageData{}, retry.Transient(&Error{Op: op, Status: resp.status, RequestID: resp.requestID(),
			Err: errors.New("malformed page: no data array")})
	}
	return pageData{NextPage: p.NextPage, Data: *p.Data}, nil
}

// decodePageTokens reads a page token by token with encoding/json: it
// decides a body fastjson refused, and its error says what is wrong.
func decodePageTokens(raw []byte) (page, error) {
	var p page
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil {
		return page{}, err
	} else if tok != json.Delim('{') {
		return page{}, errors.New("the answer is not a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return page{}, err
		}
		key, _ := tok.(string)
		switch {
		case strings.EqualFold(key, "data"):
			p.Data, err = decodeRecords(dec)
		case strings.EqualFold(key, "nextPage"):
			p.NextPage = nil
			err = dec.Decode(&p.NextPage)
		case strings.EqualFold(key, "reasons"):
			err = dec.Decode(&p.Reasons)
		case strings.EqualFold(key, "requestId"):
			err = dec.Decode(&p.RequestID)
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if err != nil {
			return page{}, err
		}
	}
	if _, err := dec.Token(); err != nil {
		return page{}, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return page{}, errors.New("more after the page's object")
	}
	return p, nil
}

// decodeRecords reads the data array (or its null) from dec, each record
// copied as the raw JSON it was sent as.
func decodeRecords(dec *json.Decoder) (*[]json.RawMessage, error) {
	tok, err := dec.Token()
	switch {
	case err != nil:
		return nil, err
	case tok == nil:
		return nil, nil // "data": null is no data array
	case tok != json.Delim('['):
		return nil, fmt.Errorf("data is not an array")
	}
	data := make([]json.RawMessage, 0, 99)
	for dec.More() {
		var rec json.RawMessage
		if err := dec.Decode(&rec); err != nil {
			return nil, err
		}
		data = append(data, rec)
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	return &data, nil
}

// encodeQuery builds the fixed part of the query string per the Object Query
// contract: filter[] repeated, sort[], fields[] as a comma list,
// <child>.fields[], expand[] repeated, pageSize.
func encodeQuery(q Query) (string, error) {
	if q.Object == "" {
		return "", errors.New("no object")
	}
	if strings.ContainsAny(q.Object, "/?#%") || q.Object != strings.TrimSpace(q.Object) {
		return "", fmt.Errorf("object %q is not a path segment", q.Object)
	}
	size := q.PageSize
	if size == 0 {
		size = 99
	}
	if size < 1 || size > 99 {
		return "", fmt.Errorf("page size %d is outside 1..99", q.PageSize)
	}
	var parts []string
	add := func(key, value string) { parts = append(parts, key+"="+escapeValue(value)) }
	for _, f := range q.Filters {
		add("filter[]", f)
	}
	if q.Sort != "" {
		add("sort[]", q.Sort)
	}
	if len(q.Fields) > 0 {
		add("fields[]", strings.Join(q.Fields, ","))
	}
	children := make([]string, 0, len(q.ChildFields))
	for child, fields := range q.ChildFields {
		if len(fields) > 0 {
			children = append(children, child)
		}
	}
	slices.Sort(children)
	for _, child := range children {
		if child == "" || strings.ContainsAny(child, "=&[] ") {
			return "", fmt.Errorf("child %q is not an expand name", child)
		}
		add(child+".fields[]", strings.Join(q.ChildFields[child], ","))
	}
	for _, e := range q.Expand {
		add("expand[]", e)
	}
	if q.IncludeNullFields {
		add("includeNullFields", "true")
	}
	add("pageSize", strconv.Itoa(size))
	return strings.Join(parts, "&"), nil
}

// escapeValue percent-encodes a query value, leaving unreserved characters and
// the ',' and ':' of Zuora's grammar readable; '+' becomes %2B and ' ' %20.
func escapeValue(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9',
			ch == '-', ch == '.', ch == '_', ch == '~', ch == ',', ch == ':':
			b.WriteByte(ch)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[ch>>4])
			b.WriteByte(hex[ch&15])
		}
	}
	return b.String()
}
