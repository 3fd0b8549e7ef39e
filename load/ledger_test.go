package load

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// slowParts is a ledger part writer whose writes wait until released.
type slowParts struct {
	started chan string // a key each time a write starts
	release chan error  // what each write returns
	mu      sync.Mutex
	parts   [][]stage.LedgerRow
}

func newSlowParts() *slowParts {
	return &slowParts{started: make(chan string, 16), release: make(chan error)}
}

func (s *slowParts) write(_ context.Context, key string, rows []stage.LedgerRow) error {
	s.started <- key
	if err := <-s.release; err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.parts = append(s.parts, append([]stage.LedgerRow(nil), rows...))
	return nil
}

func ledgerRows(n int) []stage.LedgerRow {
	rows := make([]stage.LedgerRow, n)
	for i := range rows {
		rows[i] = stage.LedgerRow{ZuoraID: fmt.Sprintf("doc-%02d", i), Action: stage.ActionPost, Outcome: stage.OutcomeCreated}
	}
	return rows
}

// addAll adds rows in order from another goroutine, as a worker does.
func addAll(ctx context.Context, l *ledger, rows []stage.LedgerRow) <-chan error {
	done := make(chan error, 1)
	go func() {
		for _, r := range rows {
			if err := l.add(ctx, r); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	return done
}

func returns(t *testing.T, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s waits for the upload of another worker's part", what)
	}
}

func waits(t *testing.T, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("%s returned (%v) while a whole part waited for the upload before it", what, err)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestWorkersDoNotWaitBehindALedgerUpload: while one worker writes a part to
// the stage, the others go on adding their answers; only a second full part
// waits for the first, so parts are written one at a time, in order, and
// memory holds at most two.
func TestWorkersDoNotWaitBehindALedgerUpload(t *testing.T) {
	ctx := context.Background()
	slow := newSlowParts()
	l := &ledger{w: testWindow, runID: "r", every: 3, now: time.Now, write: slow.write}
	rows := ledgerRows(7)
	first := addAll(ctx, l, rows[:3]) // its third add writes the first part
	<-slow.started                    // and that upload stays in progress
	returns(t, addAll(ctx, l, rows[3:6]), "adding the next part's rows")
	late := addAll(ctx, l, rows[6:])
	waits(t, late, "adding a row after a whole part")
	slow.release <- nil
	returns(t, first, "the worker that wrote the first part")
	<-slow.started // the second part, written by the worker that waited
	slow.release <- nil
	returns(t, late, "the worker that waited")
	done := make(chan error, 1)
	go func() { done <- l.flush(ctx) }()
	<-slow.started // the rest, written by the flush
	slow.release <- nil
	returns(t, done, "flush")
	var order []string
	for _, p := range slow.parts {
		if len(p) > 3 {
			t.Errorf("a part of %d rows; want at most 3", len(p))
		}
		for _, r := range p {
			order = append(order, r.ZuoraID)
		}
	}
	if fmt.Sprint(order) != "[doc-00 doc-01 doc-02 doc-03 doc-04 doc-05 doc-06]" || len(slow.parts) != 3 {
		t.Errorf("rows written in %d parts in the order %v; want 3 parts in the order they were added", len(slow.parts), order)
	}
	if len(l.unwritten()) != 0 || len(l.written) != 3 {
		t.Errorf("after the flush: %d rows unwritten, %d parts; want 0 and 3", len(l.unwritten()), len(l.written))
	}
}

// TestAFailedLedgerPartKeepsItsRows: the rows of a part the stage refused
// stay unwritten, every add says so, and the flush writes them first.
func TestAFailedLedgerPartKeepsItsRows(t *testing.T) {
	ctx := context.Background()
	slow := newSlowParts()
	l := &ledger{w: testWindow, runID: "r", every: 2, now: time.Now, write: slow.write}
	rows := ledgerRows(3)
	added := addAll(ctx, l, rows[:2])
	<-slow.started
	full := errors.New("disk full")
	slow.release <- full
	if err := <-added; !errors.Is(err, full) {
		t.Fatalf("the add that wrote the part: %v; want the stage's error", err)
	}
	if err := l.add(ctx, rows[2]); !errors.Is(err, full) {
		t.Fatalf("add after the failed part: %v; want the stage's error", err)
	}
	if n := len(l.unwritten()); n != 3 {
		t.Fatalf("%d rows unwritten; want the failed part's 2 and the new one", n)
	}
	done := make(chan error, 1)
	go func() { done <- l.flush(ctx) }()
	<-slow.started
	slow.release <- nil
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(slow.parts) != 1 || len(slow.parts[0]) != 3 || slow.parts[0][0].ZuoraID != "doc-00" || len(l.unwritten()) != 0 {
		t.Fatalf("parts %v, unwritten %d; want one part with the 3 rows in order", slow.parts, len(l.unwritten()))
	}
}

// TestAnOldAnswerIsWrittenWithoutAFullPart: under a slow ERP a part fills
// slowly; once the oldest buffered answer has waited ledgerMaxAge, the next
// add writes what is buffered, so the stage is never far behind the ERP.
func TestAnOldAnswerIsWrittenWithoutAFullPart(t *testing.T) {
	ctx := context.Background()
	slow := newSlowParts()
	now := time.Date(2026, 11, 25, 6, 0, 0, 0, time.UTC)
	l := &ledger{w: testWindow, runID: "r", every: 100, now: func() time.Time { return now }, write: slow.write}
	rows := ledgerRows(3)
	for i := range rows {
		rows[i].FinishedAt = now
	}
	returns(t, addAll(ctx, l, rows[:2]), "adding two fresh answers")
	if len(slow.started) != 0 {
		t.Fatal("a part of two fresh answers was written; want them buffered until the part is full or old")
	}
	now = now.Add(ledgerMaxAge)
	rows[2].FinishedAt = now
	added := addAll(ctx, l, rows[2:])
	select {
	case <-slow.started:
	case <-time.After(5 * time.Second):
		t.Fatal("the oldest answer waited ledgerMaxAge and no part was written")
	}
	slow.release <- nil
	returns(t, added, "the add that found the oldest answer old")
	if len(slow.parts) != 1 || len(slow.parts[0]) != 3 {
		t.Fatalf("parts %v; want one part of the three answers", slow.parts)
	}
}
