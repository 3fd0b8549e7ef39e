package zuora

import (
	"context"
	"sync"
	"time"
)

// gate bounds the requests a Client has in flight. Its width starts at the
// configured maximum, halves (at most once per 100ms, the answers of one burst count once) when Zuora answers that
// the tenant's concurrency limit was hit, and grows back by one per recovery
// period without another such answer: the limit is shared with every other
// integration of the tenant, so retrying at full width would only hit it again.
type gate struct {
	mu        sync.Mutex
	max       int
	width     int
	inflight  int
	changedAt time.Time // last narrowing or widening
	recovery  time.Duration
	wake      chan struct{} // closed and replaced when a slot frees
}

func newGate(max int, recovery time.Duration) *gate {
	return &gate{max: max, width: max, recovery: recovery, wake: make(chan struct{})}
}

// acquire waits for a slot within the current width, or for ctx to end.
func (g *gate) acquire(ctx context.Context) error {
	for {
		g.mu.Lock()
		g.widen(time.Now())
		if g.inflight < g.width {
			g.inflight++
			g.mu.Unlock()
			return nil
		}
		wake, narrowed := g.wake, g.width < g.max
		g.mu.Unlock()
		var tick <-chan time.Time
		var t *time.Timer
		if narrowed {
			t = time.NewTimer(g.recovery)
			tick = t.C
		}
		select {
		case <-wake:
		case <-tick:
		case <-ctx.Done():
		}
		if t != nil {
			t.Stop()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

func (g *gate) release() {
	g.mu.Lock()
	g.inflight--
	close(g.wake)
	g.wake = make(chan struct{})
	g.mu.Unlock()
}

// narrow halves the width after a concurrency 429; it reports whether it did.
func (g *gate) narrow(now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.width == 1 || (g.width < g.max && now.Sub(g.changedAt) < 100*time.Millisecond) {
		return false
	}
	g.width = max(1, g.width/2)
	g.changedAt = now
	return true
}

// widen adds one slot per recovery period since the last change; the caller holds mu.
func (g *gate) widen(now time.Time) {
	if g.width < g.max && now.Sub(g.changedAt) >= g.recovery {
		g.width++
		g.changedAt = now
	}
}

// widthNow returns the current width.
func (g *gate) widthNow() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.width
}
