package load

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// ledger buffers rows and appends them to the stage as small parts, never
// rewriting one. It is safe for concurrent use.
type ledger struct {
	st    *stage.Stage
	w     stage.Window
	runID string
	every int
	now   func() time.Time

	mu      sync.Mutex
	pending []stage.LedgerRow
	seq     int
	written []string // keys of the parts this run wrote
}

// add buffers a row and writes a part once every rows are buffered.
func (l *ledger) add(ctx context.Context, r stage.LedgerRow) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending = append(l.pending, r)
	if len(l.pending) < l.every {
		return nil
	}
	return l.flushLocked(ctx)
}

// flush writes every buffered row as one part; with nothing buffered it writes nothing.
func (l *ledger) flush(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.flushLocked(ctx)
}

func (l *ledger) flushLocked(ctx context.Context) error {
	if len(l.pending) == 0 {
		return nil
	}
	key := stage.LedgerKey(l.w, l.now(), l.runID, l.seq)
	if err := writeLedgerPart(ctx, l.st, key, l.pending); err != nil {
		return fmt.Errorf("append ledger part: %w", err)
	}
	l.seq++
	l.pending = l.pending[:0]
	l.written = append(l.written, key)
	return nil
}

// writeLedgerPart writes rows as the ledger part key.
func writeLedgerPart(ctx context.Context, st *stage.Stage, key string, rows []stage.LedgerRow) error {
	w, err := st.NewWriter(ctx, key)
	if err != nil {
		return err
	}
	defer w.Abort()
	pw := parquet.NewGenericWriter[stage.LedgerRow](w, parquet.Compression(&parquet.Zstd))
	if _, err := pw.Write(rows); err != nil {
		return err
	}
	if err := pw.Close(); err != nil {
		return err
	}
	return w.Close()
}

// unwritten returns a copy of the rows buffered but not yet in a part.
func (l *ledger) unwritten() []stage.LedgerRow {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]stage.LedgerRow(nil), l.pending...)
}

// readLedger returns every row of every ledger part of w, in write order.
func readLedger(ctx context.Context, st *stage.Stage, w stage.Window) ([]stage.LedgerRow, error) {
	var rows []stage.LedgerRow
	err := eachLedgerPart(ctx, st, w, func(_ string, part []stage.LedgerRow) error {
		rows = append(rows, part...)
		return nil
	})
	return rows, err
}

// eachLedgerPart calls fn with the key and rows of every ledger part of w, in write order.
func eachLedgerPart(ctx context.Context, st *stage.Stage, w stage.Window, fn func(key string, rows []stage.LedgerRow) error) error {
	objs, err := st.List(ctx, stage.LedgerPrefix(w))
	if err != nil {
		return fmt.Errorf("list ledger of window %s: %w", w.ID(), err)
	}
	for _, o := range objs {
		if !strings.HasSuffix(o.Key, ".parquet") {
			continue
		}
		data, err := st.Read(ctx, o.Key)
		if err != nil {
			return fmt.Errorf("read ledger: %w", err)
		}
		part, err := parquet.Read[stage.LedgerRow](bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return fmt.Errorf("decode ledger part %s: %w", o.Key, err)
		}
		if err := fn(o.Key, part); err != nil {
			return err
		}
	}
	return nil
}

// docState is what the ledger says about one document.
type docState struct {
	docType     string
	confirmed   bool    // the ERP created it or already had it
	erpID       string  // set when confirmed
	rejected    bool    // the last answer was a permanent refusal
	rejectedSHA string  // payload digest of the refused post
	marked      bool    // marked transferred in Zuora
	refusal     Refusal // the last refusal, and when the first one came
}

// states folds the ledger into one state per Zuora id. A confirmation is final;
// a rejection counts only while no later post superseded it.
func states(rows []stage.LedgerRow) map[string]*docState {
	out := map[string]*docState{}
	for _, r := range rows {
		s := out[r.ZuoraID]
		if s == nil {
			s = &docState{docType: r.DocType}
			out[r.ZuoraID] = s
		}
		switch r.Action {
		case stage.ActionPost:
			switch r.Outcome {
			case stage.OutcomeCreated, stage.OutcomeDuplicate:
				s.confirmed, s.erpID, s.rejected = true, r.ERPID, false
			case stage.OutcomeRejected:
				if !s.confirmed {
					s.rejected, s.rejectedSHA = true, r.PayloadSHA256
					if s.refusal.First.IsZero() {
						s.refusal.First = r.FinishedAt
					}
					s.refusal.HTTPStatus, s.refusal.Message, s.refusal.Last = int(r.HTTPStatus), r.Message, r.FinishedAt
				}
			case stage.OutcomeTransient:
				s.rejected = false
			}
		case stage.ActionMark:
			if r.Outcome == stage.OutcomeMarked {
				s.marked = true
			}
		}
	}
	return out
}
