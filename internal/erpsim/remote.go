package erpsim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// RemoteStats reads the Stats of a simulator served by another process (the
// `sim` command) with its bearer token, as a benchmark does between its steps.
func RemoteStats(ctx context.Context, baseURL, token string) (Stats, error) {
	var st Stats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(baseURL, "/")+AdminPrefix+"stats", nil)
	if err != nil {
		return st, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return st, fmt.Errorf("erp simulator stats: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return st, fmt.Errorf("erp simulator stats: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("erp simulator stats: HTTP %d", resp.StatusCode)
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("erp simulator stats: %w", err)
	}
	return st, nil
}
