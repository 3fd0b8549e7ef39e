package load

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/money"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// maxLine is the longest NDJSON line (one document with its payload) the load accepts.
const maxLine = 64 << 20

// document is what the load keeps of one ready document for the whole run:
// enough to mark it, tally it and write its ledger rows, never its payload.
type document struct {
	DocType                           stage.DocType
	ZuoraID, IdempotencyKey, Currency string
	amount                            decimal.Decimal
	fixed                             money.Fixed
	sha                               string // sha256 of the payload bytes
}

// same reports whether d and o describe the same document with the same payload.
func (d document) same(o document) bool {
	return d.DocType == o.DocType && d.ZuoraID == o.ZuoraID && d.IdempotencyKey == o.IdempotencyKey &&
		d.Currency == o.Currency && d.fixed == o.fixed && d.sha == o.sha
}

// posting is a document with its payload, held only while it is being posted.
type posting struct {
	document
	payload json.RawMessage
}

// readyDocuments is a window's NDJSON, verified against its manifest, and the
// metadata of its documents in file order.
type readyDocuments struct {
	key  string
	docs []document
}

// readDocuments reads the window's transform manifest and streams the NDJSON it
// commits once, verifying its checksum and keeping each document's metadata.
func readDocuments(ctx context.Context, st *stage.Stage, w stage.Window) (*readyDocuments, error) {
	m, found, err := st.ReadTransform(ctx, w)
	if err != nil {
		return nil, fmt.Errorf("read transform manifest: %w", err)
	}
	if !found {
		return nil, fmt.Errorf("window %s has no transform manifest: run the transform first", w.ID())
	}
	if m.Documents.Key == "" {
		return nil, fmt.Errorf("transform manifest of window %s lists no documents object", w.ID())
	}
	rc, err := st.NewReader(ctx, m.Documents.Key)
	if err != nil {
		return nil, fmt.Errorf("read ready documents: %w", err)
	}
	defer rc.Close()
	h := sha256.New()
	docs, err := parseDocuments(m.Documents.Key, io.TeeReader(rc, h))
	if err != nil {
		return nil, err
	}
	if m.Documents.SHA256 != "" {
		if got := hex.EncodeToString(h.Sum(nil)); got != m.Documents.SHA256 {
			return nil, fmt.Errorf("ready documents %s: checksum %s, manifest says %s", m.Documents.Key, got, m.Documents.SHA256)
		}
	}
	return &readyDocuments{key: m.Documents.Key, docs: docs}, nil
}

// parseDocuments streams NDJSON envelopes from r and returns their metadata in
// order, keeping amounts exact; it refuses a malformed line or a document listed twice.
func parseDocuments(key string, r io.Reader) ([]document, error) {
	var docs []document
	seen := map[string]bool{}
	var env stage.Envelope // reused: its payload buffer grows to the longest line, once
	err := scanLines(key, r, func(n int, line []byte) error {
		d, err := parseDocument(line, &env)
		if err != nil {
			return fmt.Errorf("%s line %d: %w", key, n, err)
		}
		if seen[d.ZuoraID] {
			return fmt.Errorf("%s line %d: document %s appears twice", key, n, d.ZuoraID)
		}
		seen[d.ZuoraID] = true
		docs = append(docs, d)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return docs, nil
}

// errStopScan ends scanLines early without an error.
var errStopScan = errors.New("stop scanning")

// scanLines calls fn with the number and bytes of each non-blank line of r; the
// bytes are valid only during the call. fn returning errStopScan ends the scan.
func scanLines(key string, r io.Reader, fn func(n int, line []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if err := fn(n, line); errors.Is(err, errStopScan) {
			return nil
		} else if err != nil {
			return err
		}
	}
	if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
		return fmt.Errorf("read %s: a line is longer than %d MiB", key, maxLine>>20)
	} else if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	return nil
}

// parseDocument decodes one NDJSON line into env (whose payload then holds the
// line's payload bytes exactly) and checks it.
func parseDocument(line []byte, env *stage.Envelope) (document, error) {
	var d document
	*env = stage.Envelope{Payload: env.Payload[:0]}
	if err := json.Unmarshal(line, env); err != nil {
		return d, fmt.Errorf("decode stage.Envelope: %w", err)
	}
	dt := stage.DocType(env.DocType)
	if !dt.Valid() {
		return d, fmt.Errorf("unknown doc_type %q", env.DocType)
	}
	if env.Endpoint != dt.Endpoint() {
		return d, fmt.Errorf("%s %s: endpoint %q, want %q", env.DocType, env.ZuoraID, env.Endpoint, dt.Endpoint())
	}
	if env.ZuoraID == "" || env.IdempotencyKey == "" || env.Currency == "" {
		return d, fmt.Errorf("%s %q: zuora_id, idempotency_key and currency are required", env.DocType, env.ZuoraID)
	}
	if len(env.Payload) == 0 || env.Payload[0] != '{' {
		return d, fmt.Errorf("%s %s: payload is not a JSON object", env.DocType, env.ZuoraID)
	}
	amount, err := money.Parse(string(env.Amount))
	if err != nil {
		return d, fmt.Errorf("%s %s: %w", env.DocType, env.ZuoraID, err)
	}
	if d.fixed, err = money.ToFixed(amount); err != nil {
		return d, fmt.Errorf("%s %s: %w", env.DocType, env.ZuoraID, err)
	}
	d.DocType, d.ZuoraID, d.IdempotencyKey, d.Currency, d.amount = dt, env.ZuoraID, env.IdempotencyKey, env.Currency, amount
	if d.IdempotencyKey == d.ZuoraID {
		d.IdempotencyKey = d.ZuoraID // share the bytes: the key is usually the id
	}
	sum := sha256.Sum256(env.Payload)
	d.sha = hex.EncodeToString(sum[:])
	return d, nil
}
