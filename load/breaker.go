package load

import "sync"

// breaker is the load's circuit breaker: it trips once threshold documents
// in a row failed transiently after every retry, when the ERP looks down.
type breaker struct {
	threshold int

	mu          sync.Mutex
	consecutive int
	last        string // the last transient failure, for the run's error
}

// settled records a document the ERP answered for good, which resets the count.
func (b *breaker) settled() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.consecutive = 0
}

// failed records a document that failed transiently after every retry; it
// reports how many failed in a row and whether that trips the breaker.
func (b *breaker) failed(message string) (inARow int, tripped bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.consecutive++
	b.last = message
	return b.consecutive, b.consecutive >= b.threshold
}

// lastFailure is the message of the last transient failure, "" when none.
func (b *breaker) lastFailure() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}
