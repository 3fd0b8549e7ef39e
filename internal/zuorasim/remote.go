package zuorasim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Remote reads the counters of a simulator served by another process (the
// `sim` command), as a benchmark does between its steps. It fetches one token
// on first use, so that its own requests do not blur the counts.
type Remote struct {
	base, clientID, clientSecret string
	http                         *http.Client
	token                        string
}

// NewRemote returns a Remote of the simulator at baseURL, which accepts the
// given OAuth client.
func NewRemote(baseURL, clientID, clientSecret string) *Remote {
	return &Remote{base: strings.TrimRight(baseURL, "/"), clientID: clientID, clientSecret: clientSecret,
		http: &http.Client{Timeout: 30 * time.Second}}
}

// Stats returns the simulator's counters (GET /_sim/stats).
func (r *Remote) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	if r.token == "" {
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {r.clientID}, "client_secret": {r.clientSecret}}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+"/oauth/token", strings.NewReader(form.Encode()))
		if err != nil {
			return st, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if err := r.do(req, &tok); err != nil {
			return st, fmt.Errorf("simulator token: %w", err)
		}
		r.token = tok.AccessToken
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+AdminPrefix+"stats", nil)
	if err != nil {
		return st, err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	if err := r.do(req, &st); err != nil {
		return st, fmt.Errorf("simulator stats: %w", err)
	}
	return st, nil
}

func (r *Remote) do(req *http.Request, v any) error {
	resp, err := r.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: HTTP %d", req.Method, req.URL.Path, resp.StatusCode)
	}
	return json.Unmarshal(body, v)
}
