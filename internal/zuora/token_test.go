package zuora

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/retry"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/testutil"
)

// TestConcurrentCallersShareOneFailedTokenFetch: with the token endpoint
// down, eight concurrent walks make one token fetch (retried within the
// policy, one warning per retry), and each fails with that one permanent
// error instead of retrying the token on its own.
func TestConcurrentCallersShareOneFailedTokenFetch(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) { t.Error("API called without a token") })
	f.tokenFault = func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, r, http.StatusServiceUnavailable, `{"message":"down for maintenance"}`, false)
	}
	f.tokenDelay = 20 // nanoseconds: callers overlap without slowing the test
	var logs testutil.SyncBuffer
	c, _ := newClient(t, f, func(cfg *Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	start := make(chan struct{})
	for range 8 {
		wg.Go(func() {
			<-start
			_, err := collect(c, context.Background(), Query{Object: "invoices"})
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		var ze *Error
		if !errors.As(err, &ze) || ze.Op != "fetch token" || ze.Status != http.StatusServiceUnavailable {
			t.Fatalf("err = %v; want the token fetch's *Error", err)
		}
		if retry.IsTransient(err) {
			t.Errorf("err = %v is transient: each caller would retry the token on its own", err)
		}
		var te *TokenError
		if !errors.As(err, &te) || te.Attempts != fastPolicy.MaxAttempts {
			t.Errorf("err = %v; want a *TokenError after %d attempts", err, fastPolicy.MaxAttempts)
		}
	}
	// Callers that arrive after the shared fetch failed start one fetch of their own at most.
	if n := len(f.tokenRequests()); n != fastPolicy.MaxAttempts {
		t.Errorf("%d token requests for 8 concurrent callers; want one fetch of %d attempts", n, fastPolicy.MaxAttempts)
	}
	if n := strings.Count(logs.String(), "will be retried"); n != fastPolicy.MaxAttempts-1 {
		t.Errorf("%d retry warnings; want %d, one per retry of the one fetch:\n%s", n, fastPolicy.MaxAttempts-1, logs.String())
	}
}

// TestRefusedCredentialsAreACredentialsError: a 401 or 403 from the token
// endpoint is a *CredentialsError, asked once and never retried.
func TestRefusedCredentialsAreACredentialsError(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request) { t.Error("API called without a token") })
		f.tokenFault = func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, r, status, `{"error":"invalid_client","error_description":"Invalid client credentials"}`, false)
		}
		c, _ := newClient(t, f, nil)
		_, err := collect(c, context.Background(), Query{Object: "invoices"})
		var ce *CredentialsError
		if !errors.As(err, &ce) || ce.Err.Status != status || retry.IsTransient(err) {
			t.Errorf("HTTP %d: err = %v; want a permanent *CredentialsError", status, err)
		}
		if n := len(f.tokenRequests()); n != 1 {
			t.Errorf("HTTP %d: %d token requests; want 1", status, n)
		}
	}
}
