package zuora

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"
)

const redacted = "[REDACTED]"

// secretSet is every secret the client knows (the client secret and each token
// it received), so they can be scrubbed from anything written out.
type secretSet struct {
	mu   sync.RWMutex
	vals []string
}

// add remembers s in its raw, JSON-escaped and form-encoded spellings.
func (s *secretSet) add(v string) {
	if v == "" {
		return
	}
	js, _ := json.Marshal(v)
	forms := []string{v, strings.Trim(string(js), `"`), url.QueryEscape(v)}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range forms {
		dup := false
		for _, have := range s.vals {
			dup = dup || have == f
		}
		if !dup {
			s.vals = append(s.vals, f)
		}
	}
}

// scrub replaces every known secret in text.
func (s *secretSet) scrub(text string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, v := range s.vals {
		text = strings.ReplaceAll(text, v, redacted)
	}
	return text
}

// exchangeLog is one line of Config.RequestLog.
type exchangeLog struct {
	Time          string  `json:"time"`
	Op            string  `json:"op"`
	Method        string  `json:"method"`
	URL           string  `json:"url"`
	Attempt       int     `json:"attempt"`
	Status        int     `json:"status"`
	DurationMS    float64 `json:"duration_ms"`
	RequestBytes  int     `json:"request_bytes"`
	ResponseBytes int     `json:"response_bytes"`
	RequestID     string  `json:"request_id,omitempty"`
	Error         string  `json:"error,omitempty"`
	RequestBody   string  `json:"request_body,omitempty"`
	ResponseBody  string  `json:"response_body,omitempty"`
}

// logExchange writes one line for an exchange to Config.RequestLog. The
// Authorization header is never logged; token bodies are redacted field by
// field, and every field and then the whole line are scrubbed of every known
// secret (before and after JSON escaping).
func (c *Client) logExchange(rq request, u string, attempt int, start time.Time, resp *response, failure error) {
	if c.cfg.RequestLog == nil {
		return
	}
	l := exchangeLog{
		Time:          start.UTC().Format(time.RFC3339Nano),
		Op:            rq.op,
		Method:        rq.method,
		URL:           u,
		Attempt:       attempt,
		Status:        resp.status,
		DurationMS:    float64(time.Since(start).Microseconds()) / 1000,
		RequestBytes:  len(rq.body),
		ResponseBytes: int(resp.received),
	}
	if resp.header != nil {
		l.RequestID = resp.requestID()
	}
	if failure != nil {
		l.Error = failure.Error()
	}
	if c.cfg.LogBodies {
		l.RequestBody, l.ResponseBody = string(rq.body), string(resp.body)
		if rq.token {
			l.RequestBody = redactForm(rq.body)
			l.ResponseBody = redactTokenAnswer(resp.body)
		}
	}
	for _, f := range []*string{&l.URL, &l.Error, &l.RequestBody, &l.ResponseBody} {
		*f = c.secrets.scrub(*f)
	}
	line, err := json.Marshal(l)
	if err != nil {
		c.log.Error("encode zuora request log line", "err", err)
		return
	}
	out := c.secrets.scrub(string(line)) + "\n"
	c.logMu.Lock()
	defer c.logMu.Unlock()
	if _, err := io.WriteString(c.cfg.RequestLog, out); err != nil {
		c.log.Error("write zuora request log", "err", err)
	}
}

// redactForm hides the client_secret of a token request body.
func redactForm(body []byte) string {
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return redacted
	}
	if v.Has("client_secret") {
		v.Set("client_secret", redacted)
	}
	return v.Encode()
}

// redactTokenAnswer hides the access_token of a token answer; a body that is not
// a JSON object is dropped entirely.
func redactTokenAnswer(body []byte) string {
	if len(body) == 0 {
		return ""
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return redacted
	}
	for _, k := range []string{"access_token", "refresh_token", "id_token"} {
		if _, ok := m[k]; ok {
			m[k] = json.RawMessage(`"` + redacted + `"`)
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		return redacted
	}
	return string(out)
}

// String keeps the client secret out of %v output.
func (cfg Config) String() string {
	return fmt.Sprintf("zuora.Config{BaseURL:%q ClientID:%q ClientSecret:%s RunID:%q MaxConcurrency:%d}",
		cfg.BaseURL, cfg.ClientID, redacted, cfg.RunID, cfg.MaxConcurrency)
}

// LogValue keeps the client secret out of slog output.
func (cfg Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("base_url", cfg.BaseURL),
		slog.String("client_id", cfg.ClientID),
		slog.String("run_id", cfg.RunID),
		slog.Int("max_concurrency", cfg.MaxConcurrency),
	)
}

// String keeps the secret and the cached token out of %v output.
func (c *Client) String() string { return "zuora.Client(" + c.base + ")" }
