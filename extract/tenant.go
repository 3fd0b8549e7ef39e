package extract

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuora"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// DefaultERPAccountField is the account's custom field that holds the ERP customer.
const DefaultERPAccountField = "ERPAccountId__c"

// maxPasses bounds how often a range paged by offset is walked again.
const maxPasses = 8

// clockSkew is how far Zuora's clock may trail ours: a row updated at or after
// the walk's start minus this is a change made while we walked.
const clockSkew = time.Minute

// RangeError is a window whose walk got rows outside the range it asked for:
// the tenant reads the time filter otherwise than we mean it (a time zone, an
// ignored offset). Nothing of the window is committed.
type RangeError struct {
	Table   string
	From    time.Time
	To      time.Time
	Outside int    // rows returned outside [From, To) that no concurrent change explains
	Example string // one of them, "id updatedDate"
	Probe   bool   // found by asking for the newest row before From
}

func (e *RangeError) Error() string {
	what := fmt.Sprintf("%d rows outside the requested range, e.g. %s", e.Outside, e.Example)
	if e.Probe {
		what = "the newest row before the range is " + e.Example + ", inside or after it"
	}
	return fmt.Sprintf("%s: Zuora and this tool disagree about the window [%s, %s): %s; "+
		"the tenant seems to read the filter's time in another zone or to ignore its offset, so no row of this window can be trusted "+
		"and nothing was committed; check the tenant's time zone and API version with Zuora before running again",
		e.Table, zuoraTime(e.From), zuoraTime(e.To), what)
}

// UnavailableError is an object the tenant does not have, such as the memo
// and application objects on a tenant without Invoice Settlement. The window
// is refused rather than staged without it: applications left out silently
// would leave every payment unapplied in the ERP. Nothing was committed.
type UnavailableError struct {
	DocType       stage.DocType
	Table, Object string
	Err           error
}

func (e *UnavailableError) Error() string {
	what := "the document type"
	if e.DocType.IsApplication() {
		what = "the application kind " + string(e.DocType) + " (and any other the tenant lacks)"
	} else if e.DocType != "" {
		what = "the document type " + string(e.DocType)
	}
	return fmt.Sprintf("%s: the tenant does not offer the %s object (%v); leave %s out of the types moved", e.Table, e.Object, e.Err, what)
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// FieldAbsentError is an ERP account field the tenant does not have: Zuora
// refused the name, or its accounts do not carry the key even with
// includeNullFields. Its name is wrong or the tenant lacks the field, and every
// document would be rejected as NO_ERP_ACCOUNT. Nothing was committed.
type FieldAbsentError struct {
	Field    string
	Accounts int   // accounts the probe read without finding the key
	Err      error // Zuora's refusal of the name, if it refused it
}

func (e *FieldAbsentError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("Zuora refused the account field %s: %v; nothing was committed", e.Field, e.Err)
	}
	return fmt.Sprintf("the tenant's accounts have no custom field %s (%d accounts read with their null fields, the name looked up case-insensitively): "+
		"its name is wrong or the tenant does not have it, and every document would be rejected as NO_ERP_ACCOUNT; nothing was committed",
		e.Field, e.Accounts)
}

func (e *FieldAbsentError) Unwrap() error { return e.Err }

// probeAccountField reads one page of the tenant's accounts with their null
// fields and checks that the ERP account field is one of them. An account
// whose field is empty still carries the key (as null), so only a name the
// tenant does not have fails: a first window whose accounts are simply not
// mapped yet is staged, and its documents are rejected one by one.
func probeAccountField(ctx context.Context, src Source, field string) error {
	q := zuora.Query{Object: "accounts", Fields: []string{"id", field}, Sort: "id.ASC",
		PageSize: pageSize, IncludeNullFields: true}
	read := 0
	for raw, err := range src.Records(ctx, q) {
		if err != nil {
			if refusedField(err, field) {
				return &FieldAbsentError{Field: field, Err: err}
			}
			return fmt.Errorf("query accounts (does the tenant have the field %s?): %w", field, err)
		}
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(raw, &keys); err != nil {
			return fmt.Errorf("query accounts: %w", err)
		}
		for k := range keys {
			if strings.EqualFold(k, field) {
				return nil
			}
		}
		if read++; read == pageSize {
			break
		}
	}
	if read == 0 {
		return nil // no account yet: nothing can be rejected for the field either
	}
	return &FieldAbsentError{Field: field, Accounts: read}
}

// refusedField reports whether a query failed because Zuora does not know field:
// a 400 whose reasons or message name it.
func refusedField(err error, field string) bool {
	var e *zuora.Error
	return errors.As(err, &e) && e.Status == http.StatusBadRequest && e.Mentions(field)
}

// unavailable reports whether a query failed because the object is not there
// for this tenant: 403 (permission or feature, category 10) or 404 (category 40).
func unavailable(err error) bool {
	var e *zuora.Error
	if !errors.As(err, &e) {
		return false
	}
	if e.Status == http.StatusForbidden || e.Status == http.StatusNotFound {
		return true
	}
	for _, r := range e.Reasons {
		if c := r.Category(); c == "10" || c == "40" {
			return true
		}
	}
	return false
}

// outside classifies a row whose updatedDate is not in r: false when a change
// made during the walk explains it (it moved past the end, to about now).
func outside(updated time.Time, r span, walkStart time.Time) bool {
	if !updated.Before(r.hi) && !updated.Before(walkStart.Add(-clockSkew)) {
		return false
	}
	return true
}

// probe asks for the newest row updated before r.lo. A tenant that reads the
// filter as we mean it answers with a row before r.lo (or none); one that reads
// it later (a zone west of UTC, the Z ignored) answers with a row at or after
// it, even when the window itself came back empty.
func probe[H, I any](ctx context.Context, x *run, sp docSpec[H, I], r span) error {
	q := zuora.Query{Object: sp.object(), Filters: []string{"updateddate.LT:" + zuoraTime(r.lo)},
		Sort: "updateddate.DESC", Fields: []string{"id", "updateddate"}, PageSize: 1}
	for raw, err := range x.src.Records(ctx, q) {
		if err != nil {
			return fmt.Errorf("query %s (the newest row before the window): %w", sp.object(), err)
		}
		rec, err := decodeRecord(sp.table(), raw)
		if err != nil {
			return err
		}
		if !rec.updated.Before(r.lo) {
			return &RangeError{Table: sp.table(), From: r.lo, To: r.hi, Outside: 1, Example: rec.id + " " + rec.rawUpd, Probe: true}
		}
		break
	}
	return nil
}

// firstWindow reports whether the stage holds no committed window with a
// staged document yet: the run that decides whether the ERP account field is
// right. Windows are read oldest first and the look stops at the first
// document, so it costs one manifest read once the stage has history.
func firstWindow(ctx context.Context, st *stage.Stage, w stage.Window) (bool, error) {
	windows, err := st.Windows(ctx)
	if err != nil {
		return false, fmt.Errorf("list committed windows: %w", err)
	}
	for _, other := range windows {
		if other.ID() == w.ID() {
			continue
		}
		m, found, err := st.ReadExtract(ctx, other)
		if err != nil {
			return false, err
		}
		for _, t := range stage.HeaderTables() {
			if found && m.Tables[t].Rows > 0 {
				return false, nil
			}
		}
	}
	return true, nil
}

// accountFields are the expanded account's fields: its id and number and the
// custom field holding the ERP customer.
func accountFields(erpField string) []string { return []string{"id", "accountNumber", erpField} }

// moves reports whether the run moves the document type dt.
func (o Options) moves(dt stage.DocType) bool { return slices.Contains(o.DocTypes, dt) }
