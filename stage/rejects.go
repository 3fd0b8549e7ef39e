package stage

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// QuarantineTable is the raw table of records the extract could not stage as
// Zuora sent them: their raw JSON and why (see docs/design.md).
const QuarantineTable = "quarantine"

// QuarantineKey is where the extract writes the records of one raw document
// table that it quarantined in slice part of window w.
func QuarantineKey(table string, w Window, part int) string {
	return fmt.Sprintf("raw/entity=%s/window=%s/%s-part-%05d.parquet", QuarantineTable, w.ID(), table, part)
}

// RecheckKey is where a re-check run writes the rows it fetched again for a
// raw table of window w, beside the window's own parts.
func RecheckKey(table string, w Window, runID string) string {
	return fmt.Sprintf("raw/entity=%s/window=%s/recheck-%s.parquet", table, w.ID(), runID)
}

// Recheck records, in the extract manifest, one run that fetched some of the
// window's rejected documents again and added what Zuora now holds.
type Recheck struct {
	RunID     string    `json:"run_id"`
	At        time.Time `json:"at"`
	Documents []string  `json:"documents"` // Zuora ids whose new rows the run added
}

// RejectIndexKey holds the outstanding rejects of every window.
const RejectIndexKey = "state/rejects.json"

// AckPrefix holds one object per acknowledged reject.
const AckPrefix = "state/acks/"

// AckKey is where the acknowledgement of document id is kept.
func AckKey(id string) string { return AckPrefix + id + ".json" }

// RejectsIndexedKey marks which transform of window w the reject index
// reflects, so that each committed transform is applied exactly once.
func RejectsIndexedKey(w Window) string {
	return fmt.Sprintf("manifests/window=%s/rejects-indexed.json", w.ID())
}

// LoadIndexedKey marks which load of window w, and which of its ledger parts,
// the reject index reflects, so that each load is applied exactly once.
func LoadIndexedKey(w Window) string {
	return fmt.Sprintf("manifests/window=%s/erp-rejects-indexed.json", w.ID())
}

// The reason codes the pipeline itself gives (the mapping's own are in its SQL).
const (
	ReasonERPRejected        = "ERP_REJECTED"        // an outstanding reject: the ERP refused the document
	ReasonMalformed          = "MALFORMED"           // a reject: the record was quarantined
	ReasonAlreadyTransferred = "ALREADY_TRANSFERRED" // a skip: Zuora says it is transferred to accounting
	ReasonAlreadyPosted      = "ALREADY_POSTED"      // a skip: the ledger of another window confirms it
	ReasonAcknowledged       = "ACKNOWLEDGED"        // a skip: a person decided it never goes to the ERP
	ReasonNotPosted          = "NOT_POSTED"          // a skip: not in a posting status, and the ERP holds no live copy
	ReasonIgnoredInZuora     = "IGNORED_IN_ZUORA"    // a skip: Zuora says transferredToAccounting = Ignore
	ReasonSuperseded         = "SUPERSEDED"          // a skip: another window holds a newer version, which decides the record
	ReasonSignUndetermined   = "SIGN_UNDETERMINED"   // a reject: the window cannot settle an application group's direction
	ReasonDependencyRejected = "DEPENDENCY_REJECTED" // an outstanding reject: a document an application joins was rejected
	ReasonNoERPAccount       = "NO_ERP_ACCOUNT"      // a reject: the account has no ERP customer
	ReasonMissingField       = "MISSING_FIELD"       // a reject: a field the ERP needs is absent
)

// OutstandingReject is a document whose latest staged version was rejected
// (by the mapping, quarantined as MALFORMED, or refused by the ERP as
// ERP_REJECTED) and that nothing has resolved since: no version was posted
// or skipped since, and no one acknowledged it.
type OutstandingReject struct {
	DocType string `json:"doc_type"`
	// ZuoraID is the document's id; a quarantined record without one has the
	// key no-id-<16 hex of its raw JSON's sha256> and cannot be re-checked.
	ZuoraID string `json:"zuora_id"`
	Number  string `json:"number,omitempty"`
	Window  string `json:"window"` // the window whose snapshot holds the rejected version
	// Updated is the rejected version's updatedDate; nil when Zuora sent none.
	Updated    *time.Time       `json:"updated_date,omitempty"`
	Customer   string           `json:"customer,omitempty"`
	Currency   string           `json:"currency,omitempty"`
	Amount     *decimal.Decimal `json:"amount,omitempty"` // nil when it could not be read exactly
	ReasonCode string           `json:"reason_code"`
	Message    string           `json:"message"`
	ERPStatus  int              `json:"erp_status,omitempty"` // the ERP's HTTP status, for ERP_REJECTED
	// Account is the expanded account as staged: what may change in Zuora
	// without a new version of the document.
	Account   Account    `json:"account"`
	FirstSeen time.Time  `json:"first_seen"`
	LastSeen  time.Time  `json:"last_seen"`
	Checked   *time.Time `json:"last_checked,omitempty"` // the last re-check that fetched it
	Note      string     `json:"check_note,omitempty"`   // what that re-check found
}

// Account is what the raw tables keep of a document's account.
type Account struct {
	ID     string `json:"id,omitempty"`
	Number string `json:"number,omitempty"`
	ERPID  string `json:"erp_id,omitempty"`
}

// NoIDPrefix starts the key of a quarantined record that has no id.
const NoIDPrefix = "no-id-"

// Recheckable reports whether the document can be fetched again by id.
func (r OutstandingReject) Recheckable() bool { return !strings.HasPrefix(r.ZuoraID, NoIDPrefix) }

// RejectIndex is the stage's list of outstanding rejects, so that a run
// re-checks and reports them without reading every window's files.
type RejectIndex struct {
	UpdatedAt time.Time `json:"updated_at"`
	// Pending lists windows whose re-checked snapshot is committed or about to
	// be, and that must be mapped again before anything else is trusted.
	Pending []string `json:"pending_windows,omitempty"`
	// LoadsIndexed says the ERP's refusals are in it: an index written before
	// they were gets them from every window's ledger on first use.
	LoadsIndexed bool `json:"loads_indexed"`
	// Rejects come last: WriteRejectIndex streams them after the rest.
	Rejects []OutstandingReject `json:"rejects"`
}

// Sort orders the rejects by window, document type, number and id.
func (x *RejectIndex) Sort() {
	sort.Slice(x.Rejects, func(i, j int) bool {
		a, b := x.Rejects[i], x.Rejects[j]
		switch {
		case a.Window != b.Window:
			return a.Window < b.Window
		case a.DocType != b.DocType:
			return a.DocType < b.DocType
		case a.Number != b.Number:
			return a.Number < b.Number
		}
		return a.ZuoraID < b.ZuoraID
	})
}

// ReadRejectIndex reads the reject index; found is false when the stage has none yet.
func (s *Stage) ReadRejectIndex(ctx context.Context) (idx RejectIndex, found bool, err error) {
	var rejects []OutstandingReject
	idx, found, err = s.EachReject(ctx, func(r *OutstandingReject) error {
		rejects = append(rejects, *r)
		return nil
	})
	idx.Rejects = slices.Clip(rejects)
	return idx, found, err
}

// EachReject reads the reject index one reject at a time, calling fn with
// each (r is reused after fn returns), and returns the rest of the index
// without its rejects: a reader that keeps a little of each reject holds no
// more than that, however many there are. found is false when the stage has
// none yet.
func (s *Stage) EachReject(ctx context.Context, fn func(r *OutstandingReject) error) (head RejectIndex, found bool, err error) {
	rc, err := s.NewReader(ctx, RejectIndexKey)
	if errors.Is(err, ErrNotFound) {
		return RejectIndex{}, false, nil
	} else if err != nil {
		return RejectIndex{}, false, err
	}
	defer rc.Close()
	if err := eachReject(json.NewDecoder(bufio.NewReaderSize(rc, 64<<10)), &head, fn); err != nil {
		return RejectIndex{}, false, fmt.Errorf("decode %s: %w", RejectIndexKey, err)
	}
	return head, true, nil
}

// eachReject decodes the index object from dec: its rejects one by one to
// fn, every other field into head.
func eachReject(dec *json.Decoder, head *RejectIndex, fn func(r *OutstandingReject) error) error {
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	rest := map[string]json.RawMessage{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := t.(string)
		if !strings.EqualFold(name, "rejects") {
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return err
			}
			rest[name] = v
			continue
		}
		if err := eachArrayElement(dec, fn); err != nil {
			return fmt.Errorf("rejects: %w", err)
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return err
	}
	b, err := json.Marshal(rest)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, head)
}

// eachArrayElement decodes a JSON array (or null) from dec one element at a time.
func eachArrayElement(dec *json.Decoder, fn func(r *OutstandingReject) error) error {
	t, err := dec.Token()
	if err != nil || t == nil {
		return err // null: no rejects
	}
	if d, ok := t.(json.Delim); !ok || d != '[' {
		return fmt.Errorf("want an array, found %v", t)
	}
	var r OutstandingReject
	for dec.More() {
		r = OutstandingReject{}
		if err := dec.Decode(&r); err != nil {
			return err
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	return expectDelim(dec, ']')
}

// expectDelim reads the next token of dec, which must be d.
func expectDelim(dec *json.Decoder, d json.Delim) error {
	t, err := dec.Token()
	if err != nil {
		return err
	}
	if got, ok := t.(json.Delim); !ok || got != d {
		return fmt.Errorf("want %q, found %v", d, t)
	}
	return nil
}

// WriteRejectIndex replaces the reject index, encoding one reject at a time
// (the same indented JSON as the rest of the stage's state).
func (s *Stage) WriteRejectIndex(ctx context.Context, idx RejectIndex) error {
	idx.Sort()
	w, err := s.NewWriter(ctx, RejectIndexKey)
	if err != nil {
		return err
	}
	defer w.Abort()
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := writeRejectIndex(bw, idx); err != nil {
		return fmt.Errorf("encode %s: %w", RejectIndexKey, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", RejectIndexKey, err)
	}
	return w.Close()
}

// writeRejectIndex writes idx to w as indented JSON, its rejects last and
// one at a time.
func writeRejectIndex(w io.Writer, idx RejectIndex) error {
	rejects := idx.Rejects
	idx.Rejects = []OutstandingReject{} // the last field: the head ends `"rejects": []` and a brace
	head, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	head, ok := bytes.CutSuffix(head, []byte("[]\n}"))
	if !ok {
		return fmt.Errorf("the index's rejects are not its last field")
	}
	if _, err := fmt.Fprintf(w, "%s[", head); err != nil {
		return err
	}
	idx.Rejects = rejects
	for i := range idx.Rejects {
		b, err := json.MarshalIndent(&idx.Rejects[i], "    ", "  ")
		if err != nil {
			return err
		}
		sep := ","
		if i == 0 {
			sep = ""
		}
		if _, err := fmt.Fprintf(w, "%s\n    %s", sep, b); err != nil {
			return err
		}
	}
	closing := "]\n}\n"
	if len(idx.Rejects) > 0 {
		closing = "\n  ]\n}\n"
	}
	_, err = io.WriteString(w, closing)
	return err
}

// Ack is a person's decision that a rejected document must never go to the ERP.
type Ack struct {
	ZuoraID    string    `json:"zuora_id"`
	DocType    string    `json:"doc_type"`
	Number     string    `json:"number,omitempty"`
	Window     string    `json:"window"`      // where it was outstanding when acknowledged
	ReasonCode string    `json:"reason_code"` // the reject it acknowledges
	Reason     string    `json:"reason"`      // why it must not be posted, in the person's words
	By         string    `json:"by"`          // user@host
	At         time.Time `json:"at"`
}

// Acks returns every acknowledgement, by Zuora id.
func (s *Stage) Acks(ctx context.Context) (map[string]Ack, error) {
	objs, err := s.List(ctx, AckPrefix)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Ack, len(objs))
	for _, o := range objs {
		if !strings.HasSuffix(o.Key, ".json") {
			continue
		}
		var a Ack
		if err := s.ReadJSON(ctx, o.Key, &a); err != nil {
			return nil, err
		}
		out[a.ZuoraID] = a
	}
	return out, nil
}

// WriteAck records an acknowledgement.
func (s *Stage) WriteAck(ctx context.Context, a Ack) error {
	return s.WriteJSON(ctx, AckKey(a.ZuoraID), a)
}

// TransformIndexed names the transform of a window that the reject index
// reflects (RejectsIndexedKey).
type TransformIndexed struct {
	RunID       string    `json:"transform_run_id"`
	CommittedAt time.Time `json:"transform_committed_at"`
}

// Of reports whether x names the transform that committed m.
func (x TransformIndexed) Of(m TransformManifest) bool {
	return x.RunID == m.RunID && x.CommittedAt.Equal(m.CommittedAt)
}

// LoadIndexed names the load of a window that the reject index reflects, the
// transform whose documents it loaded, and the ledger parts applied so far
// (LoadIndexedKey).
type LoadIndexed struct {
	RunID     string           `json:"load_run_id"`
	UpdatedAt time.Time        `json:"load_updated_at"`
	Transform TransformIndexed `json:"transform"`
	Parts     []string         `json:"ledger_parts"`
}

// Of reports whether x names the load that wrote m.
func (x LoadIndexed) Of(m LoadManifest) bool {
	return x.RunID == m.RunID && x.UpdatedAt.Equal(m.UpdatedAt)
}

// ReadTransformIndexed returns which transform of w the reject index reflects; zero when none.
func (s *Stage) ReadTransformIndexed(ctx context.Context, w Window) (TransformIndexed, error) {
	return readOptional[TransformIndexed](ctx, s, RejectsIndexedKey(w))
}

// WriteTransformIndexed records which transform of w the reject index reflects.
func (s *Stage) WriteTransformIndexed(ctx context.Context, w Window, x TransformIndexed) error {
	return s.WriteJSON(ctx, RejectsIndexedKey(w), x)
}

// ReadLoadIndexed returns which load of w the reject index reflects; zero when none.
func (s *Stage) ReadLoadIndexed(ctx context.Context, w Window) (LoadIndexed, error) {
	return readOptional[LoadIndexed](ctx, s, LoadIndexedKey(w))
}

// WriteLoadIndexed records which load of w the reject index reflects.
func (s *Stage) WriteLoadIndexed(ctx context.Context, w Window, x LoadIndexed) error {
	return s.WriteJSON(ctx, LoadIndexedKey(w), x)
}

// Mapping is the digest of the mapping whose rejects the last run retried (MappingKey).
type Mapping struct {
	Digest    string    `json:"digest"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ReadMapping returns the mapping the last run retried rejects with; zero when none.
func (s *Stage) ReadMapping(ctx context.Context) (Mapping, error) {
	return readOptional[Mapping](ctx, s, MappingKey)
}

// WriteMapping records the mapping every window with rejects is mapped with now.
func (s *Stage) WriteMapping(ctx context.Context, m Mapping) error {
	return s.WriteJSON(ctx, MappingKey, m)
}

// readOptional reads the JSON object at key, or returns the zero value when there is none.
func readOptional[T any](ctx context.Context, s *Stage, key string) (T, error) {
	var v T
	if err := s.ReadJSON(ctx, key, &v); err != nil && !errors.Is(err, ErrNotFound) {
		return v, err
	}
	return v, nil
}
