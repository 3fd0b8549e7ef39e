package zuorasim

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// AdminPrefix serves the runtime AR operations over HTTP, so a simulator run
// by hand (`sim`) can be driven like the Go API: POST /_sim/ar/<operation>
// with a JSON body, GET /_sim/ar/check for CheckAR's violations and GET
// /_sim/stats for the Stats. It takes an Object Query bearer token, bypasses
// the fault knobs and is not counted in Stats.
const AdminPrefix = "/_sim/"

// adminRequest is the body of every operation; each uses the fields it needs.
type adminRequest struct {
	ID      string        `json:"id"`
	Account string        `json:"account"`
	Amount  json.Number   `json:"amount"`
	Value   string        `json:"value"`
	Targets []adminTarget `json:"targets"`
}

type adminTarget struct {
	ID     string      `json:"id"`
	Amount json.Number `json:"amount"`
}

func (r adminRequest) targets() []Target {
	out := make([]Target, len(r.Targets))
	for i, t := range r.Targets {
		out[i] = Target{ID: t.ID, Amount: t.Amount.String()}
	}
	return out
}

// adminOps maps each operation's path segment to its Go method.
var adminOps = map[string]func(s *Sim, r adminRequest) (any, error){
	"create-payment": func(s *Sim, r adminRequest) (any, error) {
		id, a, err := s.CreatePayment(r.Account, r.Amount.String(), r.targets()...)
		return map[string]any{"id": id, "group": a.Group, "ids": a.IDs}, err
	},
	"apply-payment":       appliedOp((*Sim).ApplyPayment),
	"unapply-payment":     appliedOp((*Sim).UnapplyPayment),
	"apply-credit-memo":   appliedOp((*Sim).ApplyCreditMemo),
	"unapply-credit-memo": appliedOp((*Sim).UnapplyCreditMemo),
	"refund-payment":      refundOp((*Sim).RefundPayment),
	"refund-credit-memo":  refundOp((*Sim).RefundCreditMemo),
	"cancel-payment":      plainOp((*Sim).CancelPayment),
	"cancel-refund":       plainOp((*Sim).CancelRefund),
	"unpost-memo":         plainOp((*Sim).UnpostMemo),
	"post-memo":           plainOp((*Sim).PostMemo),
	"unpost-invoice":      plainOp((*Sim).UnpostInvoice),
	"post-invoice":        plainOp((*Sim).PostInvoice),
	"reverse-invoice": func(s *Sim, r adminRequest) (any, error) {
		rv, err := s.ReverseInvoice(r.ID)
		return map[string]any{"memo": rv.MemoID, "group": rv.Applied.Group, "ids": rv.Applied.IDs}, err
	},
	"set-transferred": func(s *Sim, r adminRequest) (any, error) {
		return map[string]any{"id": r.ID}, s.SetTransferred(r.ID, r.Value)
	},
}

func appliedOp(fn func(*Sim, string, ...Target) (Applied, error)) func(*Sim, adminRequest) (any, error) {
	return func(s *Sim, r adminRequest) (any, error) {
		a, err := fn(s, r.ID, r.targets()...)
		return map[string]any{"group": a.Group, "ids": a.IDs}, err
	}
}

func refundOp(fn func(*Sim, string, string) (Refunded, error)) func(*Sim, adminRequest) (any, error) {
	return func(s *Sim, r adminRequest) (any, error) {
		rf, err := fn(s, r.ID, r.Amount.String())
		return map[string]any{"refund": rf.RefundID, "application": rf.ApplicationID}, err
	}
}

func plainOp(fn func(*Sim, string) error) func(*Sim, adminRequest) (any, error) {
	return func(s *Sim, r adminRequest) (any, error) { return map[string]any{"id": r.ID}, fn(s, r.ID) }
}

func (s *Sim) handleAdmin(w http.ResponseWriter, r *http.Request) {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.fmu.Lock()
	exp, known := s.tokens[tok]
	good := known && s.now().Before(exp)
	s.fmu.Unlock()
	if !good {
		s.reasons(w, r, http.StatusUnauthorized, 11, "Authentication error")
		return
	}
	if r.URL.Path == AdminPrefix+"stats" && r.Method == http.MethodGet {
		writeJSON(w, r, http.StatusOK, s.Stats())
		return
	}
	op, ok := strings.CutPrefix(r.URL.Path, AdminPrefix+"ar/")
	switch {
	case ok && op == "check" && r.Method == http.MethodGet:
		v := s.CheckAR()
		if v == nil {
			v = []Violation{}
		}
		writeJSON(w, r, http.StatusOK, v)
		return
	case !ok || adminOps[op] == nil:
		s.reasons(w, r, http.StatusNotFound, 40, "no such operation: "+r.Method+" "+r.URL.Path)
		return
	case r.Method != http.MethodPost:
		s.reasons(w, r, http.StatusMethodNotAllowed, 45, "use POST")
		return
	}
	var req adminRequest
	if err := readBody(w, r, &req); err != nil {
		s.reasons(w, r, http.StatusBadRequest, 20, "malformed JSON: "+err.Error())
		return
	}
	out, err := adminOps[op](s, req)
	var oe *OpError
	switch {
	case errors.As(err, &oe):
		s.reasons(w, r, http.StatusUnprocessableEntity, 20, oe.Error())
	case err != nil:
		s.reasons(w, r, http.StatusInternalServerError, 60, err.Error())
	default:
		writeJSON(w, r, http.StatusOK, out)
	}
}
