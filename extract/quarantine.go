package extract

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/money"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// MalformedError is a record that cannot be staged as Zuora sent it: a missing
// id or updatedDate, a value that is not what its field holds, an amount with
// more places than DECIMAL(38,9). The walk quarantines such a record instead
// of failing its window.
type MalformedError struct {
	Entity string // the raw table of the record, e.g. "payments" or "invoice_items"
	ID     string // empty when the record has none
	Reason string
}

func (e *MalformedError) Error() string {
	if e.ID == "" {
		return fmt.Sprintf("%s record: %s", e.Entity, e.Reason)
	}
	return fmt.Sprintf("%s record %s: %s", e.Entity, e.ID, e.Reason)
}

func malformed(entity, id, format string, args ...any) *MalformedError {
	return &MalformedError{Entity: entity, ID: id, Reason: fmt.Sprintf(format, args...)}
}

// MaxQuarantinedJSON bounds the raw JSON kept of one quarantined record.
const MaxQuarantinedJSON = 256 << 10

// maxQuarantineWarnings bounds the manifest warnings one walk adds for its
// quarantined records; the quarantine table lists every one.
const maxQuarantineWarnings = 20

// quarantine writes the malformed records of one walk (a document type over a
// slice) to their part of the quarantine table.
type quarantine struct {
	table    *table[stage.QuarantineRow]
	docType  stage.DocType
	number   string // JSON name of the document number
	amount   string // JSON name of the header amount
	lo, hi   time.Time
	prior    keySet // quarantined by other committed windows
	seen     keySet
	runID    string
	log      *slog.Logger
	warnings *[]string
	warned   int
}

func newQuarantine(t *table[stage.QuarantineRow], dt stage.DocType, number, amount string, r span, prior keySet, runID string, log *slog.Logger, warnings *[]string) *quarantine {
	return &quarantine{
		table:   t,
		docType: dt, number: number, amount: amount, lo: r.lo, hi: r.hi, prior: prior, seen: keySet{},
		runID: runID, log: log, warnings: warnings,
	}
}

// route quarantines the document raw when err says it is malformed and
// returns nil; any other error is returned as it is. A record dated outside the
// walk's range, or quarantined already, is dropped like any other.
func (q *quarantine) route(raw json.RawMessage, err error) error {
	var bad *MalformedError
	if !errors.As(err, &bad) {
		return err
	}
	row := quarantineRow(q.docType, q.number, q.amount, raw, err)
	row.QuarantinedAt, row.RunID = time.Now().UTC(), q.runID
	var updated time.Time
	if row.UpdatedDate != nil {
		updated = *row.UpdatedDate
		if !updated.Before(q.hi) || updated.Before(q.lo) {
			return nil // another window's or slice's record
		}
	}
	k := quarantineKey(row.DocKey, row.UpdatedDate)
	if q.seen.has(k) || q.prior.has(k) {
		return nil
	}
	q.seen[k] = struct{}{}
	if err := q.table.add(row, updated); err != nil {
		return err
	}
	q.log.Warn("record quarantined", "doc_key", row.DocKey, "reason", row.Reason)
	if q.warned++; q.warned <= maxQuarantineWarnings {
		msg := fmt.Sprintf("%s %s quarantined as MALFORMED: %s", row.Entity, describeRow(row), row.Reason)
		if row.ID == nil {
			msg += "; it has no id, so it cannot be re-checked"
		}
		*q.warnings = append(*q.warnings, msg)
	} else if q.warned == maxQuarantineWarnings+1 {
		*q.warnings = append(*q.warnings, fmt.Sprintf("%s: more records quarantined; the quarantine table lists them all", q.docType.HeaderTable()))
	}
	return nil
}

func (q *quarantine) close() (stage.TableSnapshot, error) { return q.table.close() }

// quarantineRow reads what it can of a malformed document record of type dt,
// whose number and header amount are the JSON fields numberField and amountField.
func quarantineRow(dt stage.DocType, numberField, amountField string, raw json.RawMessage, cause error) stage.QuarantineRow {
	sum := sha256.Sum256(raw)
	entity := dt.HeaderTable()
	row := stage.QuarantineRow{
		Entity: entity, DocType: string(dt), Reason: cause.Error(),
		RawSize: int64(len(raw)), RawSHA256: hex.EncodeToString(sum[:]),
	}
	row.RawJSON, row.RawTruncated = clip(raw, MaxQuarantinedJSON)
	if fields, err := decodeFields(raw); err == nil {
		r := &record{entity: entity, fields: fields}
		row.ID = nonEmpty(r.str("id"))
		row.Number = nonEmpty(r.str(numberField))
		row.Currency = nonEmpty(r.str("currency"))
		if name, v := r.value(amountField); v != nil {
			if text := r.str(name); text != nil {
				row.AmountText = text
				if d, err := decimal.NewFromString(*text); err == nil {
					if f, err := money.ToFixed(d); err == nil {
						row.Amount = &f
					}
				}
			}
		}
		if u := nonEmpty(r.str("updatedDate")); u != nil {
			row.UpdatedDateRaw = u
			if t, err := time.Parse(time.RFC3339, *u); err == nil {
				t = t.UTC()
				row.UpdatedDate = &t
			}
		}
	}
	row.DocKey = stage.NoIDPrefix + row.RawSHA256[:16]
	if row.ID != nil {
		row.DocKey = *row.ID
	}
	return row
}

// quarantineKey identifies one quarantined version of a document.
func quarantineKey(key string, updated *time.Time) docKey {
	if updated == nil {
		return hashKey(key, nil)
	}
	return keyOf(key, *updated)
}

func describeRow(row stage.QuarantineRow) string {
	switch {
	case row.Number != nil && row.ID != nil:
		return *row.Number + " (" + *row.ID + ")"
	case row.Number != nil:
		return *row.Number
	}
	return row.DocKey
}

func nonEmpty(s *string) *string {
	if s == nil || *s == "" {
		return nil
	}
	return s
}

// clip returns raw as text, cut at a character boundary at most max bytes in.
func clip(raw []byte, max int) (string, bool) {
	if len(raw) <= max {
		return string(raw), false
	}
	n := max
	for n > 0 && !utf8.RuneStart(raw[n]) {
		n--
	}
	return string(raw[:n]), true
}

// quarantineSnap names the part of the quarantine table one walk wrote.
type quarantineSnap struct {
	table string
	part  int
	snap  stage.TableSnapshot
}

// commitQuarantine records the quarantine part that slice n of a document table wrote.
func (x *run) commitQuarantine(table string, n int, snap stage.TableSnapshot) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.quar = append(x.quar, quarantineSnap{table: table, part: n, snap: snap})
}

// mergeQuarantine lists every walk's quarantine part, in document table then
// slice order, as the snapshot's quarantine table.
func (x *run) mergeQuarantine() {
	order := map[string]int{}
	for i, t := range stage.HeaderTables() {
		order[t] = i
	}
	slices.SortFunc(x.quar, func(a, b quarantineSnap) int {
		if c := order[a.table] - order[b.table]; c != 0 {
			return c
		}
		return a.part - b.part
	})
	var m stage.TableSnapshot
	for _, q := range x.quar {
		m.Rows += q.snap.Rows
		m.Files = append(m.Files, q.snap.Files...)
		if p := q.snap.MinUpdated; p != nil && (m.MinUpdated == nil || p.Before(*m.MinUpdated)) {
			m.MinUpdated = p
		}
		if p := q.snap.MaxUpdated; p != nil && (m.MaxUpdated == nil || p.After(*m.MaxUpdated)) {
			m.MaxUpdated = p
		}
	}
	x.tables[stage.QuarantineTable] = m
}
