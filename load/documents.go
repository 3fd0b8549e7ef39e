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
	"hash/maphash"
	"io"
	"math"
	"unique"

	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/fastjson"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/money"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// maxLine is the longest NDJSON line (one document with its payload) the load accepts.
const maxLine = 64 << 20

// document is what the load knows of one ready line, its index record (see
// index): enough to order it, hold it back, mark it, tally it and write its
// ledger rows, never its payload.
type document struct {
	DocType                           stage.DocType
	ZuoraID, IdempotencyKey, Currency string
	Event                             string        // stage.Event*; a line without one is a post
	deps                              []Dep         // what must be live in the ERP before it is posted
	reverses                          stage.DocType // a reversal's: the type of the live copy it ends
	fixed                             money.Fixed   // the amount, exact, in 16 bytes
	sha                               payloadSum    // sha256 of the payload bytes
	line                              lineMark      // where the line's payload is, and a digest of the line
}

// payloadSum is the sha256 of a payload's bytes, kept as its 32 bytes; the
// ledger writes it in hex (stage.LedgerRow.PayloadSHA256).
type payloadSum [sha256.Size]byte

// String is the sum in hex, as the ledger holds it.
func (p payloadSum) String() string { return hex.EncodeToString(p[:]) }

// sumOf reads a sum the ledger wrote in hex; anything else is the zero sum,
// which no payload has.
func sumOf(hexSum string) payloadSum {
	var p payloadSum
	if len(hexSum) != 2*len(p) {
		return payloadSum{}
	}
	if _, err := hex.Decode(p[:], []byte(hexSum)); err != nil {
		return payloadSum{}
	}
	return p
}

// lineMark lets a later read of the same line take its payload without
// decoding it again: a keyed 64-bit digest of the line's bytes, and where
// its payload starts and ends in them.
type lineMark struct {
	digest   uint64
	from, to uint32
}

// lineSeed keys the line digests of this process: a read compares only
// with another read of the same process.
var lineSeed = maphash.MakeSeed()

// markLine returns the mark of line, whose payload bytes are payload.
func markLine(line, payload []byte) (lineMark, bool) {
	at := bytes.Index(line, payload) // the first match: a JSON object never appears unescaped inside a string
	if at < 0 || len(line) > math.MaxUint32 {
		return lineMark{}, false
	}
	return lineMark{digest: maphash.Bytes(lineSeed, line), from: uint32(at), to: uint32(at + len(payload))}, true
}

// payloadOf returns the payload of line when line is the very line m
// marks, byte for byte.
func (m lineMark) payloadOf(line []byte) ([]byte, bool) {
	if m.to == 0 || int(m.to) > len(line) || maphash.Bytes(lineSeed, line) != m.digest {
		return nil, false
	}
	return line[m.from:m.to], true
}

// amount is the line's amount.
func (d document) amount() decimal.Decimal { return money.FromFixed(d.fixed) }

// same reports whether d and o describe the same line with the same payload.
func (d document) same(o document) bool {
	return d.DocType == o.DocType && d.ZuoraID == o.ZuoraID && d.IdempotencyKey == o.IdempotencyKey &&
		d.Currency == o.Currency && d.fixed == o.fixed && d.sha == o.sha && d.Event == o.Event
}

// markable reports whether the write-back marks d's document: a document
// posted (or posted again), never an application or a reversal.
func (d document) markable() bool {
	return d.DocType.IsDocument() && d.DocType.MarkObject() != ""
}

// posting is a document with its payload, held only while it is being posted.
type posting struct {
	document
	payload json.RawMessage
}

// readyDocuments is a window's NDJSON, verified against its manifest, and the
// index of its lines in file order. close removes the index.
type readyDocuments struct {
	key  string
	sum  string // the checksum verified, "" for a manifest without one
	docs *index
}

func (r *readyDocuments) close() { r.docs.close() }

// readDocuments reads the window's transform manifest and streams the NDJSON it
// commits once, verifying its checksum and indexing each line.
func readDocuments(ctx context.Context, st *stage.Stage, w stage.Window) (*readyDocuments, error) {
	iw, err := newIndex()
	if err != nil {
		return nil, err
	}
	key, sum, err := scanReady(ctx, st, w, iw.add)
	var x *index
	if err == nil {
		x, err = iw.done()
	}
	if err != nil {
		iw.abandon()
		return nil, err
	}
	return &readyDocuments{key: key, sum: sum, docs: x}, nil
}

// readDocumentsWhere reads the window's lines as readDocuments does and
// returns, in file order, those keep accepts: every line is still verified.
func readDocumentsWhere(ctx context.Context, st *stage.Stage, w stage.Window, keep func(d *document) bool) ([]document, error) {
	var out []document
	_, _, err := scanReady(ctx, st, w, func(d *document) error {
		if keep(d) {
			out = append(out, *d)
		}
		return nil
	})
	return out, err
}

// scanReady reads the window's transform manifest and streams the NDJSON it
// commits once, calling fn with each line's document and verifying the
// checksum at the end; it returns the NDJSON's key and checksum.
func scanReady(ctx context.Context, st *stage.Stage, w stage.Window, fn func(d *document) error) (key, sum string, err error) {
	m, found, err := st.ReadTransform(ctx, w)
	if err != nil {
		return "", "", fmt.Errorf("read transform manifest: %w", err)
	}
	if !found {
		return "", "", fmt.Errorf("window %s has no transform manifest: run the transform first", w.ID())
	}
	if m.Documents.Key == "" {
		return "", "", fmt.Errorf("transform manifest of window %s lists no documents object", w.ID())
	}
	rc, err := st.NewReader(ctx, m.Documents.Key)
	if err != nil {
		return "", "", fmt.Errorf("read ready documents: %w", err)
	}
	defer rc.Close()
	h := sha256.New()
	if err := eachDocument(m.Documents.Key, io.TeeReader(rc, h), linesHint(m), fn); err != nil {
		return "", "", err
	}
	if m.Documents.SHA256 != "" {
		if got := hex.EncodeToString(h.Sum(nil)); got != m.Documents.SHA256 {
			return "", "", fmt.Errorf("ready documents %s: checksum %s, manifest says %s", m.Documents.Key, got, m.Documents.SHA256)
		}
	}
	return m.Documents.Key, m.Documents.SHA256, nil
}

// linesHint is how many lines the transform manifest m says its NDJSON
// holds, bounded by what its size can hold: a capacity, never trusted further.
func linesHint(m stage.TransformManifest) int {
	var n int64
	for _, t := range m.Totals {
		n += max(t.Ready.Count, 0)
	}
	return int(min(n, m.Documents.Size/64, 1<<24))
}

// parseDocuments streams NDJSON envelopes from r and returns their metadata in
// order, keeping amounts exact; it refuses a malformed line or an
// idempotency key listed twice.
func parseDocuments(key string, r io.Reader) ([]document, error) {
	var docs []document
	err := eachDocument(key, r, 0, func(d *document) error {
		docs = append(docs, *d)
		return nil
	})
	return docs, err
}

// keySeeds key the digests by which eachDocument finds an idempotency key
// listed twice: 128 bits a key, not the key (two keys share a digest once
// in 2^64 windows of 2^32 lines).
var keySeeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}

// eachDocument streams NDJSON envelopes from r and calls fn with each one's
// metadata in order, keeping amounts exact; it refuses a malformed line or
// an idempotency key listed twice. hint is how many lines r likely holds.
func eachDocument(key string, r io.Reader, hint int, fn func(d *document) error) error {
	seen := make(map[[2]uint64]struct{}, hint)
	var env stage.Envelope // reused: its payload buffer grows to the longest line, once
	return scanLines(key, r, func(n int, line []byte) error {
		d, err := parseDocument(line, &env)
		if err != nil {
			return fmt.Errorf("%s line %d: %w", key, n, err)
		}
		k := [2]uint64{maphash.String(keySeeds[0], d.IdempotencyKey), maphash.String(keySeeds[1], d.IdempotencyKey)}
		if _, twice := seen[k]; twice {
			return fmt.Errorf("%s line %d: %s %s: idempotency key %s appears twice", key, n, d.DocType, d.ZuoraID, d.IdempotencyKey)
		}
		seen[k] = struct{}{}
		return fn(&d)
	})
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
// line's payload bytes exactly) and checks it against the registry and the
// events of docs/design.md "AR pipeline".
func parseDocument(line []byte, env *stage.Envelope) (document, error) {
	var d document
	*env = stage.Envelope{Payload: env.Payload[:0]}
	if fastjson.Unmarshal(line, env) != nil { // encoding/json decides, and says why
		*env = stage.Envelope{Payload: env.Payload[:0]}
		if err := json.Unmarshal(line, env); err != nil {
			return d, fmt.Errorf("decode stage.Envelope: %w", err)
		}
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
	event := env.Event
	if event == "" {
		event = stage.EventPost // a line written before events
	}
	if err := checkEvent(dt, event, env); err != nil {
		return d, fmt.Errorf("%s %s: %w", env.DocType, env.ZuoraID, err)
	}
	amount, err := money.Parse(string(env.Amount))
	if err != nil {
		return d, fmt.Errorf("%s %s: %w", env.DocType, env.ZuoraID, err)
	}
	if d.fixed, err = money.ToFixed(amount); err != nil {
		return d, fmt.Errorf("%s %s: %w", env.DocType, env.ZuoraID, err)
	}
	// A window holds a few types, events and currencies: one copy of each.
	d.DocType, d.Currency, d.Event = stage.DocType(unique.Make(env.DocType).Value()), unique.Make(env.Currency).Value(), unique.Make(event).Value()
	d.ZuoraID, d.IdempotencyKey = env.ZuoraID, env.IdempotencyKey
	if d.IdempotencyKey == d.ZuoraID {
		d.IdempotencyKey = d.ZuoraID // share the bytes: the key is usually the id
	}
	if env.Reverses != nil {
		d.reverses = stage.DocType(unique.Make(env.Reverses.DocType).Value())
	}
	if d.deps, err = dependencies(dt, env); err != nil {
		return d, fmt.Errorf("%s %s: %w", env.DocType, env.ZuoraID, err)
	}
	d.sha = sha256.Sum256(env.Payload)
	d.line, _ = markLine(line, env.Payload) // without a mark the line is decoded again when posted
	return d, nil
}

// checkEvent refuses an event the line's kind does not have: documents are
// posted or posted again, applications applied, and a reversal names the
// live copy it ends.
func checkEvent(dt stage.DocType, event string, env *stage.Envelope) error {
	switch dt.Kind() {
	case stage.KindDocument:
		if event != stage.EventPost && event != stage.EventRepost {
			return fmt.Errorf("event %q: a document is posted (post) or posted again (repost)", event)
		}
	case stage.KindApplication:
		if event != stage.EventApply {
			return fmt.Errorf("event %q: an application is applied (apply)", event)
		}
	case stage.KindReversal:
		switch r := env.Reverses; {
		case event != stage.EventReversal:
			return fmt.Errorf("event %q: a reversal has event reversal", event)
		case r == nil || r.IdempotencyKey == "":
			return fmt.Errorf("a reversal names the live copy it ends (reverses.doc_type and reverses.idempotency_key)")
		case !stage.DocType(r.DocType).IsDocument() && !stage.DocType(r.DocType).IsApplication():
			return fmt.Errorf("reverses.doc_type %q is not a document type or an application kind", r.DocType)
		}
	}
	if env.Reverses != nil && dt.Kind() != stage.KindReversal {
		return fmt.Errorf("only a reversal names a live copy it ends (reverses)")
	}
	return nil
}

// dependencies returns what a line depends on, typed where the ERP API's
// application body says it: the source by the kind, the target by target_type.
func dependencies(dt stage.DocType, env *stage.Envelope) ([]Dep, error) {
	if len(env.DependsOn) == 0 {
		return nil, nil
	}
	out := make([]Dep, 0, len(env.DependsOn))
	for _, id := range env.DependsOn {
		if id == "" {
			return nil, fmt.Errorf("depends_on holds an empty id")
		}
		out = append(out, Dep{ZuoraID: id})
	}
	if !dt.IsApplication() {
		return out, nil
	}
	var body struct {
		Application struct {
			Source     string `json:"source_zuora_id"`
			TargetType string `json:"target_type"`
			Target     string `json:"target_zuora_id"`
		} `json:"application"`
	}
	if err := json.Unmarshal(env.Payload, &body); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	for i := range out {
		switch out[i].ZuoraID {
		case body.Application.Source:
			out[i].DocType = dt.Source()
		case body.Application.Target:
			out[i].DocType = stage.DocType(body.Application.TargetType)
		}
	}
	return out, nil
}
