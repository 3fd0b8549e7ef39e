package transform_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/extract"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/money"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/testutil"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuora"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
	"github.com/zuora-erp-etl/zuora-erp-etl/transform"
)

// simRun extracts and transforms hourly windows of a generated tenant (a
// real simulator over HTTP, real Parquet, the real DuckDB) after runtime
// unapplies, and returns per application id the amount it was made ready
// with, and the ids rejected SIGN_UNDETERMINED.
//
// An application's documents are last updated by the latest application
// that changed them, so they may be staged by a later window than the
// application: its window rejects it MISSING_FIELD (no currency yet), and a
// group whose sign depends on it SIGN_UNDETERMINED. The pipeline's re-check
// stages both again at the same version and maps their windows again
// (docs/design.md "AR pipeline", "Rejects"); simRun does the same, mapping
// such windows again in time order until a round settles nothing more.
func simRun(t *testing.T, positive bool) (ready map[string]string, undetermined map[string]bool, sent map[string]string) {
	t.Helper()
	from, to := time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC), time.Date(2026, 11, 25, 23, 0, 0, 0, time.UTC)
	clock := to.Add(10 * time.Minute)
	sim := zuorasim.New(zuorasim.Options{UnapplyPositiveAmounts: positive, Now: func() time.Time { return clock }})
	sim.Load(zuorasim.Generate(7, zuorasim.Volume{Accounts: 10, Invoices: 80, Payments: 40, Refunds: 10, CreditMemos: 20, DebitMemos: 10, MaxItems: 3}, from, to))
	c, err := zuora.New(zuora.Config{BaseURL: testutil.Serve(t, sim), ClientID: zuorasim.DefaultClientID,
		ClientSecret: zuorasim.DefaultClientSecret, RunID: "transform-sim", Retry: testutil.FastRetry(8, 10*time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	st, err := stage.Open(context.Background(), "file://"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.SetStart(context.Background(), stage.Start{Start: from, SetAt: from}); err != nil {
		t.Fatal(err)
	}
	convention := transform.UnapplyNegative
	if positive {
		convention = transform.UnapplyPositive
	}
	var windows []stage.Window
	readyIn, waitingIn, undeterminedIn := map[string]map[string]string{}, map[string]int{}, map[string]map[string]bool{}
	mapWindow := func(w stage.Window, force bool) {
		m, err := transform.Run(context.Background(), st, w, transform.Options{UnapplyAmounts: convention, Force: force, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("transform %s: %v", w.ID(), err)
		}
		data, err := st.Read(context.Background(), m.Documents.Key)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<24)
		for sc.Scan() {
			var e stage.Envelope
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatal(err)
			}
			if e.DocType == string(stage.PaymentApplication) || e.DocType == string(stage.CreditMemoApplication) {
				got[e.ZuoraID] = string(e.Amount)
			}
		}
		rej, err := st.Read(context.Background(), m.Rejects.Key)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := parquet.Read[stage.OutcomeRow](bytes.NewReader(rej), int64(len(rej)))
		if err != nil {
			t.Fatal(err)
		}
		waiting, und := 0, map[string]bool{}
		for _, r := range rows {
			switch {
			case *r.ReasonCode == stage.ReasonSignUndetermined:
				und[*r.ZuoraID] = true
				waiting++
			case *r.ReasonCode == stage.ReasonMissingField && stage.DocType(*r.DocType).IsApplication():
				waiting++
			}
		}
		readyIn[w.ID()], waitingIn[w.ID()], undeterminedIn[w.ID()] = got, waiting, und
	}
	for w := (stage.Window{Start: from, End: from.Add(time.Hour)}); !w.Start.After(to); w = (stage.Window{Start: w.End, End: w.End.Add(time.Hour)}) {
		if w.Start.Equal(to) {
			unapplySome(t, sim)
		}
		if _, err := extract.Run(context.Background(), c, st, w, extract.Options{Now: func() time.Time { return clock }}); err != nil {
			t.Fatalf("extract %s: %v", w.ID(), err)
		}
		mapWindow(w, false)
		windows = append(windows, w)
	}
	for round := 0; ; round++ {
		before := 0
		for _, n := range waitingIn {
			before += n
		}
		for _, w := range windows {
			if waitingIn[w.ID()] > 0 {
				mapWindow(w, true)
			}
		}
		after := 0
		for _, n := range waitingIn {
			after += n
		}
		if after == 0 || after == before || round == len(windows) {
			break
		}
	}
	ready, undetermined, sent = map[string]string{}, map[string]bool{}, map[string]string{}
	for _, w := range windows {
		maps.Copy(ready, readyIn[w.ID()])
		maps.Copy(undetermined, undeterminedIn[w.ID()])
	}
	for _, a := range sim.Snapshot("payment-applications") {
		sent[a["id"].(string)] = fmt.Sprint(a["applyAmount"])
	}
	for _, a := range sim.Snapshot("credit-memo-applications") {
		sent[a["id"].(string)] = fmt.Sprint(a["amount"])
	}
	return ready, undetermined, sent
}

// unapplySome unapplies part of a few applied payments, at the simulator's
// clock, which the window after the generated ones holds.
func unapplySome(t *testing.T, sim *zuorasim.Sim) {
	t.Helper()
	n := 0
	for _, a := range sim.Snapshot("payment-applications") {
		p, _ := a["paymentId"].(string)
		inv, _ := a["invoiceId"].(string)
		if n == 4 || inv == "" || a["paymentApplicationStatus"] != "Processed" {
			continue
		}
		if _, err := sim.UnapplyPayment(p, zuorasim.Target{ID: inv, Amount: "0.01"}); err == nil {
			n++
		}
	}
	if n < 4 {
		t.Fatalf("%d payment applications could be unapplied, want 4", n)
	}
}

// TestSimUnapplyConventionsGiveTheSameSigns: the same tenant written with
// negative unapply amounts and with positive ones (zuorasim's
// UnapplyPositiveAmounts) is made ready with the same signed amount for
// every application: as sent under the one, decided per group under the
// other, and never with a wrong sign.
func TestSimUnapplyConventionsGiveTheSameSigns(t *testing.T) {
	negative, undeterminedNeg, sentNeg := simRun(t, false)
	positive, undetermined, sentPos := simRun(t, true)
	if len(undeterminedNeg) != 0 {
		t.Errorf("the negative convention left signs undetermined: %v", undeterminedNeg)
	}
	unapplies := 0
	for id, amount := range negative {
		if mustDec(t, amount).IsNegative() {
			unapplies++
			if mustDec(t, sentPos[id]).IsNegative() || !mustDec(t, sentNeg[id]).IsNegative() {
				t.Fatalf("the simulator sent %s as %s (negative) and %s (positive)", id, sentNeg[id], sentPos[id])
			}
		}
		switch got, ok := positive[id]; {
		case ok && !mustDec(t, got).Equal(mustDec(t, amount)):
			t.Errorf("application %s: %s under the positive convention, %s under the negative", id, got, amount)
		case !ok && !undetermined[id]:
			t.Errorf("application %s ready under the negative convention only", id)
		}
	}
	if unapplies < 4 {
		t.Fatalf("%d unapplies made ready: the tenant proves nothing", unapplies)
	}
	if len(undetermined) > 0 {
		t.Errorf("%d of %d applications left undetermined under the positive convention: %v", len(undetermined), len(negative), undetermined)
	}
	for id := range positive {
		if _, ok := negative[id]; !ok {
			t.Errorf("application %s ready under the positive convention only", id)
		}
	}
}

func mustDec(t *testing.T, s string) decimal.Decimal {
	t.Helper()
	d, err := money.Parse(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return d
}
