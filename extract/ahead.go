package extract

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuora"
)

// The bounds of a pass's ordered window besides its item walks: the records
// admitted and not yet staged, and their raw JSON. A document waiting for its
// item walk holds back the records behind it, so the window reaches a few
// pages past it (one in 40 invoices has more than 99 items at month end).
const (
	aheadRecords = 4 * pageSize
	aheadBytes   = 4 << 20
)

// pending is one record of a pass between its admission and its staging. It
// waits as its rows, built when it is admitted or once its items are paged,
// not as its decoded fields, which take ten times its JSON.
type pending struct {
	raw  json.RawMessage // kept only to quarantine it: nil once its rows are built
	size int             // len of its raw JSON, what it counts against aheadBytes
	keep func() error    // stages its rows; nil when err is set
	err  error           // why it cannot be staged: it goes to the quarantine, or fails the walk
	// walk pages its items from the item endpoint and builds its rows; nil
	// when the record has none to page. done is closed once walk has set keep
	// and err.
	walk func(ctx context.Context) (func() error, error)
	done chan struct{}
}

// ready reports whether p can be staged now.
func (p *pending) ready() bool {
	if p.done == nil {
		return true
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ahead is a pass's ordered window: records wait in it in the order they came
// until they are staged, in that order, while the item walks of the documents
// among them run, at most limit at once. The first error in record order ends
// the pass, as when the documents are walked one at a time.
type ahead struct {
	ctx    context.Context // cancelled by stop: the walks in flight end
	cancel context.CancelFunc
	limit  int
	wg     sync.WaitGroup
	stage  func(*pending) error

	queue []*pending
	walks int // queued records with an item walk, each in flight or done
	bytes int // raw JSON queued
}

// newAhead opens the window of a pass; stage stages one record; stop must follow.
func newAhead(ctx context.Context, limit int, stage func(*pending) error) *ahead {
	ctx, cancel := context.WithCancel(ctx)
	return &ahead{ctx: ctx, cancel: cancel, limit: limit, stage: stage}
}

// push queues p, starting its item walk if it has one, then stages every
// record at the head that is ready; while the window is full it first waits
// for the head and stages it.
func (a *ahead) push(p *pending) error {
	for len(a.queue) > 0 && a.full(p) {
		if err := a.next(); err != nil {
			return err
		}
	}
	if p.walk != nil {
		a.start(p)
	}
	a.queue = append(a.queue, p)
	a.bytes += p.size
	for len(a.queue) > 0 && a.queue[0].ready() {
		if err := a.next(); err != nil {
			return err
		}
	}
	return nil
}

// full reports whether p must wait for the head to be staged.
func (a *ahead) full(p *pending) bool {
	return len(a.queue) >= aheadRecords || a.bytes+p.size > aheadBytes || (p.walk != nil && a.walks >= a.limit)
}

// start runs p's item walk.
func (a *ahead) start(p *pending) {
	p.done = make(chan struct{})
	a.walks++
	a.wg.Go(func() {
		defer close(p.done)
		p.keep, p.err = p.walk(a.ctx)
	})
}

// next waits for the head of the window and stages it.
func (a *ahead) next() error {
	p := a.queue[0]
	if p.done != nil {
		<-p.done
		a.walks--
	}
	a.queue[0] = nil
	a.queue = a.queue[1:]
	a.bytes -= p.size
	return a.stage(p)
}

// drain stages every record left in the window, in order.
func (a *ahead) drain() error {
	for len(a.queue) > 0 {
		if err := a.next(); err != nil {
			return err
		}
	}
	return nil
}

// stop ends the item walks still in flight and waits for them.
func (a *ahead) stop() {
	a.cancel()
	a.wg.Wait()
}

// fetched is one record of a walk with the number of pages fetched so far.
type fetched struct {
	raw   json.RawMessage
	err   error
	pages int
}

// prefetch walks q in a goroutine, up to one page ahead of the caller, so
// that the next page is requested while this one is staged. q.Paging is the
// goroutine's until the channel is closed or stop returns; stop ends the walk
// and waits for it.
func prefetch(ctx context.Context, src Source, q zuora.Query) (records <-chan fetched, stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan fetched, pageSize)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(ch)
		for raw, err := range src.Records(ctx, q) {
			select {
			case ch <- fetched{raw, err, q.Paging.Pages}:
			case <-ctx.Done():
				return
			}
		}
	})
	return ch, func() {
		cancel()
		wg.Wait()
	}
}

// inOrder runs fetch for jobs 0 to n-1, up to limit at once, and hands each
// result to use in job order. The first error in job order is returned; the
// fetches still in flight are then cancelled and waited for.
func inOrder[T any](ctx context.Context, n, limit int, fetch func(ctx context.Context, i int) (T, error), use func(i int, v T) error) error {
	type result struct {
		v   T
		err error
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // before the wait
	results := make([]chan result, n)
	start := func(i int) {
		ch := make(chan result, 1)
		results[i] = ch
		wg.Go(func() {
			v, err := fetch(ctx, i)
			ch <- result{v, err}
		})
	}
	limit = max(limit, 1)
	for i := range min(limit, n) {
		start(i)
	}
	for i := range n {
		r := <-results[i]
		results[i] = nil
		if i+limit < n {
			start(i + limit)
		}
		if r.err != nil {
			return r.err
		}
		if err := use(i, r.v); err != nil {
			return err
		}
	}
	return nil
}
