package load

import (
	"fmt"
	"testing"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/erpsim"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// TestVerdictsSayWhatTheLedgerDecided: a refused document has a verdict with
// the ERP's status and message while its payload is the refused one; the
// others are confirmed; parts already applied give nothing new, and the part
// that posts the fixed payload turns the refusal into a confirmation.
func TestVerdictsSayWhatTheLedgerDecided(t *testing.T) {
	specs := makeSpecs(10)
	bad := specs[3]
	e := newEnv(t, specs)
	e.sim.SetFaults(erpsim.Faults{RejectKeys: map[string]string{bad.id: "customer ERP-X is closed"}})
	if _, err := e.run(e.ctx, e.opts()); err != nil {
		t.Fatal(err)
	}
	vs, parts, err := Verdicts(e.ctx, e.st, testWindow, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) == 0 {
		t.Fatal("no ledger part listed")
	}
	confirmed := 0
	for _, v := range vs {
		switch {
		case v.ZuoraID == bad.id:
			if v.Confirmed || v.Refusal == nil || v.Refusal.HTTPStatus != 422 || v.Refusal.Message != "customer ERP-X is closed" ||
				v.Refusal.First.IsZero() || v.Refusal.Last.Before(v.Refusal.First) || v.DocType != bad.docType {
				t.Errorf("verdict of the refused document: %+v %+v", v, v.Refusal)
			}
		case v.Confirmed && v.Refusal == nil:
			confirmed++
		default:
			t.Errorf("verdict %+v; want a confirmation", v)
		}
	}
	if confirmed != len(specs)-1 || len(vs) != len(specs) {
		t.Errorf("%d verdicts, %d confirmed; want %d, %d", len(vs), confirmed, len(specs), len(specs)-1)
	}
	applied := map[string]bool{}
	for _, k := range parts {
		applied[k] = true
	}
	if vs, _, err := Verdicts(e.ctx, e.st, testWindow, applied, false); err != nil || len(vs) != 0 {
		t.Errorf("verdicts of no new part: %+v (%v); want none", vs, err)
	}

	// The transform fixes the payload: the refusal no longer stands, even before it is posted.
	specs[3].customer = "ERP-FIXED"
	e.writeFixture(specs)
	if vs, _, err := Verdicts(e.ctx, e.st, testWindow, nil, true); err != nil || len(vs) != len(specs)-1 {
		t.Errorf("with a new payload %d verdicts (%v); want only the %d confirmations", len(vs), err, len(specs)-1)
	}
	e.sim.SetFaults(erpsim.Faults{})
	if _, err := e.run(e.ctx, e.opts()); err != nil {
		t.Fatal(err)
	}
	vs, _, err = Verdicts(e.ctx, e.st, testWindow, applied, false)
	if err != nil || len(vs) != 1 || vs[0].ZuoraID != bad.id || !vs[0].Confirmed {
		t.Errorf("verdicts of the parts that posted the fixed payload: %+v (%v); want the fixed document confirmed", vs, err)
	}
}

// TestVerdictsTakeTheRunsReadOfTheDocuments: after a run, its Read gives
// the same verdicts as reading the documents again, without reading them
// (the documents object is unreadable by then); once the window holds other
// documents, the Read is of no use and they are read.
func TestVerdictsTakeTheRunsReadOfTheDocuments(t *testing.T) {
	specs := makeSpecs(10)
	bad := specs[3]
	e := newEnv(t, specs)
	e.sim.SetFaults(erpsim.Faults{RejectKeys: map[string]string{bad.id: "customer ERP-X is closed"}})
	var read Read
	opts := e.opts()
	opts.Read = &read
	if _, err := e.run(e.ctx, opts); err != nil {
		t.Fatal(err)
	}
	if len(read.lines) != 1 || read.lines[0].ZuoraID != bad.id {
		t.Fatalf("the run's read keeps %d lines; want the refused %s alone", len(read.lines), bad.id)
	}
	want, _, err := Verdicts(e.ctx, e.st, testWindow, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	each := func(r *Read) ([]Verdict, error) {
		var vs []Verdict
		_, err := EachVerdict(e.ctx, e.st, testWindow, nil, true, r, func(v Verdict) error {
			vs = append(vs, v)
			return nil
		})
		return vs, err
	}
	// The documents object changes behind the manifest: reading it fails its checksum.
	key := stage.ReadyKey("documents", testWindow, "ndjson")
	if _, err := e.st.WriteBytes(e.ctx, key, []byte("not the documents\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := each(nil); err == nil {
		t.Fatal("verdicts read a documents object that fails its checksum")
	}
	got, err := each(&read)
	if err != nil {
		t.Fatalf("verdicts with the run's read: %v", err)
	}
	if !sameVerdicts(got, want) {
		t.Errorf("verdicts with the run's read:\n%+v\nwant\n%+v", got, want)
	}

	// The window is transformed again with the payload fixed: the read is of
	// other documents, which are read; the refusal no longer stands.
	specs[3].customer = "ERP-FIXED"
	e.writeFixture(specs)
	got, err = each(&read)
	if err != nil || len(got) != len(specs)-1 {
		t.Errorf("with a new payload %d verdicts (%v); want only the %d confirmations", len(got), err, len(specs)-1)
	}
}

// sameVerdicts reports whether a and b hold the same verdicts, in any order.
func sameVerdicts(a, b []Verdict) bool {
	key := func(v Verdict) string {
		s := fmt.Sprintf("%s %s %v", v.DocType, v.ZuoraID, v.Confirmed)
		if v.Refusal != nil {
			s += fmt.Sprintf(" %+v", *v.Refusal)
		}
		if v.Held != nil {
			s += fmt.Sprintf(" %+v", *v.Held)
		}
		return s
	}
	count := map[string]int{}
	for _, v := range a {
		count[key(v)]++
	}
	for _, v := range b {
		count[key(v)]--
	}
	for _, n := range count {
		if n != 0 {
			return false
		}
	}
	return len(a) == len(b)
}
