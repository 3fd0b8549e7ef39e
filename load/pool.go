package load

import (
	"context"
	"sync"
)

// pool posts documents with a fixed number of workers; wait returns once
// every document handed to it is settled.
type pool struct {
	jobs chan posting
	wg   sync.WaitGroup
}

// startPool starts n workers that each call post for one document at a time.
func startPool(n int, post func(posting)) *pool {
	p := &pool{jobs: make(chan posting)}
	for range n {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for d := range p.jobs {
				post(d)
			}
		}()
	}
	return p
}

// submit hands d to a worker; it returns false, d unposted, once ctx is done.
func (p *pool) submit(ctx context.Context, d posting) bool {
	select {
	case p.jobs <- d:
		return true
	case <-ctx.Done():
		return false
	}
}

// wait returns once every document submitted is settled; submit must not be called again.
func (p *pool) wait() {
	close(p.jobs)
	p.wg.Wait()
}
