package load

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/money"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// Ledger actions and outcomes, as docs/design.md "Ledger" names them.
const (
	actionPost = "post"
	actionMark = "mark"

	outcomeCreated    = "created"
	outcomeDuplicate  = "duplicate"
	outcomeRejected   = "rejected"
	outcomeTransient  = "transient"
	outcomeMarked     = "marked"
	outcomeMarkFailed = "mark_failed"
)

// ledgerRow is one line of the ledger: a post outcome or a mark result.
type ledgerRow struct {
	RunID          string      `parquet:"run_id"`
	DocType        string      `parquet:"doc_type"`
	ZuoraID        string      `parquet:"zuora_id"`
	IdempotencyKey string      `parquet:"idempotency_key"`
	Action         string      `parquet:"action"`
	Outcome        string      `parquet:"outcome"`
	HTTPStatus     int32       `parquet:"http_status"`
	ERPID          string      `parquet:"erp_id"`
	Message        string      `parquet:"message"`
	Attempts       int32       `parquet:"attempts"`
	Ambiguous      bool        `parquet:"ambiguous"`
	Currency       string      `parquet:"currency"`
	Amount         money.Fixed `parquet:"amount,decimal(9:38)"`
	PayloadSHA256  string      `parquet:"payload_sha256"`
	StartedAt      time.Time   `parquet:"started_at,timestamp(microsecond)"`
	FinishedAt     time.Time   `parquet:"finished_at,timestamp(microsecond)"`
}

// ledger buffers rows and appends them to the stage as small parts, never
// rewriting one. It is safe for concurrent use.
type ledger struct {
	st    *stage.Stage
	w     stage.Window
	runID string
	every int
	now   func() time.Time

	mu      sync.Mutex
	pending []ledgerRow
	seq     int
	written []string // keys of the parts this run wrote
}

// add buffers a row and writes a part once every rows are buffered.
func (l *ledger) add(ctx context.Context, r ledgerRow) error {
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
	_, err := l.st.Write(ctx, key, func(w io.Writer) error {
		pw := parquet.NewGenericWriter[ledgerRow](w, parquet.Compression(&parquet.Zstd))
		if _, err := pw.Write(l.pending); err != nil {
			return err
		}
		return pw.Close()
	})
	if err != nil {
		return fmt.Errorf("append ledger part: %w", err)
	}
	l.seq++
	l.pending = l.pending[:0]
	l.written = append(l.written, key)
	return nil
}

// unwritten returns a copy of the rows buffered but not yet in a part.
func (l *ledger) unwritten() []ledgerRow {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]ledgerRow(nil), l.pending...)
}

// readLedger returns every row of every ledger part of w, in write order.
func readLedger(ctx context.Context, st *stage.Stage, w stage.Window) ([]ledgerRow, error) {
	var rows []ledgerRow
	err := eachLedgerPart(ctx, st, w, func(_ string, part []ledgerRow) error {
		rows = append(rows, part...)
		return nil
	})
	return rows, err
}

// eachLedgerPart calls fn with the key and rows of every ledger part of w, in write order.
func eachLedgerPart(ctx context.Context, st *stage.Stage, w stage.Window, fn func(key string, rows []ledgerRow) error) error {
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
		part, err := parquet.Read[ledgerRow](bytes.NewReader(data), int64(len(data)))
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
func states(rows []ledgerRow) map[string]*docState {
	out := map[string]*docState{}
	for _, r := range rows {
		s := out[r.ZuoraID]
		if s == nil {
			s = &docState{docType: r.DocType}
			out[r.ZuoraID] = s
		}
		switch r.Action {
		case actionPost:
			switch r.Outcome {
			case outcomeCreated, outcomeDuplicate:
				s.confirmed, s.erpID, s.rejected = true, r.ERPID, false
			case outcomeRejected:
				if !s.confirmed {
					s.rejected, s.rejectedSHA = true, r.PayloadSHA256
					if s.refusal.First.IsZero() {
						s.refusal.First = r.FinishedAt
					}
					s.refusal.HTTPStatus, s.refusal.Message, s.refusal.Last = int(r.HTTPStatus), r.Message, r.FinishedAt
				}
			case outcomeTransient:
				s.rejected = false
			}
		case actionMark:
			if r.Outcome == outcomeMarked {
				s.marked = true
			}
		}
	}
	return out
}
