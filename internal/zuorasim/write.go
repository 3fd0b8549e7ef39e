package zuorasim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxWriteObjects is the most objects one write-back call accepts.
const MaxWriteObjects = 50

var actionTables = map[string]string{"invoice": objInvoices, "payment": objPayments, "refund": objRefunds}

type actionError struct {
	Code    string `json:"Code"`
	Message string `json:"Message"`
}

type actionResult struct {
	ID      string        `json:"Id"`
	Success bool          `json:"Success"`
	Errors  []actionError `json:"Errors,omitempty"`
}

func readBody(w http.ResponseWriter, r *http.Request, v any) error {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 10<<20))
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(v)
}

// handleAction serves POST /v1/action/update: HTTP 200 with one result per
// object in request order, each applied or refused on its own.
func (s *Sim) handleAction(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeJSON(w, r, http.StatusMethodNotAllowed, map[string]any{"message": "use POST"})
		return
	}
	if !s.authorized(w, r, false) {
		return
	}
	var req struct {
		Type    string           `json:"type"`
		Objects []map[string]any `json:"objects"`
	}
	if err := readBody(w, r, &req); err != nil {
		writeJSON(w, r, http.StatusBadRequest, map[string]any{"message": "Error - malformed JSON: " + err.Error()})
		return
	}
	if strings.EqualFold(r.URL.Query().Get("rejectUnknownFields"), "true") {
		for _, o := range req.Objects {
			for k := range o {
				if !strings.EqualFold(k, "Id") && !strings.EqualFold(k, "TransferredToAccounting") {
					writeJSON(w, r, http.StatusBadRequest, map[string]any{"message": "Error - unrecognised fields"})
					return
				}
			}
		}
	}
	results := make([]actionResult, len(req.Objects))
	fail := func(code, msg string) {
		for i, o := range req.Objects {
			id, _ := lookupCI(o, "Id").(string)
			results[i] = actionResult{ID: id, Errors: []actionError{{code, msg}}}
		}
	}
	object, supported := actionTables[strings.ToLower(req.Type)]
	switch {
	case len(req.Objects) > MaxWriteObjects:
		fail("MAX_RECORDS_EXCEEDED", fmt.Sprintf("at most %d objects per call, got %d", MaxWriteObjects, len(req.Objects)))
	case strings.EqualFold(req.Type, "CreditMemo") || strings.EqualFold(req.Type, "DebitMemo"):
		fail("INVALID_TYPE", "the update action does not support Invoice Settlement objects ("+req.Type+"); use PUT /v1/credit-memos/bulk or /v1/debit-memos/bulk")
	case !supported:
		fail("INVALID_TYPE", fmt.Sprintf("invalid type %q", req.Type))
	default:
		now := s.now()
		s.mu.Lock()
		s.version++ // any write may change what a cached sort holds
		tb := s.data.tables[object]
		for i, o := range req.Objects {
			results[i] = s.markAction(tb, o, now)
		}
		s.mu.Unlock()
	}
	writeJSON(w, r, http.StatusOK, results)
}

func lookupCI(o map[string]any, name string) any {
	for k, v := range o {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

var actionValues = map[string]bool{"Processing": true, "Yes": true, "Error": true, "Ignore": true}

// markAction applies one object of an update action; the caller holds s.mu.
func (s *Sim) markAction(tb *table, o map[string]any, now time.Time) actionResult {
	id, _ := lookupCI(o, "Id").(string)
	res := actionResult{ID: id}
	failed := func(code, msg string) actionResult {
		res.Errors = []actionError{{code, msg}}
		return res
	}
	if id == "" {
		return failed("MISSING_REQUIRED_VALUE", "Id is required")
	}
	rec := tb.byID[id]
	if rec == nil {
		return failed("INVALID_ID", "invalid id "+id)
	}
	if code := s.writeFault(); code != "" {
		return failed(code, "the record is busy; retry")
	}
	if s.opts.ActionRefusesCreditMemoRefunds && tb.sch.object == objRefunds {
		if src, _ := rec.get(tb.sch.pos("sourceType")); src == "CreditMemo" {
			return failed("INVALID_TYPE", "Actions do not support refunds of credit memos (Invoice Settlement); use PUT /v1/refunds/"+id)
		}
	}
	raw := lookupCI(o, "TransferredToAccounting")
	if raw == nil {
		res.Success = true // no updatable field: Zuora ignores unknown fields silently
		return res
	}
	val, _ := raw.(string)
	if !actionValues[val] && !(s.opts.ActionAcceptsNo && val == "No") {
		return failed("INVALID_VALUE", fmt.Sprintf("invalid value %v for TransferredToAccounting", raw))
	}
	if tb.sch.object == objInvoices {
		if st, _ := rec.get(tb.sch.pos("status")); st != "Posted" {
			return failed("INVALID_VALUE", fmt.Sprintf("invoice %s is %s; only Posted invoices can be updated", id, st))
		}
	}
	s.applyMark(tb, rec, val, now)
	res.Success = true
	return res
}

// writeFault counts one written object and returns the retryable code to fail it with, if any.
func (s *Sim) writeFault() string {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.objN++
	switch {
	case every(s.faults.LockCompetitionEvery, s.objN):
		s.stats.Faults["LOCK_COMPETITION"]++
		return "LOCK_COMPETITION"
	case every(s.faults.TemporaryErrorEvery, s.objN):
		s.stats.Faults["TEMPORARY_ERROR"]++
		return "TEMPORARY_ERROR"
	case s.faults.ActionCode != "" && every(s.faults.ActionCodeEvery, s.objN):
		s.stats.Faults[s.faults.ActionCode]++
		return s.faults.ActionCode
	}
	return ""
}

// codeCategory is the reasons category a v1 endpoint reports for an Action code.
func codeCategory(code string) int {
	switch code {
	case "LOCK_COMPETITION":
		return 50
	case "REQUEST_EXCEEDED_RATE":
		return 70
	case "SERVER_UNAVAILABLE", "TRANSACTION_TIMEOUT", "TEMPORARY_ERROR":
		return 61
	}
	return 99
}

// conflict counts one versioned v1 write call and answers it 409 with a
// category-50 reason when Conflict409Every says so.
func (s *Sim) conflict(w http.ResponseWriter, r *http.Request) bool {
	s.fmu.Lock()
	s.writeN++
	hit := every(s.faults.Conflict409Every, s.writeN)
	if hit {
		s.stats.Faults["409"]++
	}
	s.fmu.Unlock()
	if hit {
		s.reasons(w, r, http.StatusConflict, 50, "Operation failed due to a lock competition, please retry later.")
	}
	return hit
}

// applyMark sets TransferredToAccounting; the caller holds s.mu.
func (s *Sim) applyMark(tb *table, rec *record, val string, now time.Time) {
	rec.set(tb.sch.pos("transferredToAccounting"), val)
	if !s.opts.NoUpdatedBumpOnMark {
		rec.set(fUpdatedDate, unixText(now))
		rec.set(fUpdatedByID, simUser)
	}
	s.fmu.Lock()
	s.stats.MarksApplied++
	s.fmu.Unlock()
}

// simUser is the updatedById the write-back endpoints record.
const simUser = "2c92c0f85a5a5a5a5a5a5a5a5a5a0001"

var memoValues = map[string]bool{"Processing": true, "Yes": true, "Error": true, "Ignore": true, "No": true}

// handleMemoBulk serves PUT /v1/{credit,debit}-memos/bulk. Each memo succeeds or
// fails on its own; the top-level success only says the request was processed.
func (s *Sim) handleMemoBulk(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut {
		s.reasons(w, r, http.StatusMethodNotAllowed, 45, "use PUT")
		return
	}
	if !s.authorized(w, r, false) {
		return
	}
	if s.conflict(w, r) {
		return
	}
	object, reason := objCreditMemos, memoReason(510000)
	if strings.HasPrefix(r.URL.Path, "/v1/debit-memos") {
		object, reason = objDebitMemos, memoReason(520000)
	}
	var req struct {
		Memos []map[string]any `json:"memos"`
	}
	if err := readBody(w, r, &req); err != nil {
		writeJSON(w, r, http.StatusBadRequest, map[string]any{"success": false, "reasons": reason.of(90, "malformed JSON: "+err.Error()),
			"requestId": w.Header().Get("Zuora-Request-Id")})
		return
	}
	if len(req.Memos) == 0 || len(req.Memos) > MaxWriteObjects {
		writeJSON(w, r, http.StatusBadRequest, map[string]any{"success": false,
			"reasons":   reason.of(20, fmt.Sprintf("memos must hold 1 to %d entries, got %d", MaxWriteObjects, len(req.Memos))),
			"requestId": w.Header().Get("Zuora-Request-Id")})
		return
	}
	now := s.now()
	out := make([]map[string]any, len(req.Memos))
	s.mu.Lock()
	s.version++ // any write may change what a cached sort holds
	tb := s.data.tables[object]
	for i, m := range req.Memos {
		out[i] = s.bulkMemoLocked(tb, m, reason, now)
	}
	s.mu.Unlock()
	writeJSON(w, r, http.StatusOK, map[string]any{"success": true, "memos": out,
		"processId": randomHex(8), "requestId": w.Header().Get("Zuora-Request-Id")})
}

// memoReason is the resource code of a memo endpoint's reasons (510000 for
// credit memos, 520000 for debit memos).
type memoReason int

// of is the reasons list of one failure of category.
func (resource memoReason) of(category int, msg string) []map[string]any {
	return []map[string]any{{"code": int(resource)*100 + category, "message": msg}}
}

// bulkMemoLocked applies one entry m of a bulk memo update and returns its
// result: the memo's fields on success, the reasons otherwise.
func (s *Sim) bulkMemoLocked(tb *table, m map[string]any, reason memoReason, now time.Time) map[string]any {
	id, _ := m["id"].(string)
	res := map[string]any{"id": id, "success": false}
	rec := tb.lookup(id)
	if id == "" || rec == nil {
		res["reasons"] = reason.of(40, fmt.Sprintf("memo %q not found", id))
		return res
	}
	if code := s.writeFault(); code != "" {
		res["reasons"] = reason.of(codeCategory(code), code+": the memo is busy; retry")
		return res
	}
	val, isString := m["transferredToAccounting"].(string)
	if _, present := m["transferredToAccounting"]; present && (!isString || !memoValues[val]) {
		res["reasons"] = reason.of(20, fmt.Sprintf("invalid value %v for transferredToAccounting", m["transferredToAccounting"]))
		return res
	}
	if present := isString; present {
		s.applyMark(tb, rec, val, now)
	}
	res["success"] = true
	res["id"] = rec.id()
	for _, name := range []string{"memoNumber", "status", "currency", "totalAmount", "transferredToAccounting", "accountId"} {
		p := tb.sch.pos(name)
		if v, ok := rec.get(p); ok {
			res[name] = jsonValue(tb.sch.fields[p], v)
		}
	}
	// v1 PUT responses print times without T or offset (§6.10).
	u, _ := strconv.ParseInt(rec.vals[fUpdatedDate], 10, 64)
	res["updatedDate"] = time.Unix(u, 0).In(s.loc).Format(time.DateTime)
	return res
}

// jsonValue is the text v of field f as a v1 response prints it: a number
// bare, anything else quoted.
func jsonValue(f field, v string) any {
	if f.kind == kNumber {
		return json.Number(v)
	}
	return v
}

// handleFinancePut serves PUT /v1/payments/{key} and PUT /v1/refunds/{key} with
// {"financeInformation":{"transferredToAccounting":…}}: the v1 alternative to
// the update action, answered {"success":b, …} or a reasons body.
func (s *Sim) handleFinancePut(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut {
		s.reasons(w, r, http.StatusMethodNotAllowed, 45, "use PUT")
		return
	}
	if !s.authorized(w, r, false) {
		return
	}
	if s.conflict(w, r) {
		return
	}
	object, key := objPayments, strings.TrimPrefix(r.URL.Path, "/v1/payments/")
	if rest, ok := strings.CutPrefix(r.URL.Path, "/v1/refunds/"); ok {
		object, key = objRefunds, rest
	}
	var req struct {
		FinanceInformation map[string]any `json:"financeInformation"`
	}
	if err := readBody(w, r, &req); err != nil {
		s.reasons(w, r, http.StatusBadRequest, 20, "malformed JSON: "+err.Error())
		return
	}
	raw, present := req.FinanceInformation["transferredToAccounting"]
	val, isString := raw.(string)
	if present && (!isString || !memoValues[val]) {
		s.reasons(w, r, http.StatusBadRequest, 20, fmt.Sprintf("invalid value %v for transferredToAccounting", raw))
		return
	}
	now := s.now()
	s.mu.Lock()
	tb := s.data.tables[object]
	rec := tb.lookup(key)
	if rec != nil && present {
		s.version++ // any write may change what a cached sort holds
		s.applyMark(tb, rec, val, now)
	}
	var id, transferred string
	if rec != nil {
		id = rec.id()
		transferred, _ = rec.get(tb.sch.pos("transferredToAccounting"))
	}
	s.mu.Unlock()
	if rec == nil {
		s.reasons(w, r, http.StatusNotFound, 40, fmt.Sprintf("%s %s not found", strings.TrimSuffix(object, "s"), key))
		return
	}
	writeJSON(w, r, http.StatusOK, map[string]any{"success": true, "id": id,
		"financeInformation": map[string]any{"transferredToAccounting": transferred}})
}
