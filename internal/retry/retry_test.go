package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

var fast = Policy{MaxAttempts: 5, Initial: time.Millisecond, Max: 2 * time.Millisecond, MaxElapsed: time.Second}

func TestDoRetriesTransientUntilSuccess(t *testing.T) {
	n, err := Do(context.Background(), fast, func(_ context.Context, attempt int) error {
		if attempt < 3 {
			return Transient(errors.New("503"))
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("Do = %d, %v; want 3 attempts and success", n, err)
	}
}

func TestDoStopsOnPermanentError(t *testing.T) {
	perm := errors.New("422 bad document")
	n, err := Do(context.Background(), fast, func(context.Context, int) error { return perm })
	if !errors.Is(err, perm) || n != 1 {
		t.Fatalf("Do = %d, %v; want 1 attempt and the permanent error", n, err)
	}
	if IsTransient(err) {
		t.Fatal("a permanent error came back transient")
	}
}

func TestDoGivesUpAfterMaxAttemptsAndStaysTransient(t *testing.T) {
	n, err := Do(context.Background(), fast, func(context.Context, int) error { return Transient(errors.New("500")) })
	if n != fast.MaxAttempts || !IsTransient(err) {
		t.Fatalf("Do = %d, %v; want %d attempts and a transient error", n, err, fast.MaxAttempts)
	}
}

func TestDoHonoursRetryAfter(t *testing.T) {
	start := time.Now()
	var waits []time.Duration
	p := fast
	p.Notify = func(_ error, d time.Duration) { waits = append(waits, d) }
	_, err := Do(context.Background(), p, func(_ context.Context, attempt int) error {
		if attempt == 1 {
			return TransientAfter(errors.New("429"), 50*time.Millisecond)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(waits) != 1 || waits[0] != 50*time.Millisecond {
		t.Fatalf("waits = %v; want one wait of 50ms from Retry-After", waits)
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Fatal("did not wait for Retry-After")
	}
}

func TestDoStopsWhenContextIsCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := Policy{MaxAttempts: 100, Initial: 20 * time.Millisecond, Max: 20 * time.Millisecond, MaxElapsed: time.Minute}
	n, err := Do(ctx, p, func(context.Context, int) error {
		cancel()
		return Transient(errors.New("503"))
	})
	if !errors.Is(err, context.Canceled) || n != 1 {
		t.Fatalf("Do = %d, %v; want 1 attempt and context.Canceled", n, err)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		h    string
		want time.Duration
		ok   bool
	}{
		{"7", 7 * time.Second, true},
		{"0", 0, true},
		{"Wed, 25 Nov 2026 12:00:30 GMT", 30 * time.Second, true},
		{"", 0, false},
		{"soon", 0, false},
	} {
		got, ok := RetryAfter(tc.h, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("RetryAfter(%q) = %v, %v; want %v, %v", tc.h, got, ok, tc.want, tc.ok)
		}
	}
}

func TestRetryableStatus(t *testing.T) {
	for code, want := range map[int]bool{200: false, 400: false, 401: false, 404: false, 408: true, 409: false, 422: false, 429: true, 500: true, 501: false, 502: true, 503: true, 504: true} {
		if got := RetryableStatus(code); got != want {
			t.Errorf("RetryableStatus(%d) = %v; want %v", code, got, want)
		}
	}
}
