package zuora_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/retry"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuora"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
)

// Each test here runs against the simulator with a real tenant's behaviour
// switched on and off: the client must be right under both.

// markAll marks every record of object and fails unless each one is OK and Yes in the simulator.
func markAll(t *testing.T, c *zuora.Client, sim *zuorasim.Sim, typ, object string, keep func(map[string]any) bool) []zuora.MarkResult {
	t.Helper()
	var ids []string
	for _, r := range sim.Snapshot(object) {
		if keep == nil || keep(r) {
			ids = append(ids, r["id"].(string))
		}
	}
	res, err := c.MarkTransferred(context.Background(), typ, ids)
	if err != nil {
		t.Fatalf("mark %d %s: %v", len(ids), typ, err)
	}
	for _, r := range res {
		if !r.OK || sim.Transferred(r.ID) != "Yes" {
			t.Fatalf("mark %s %s: %+v, simulator says %q", typ, r.ID, r, sim.Transferred(r.ID))
		}
	}
	return res
}

func onOff(t *testing.T, f func(t *testing.T, on bool)) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		t.Run(name, func(t *testing.T) { f(t, on) })
	}
}

func TestMarkRetriesA409OfLockingContention(t *testing.T) {
	onOff(t, func(t *testing.T, on bool) {
		var f zuorasim.Faults
		if on {
			f.Conflict409Every = 2
		}
		sim, srv := newSim(t, zuorasim.Options{Faults: f})
		c := newClient(t, srv.URL, nil)
		markAll(t, c, sim, zuora.CreditMemo, "credit-memos", nil)
		markAll(t, c, sim, zuora.DebitMemo, "debit-memos", nil)
		if got := sim.Stats().Faults["409"] > 0; got != on || (c.Stats().RetriesReasons > 0) != on {
			t.Errorf("409s %d, reason retries %d", sim.Stats().Faults["409"], c.Stats().RetriesReasons)
		}
	})
}

func TestMarkRetriesTransientActionCodes(t *testing.T) {
	for _, code := range []string{"", "REQUEST_EXCEEDED_RATE", "SERVER_UNAVAILABLE", "TRANSACTION_TIMEOUT"} {
		t.Run(code, func(t *testing.T) {
			sim, srv := newSim(t, zuorasim.Options{Faults: zuorasim.Faults{ActionCode: code, ActionCodeEvery: 3}})
			c := newClient(t, srv.URL, nil)
			markAll(t, c, sim, zuora.Payment, "payments", nil)
			markAll(t, c, sim, zuora.CreditMemo, "credit-memos", nil)
			if (c.Stats().RetriedObjects > 0) != (code != "") {
				t.Errorf("retried objects %d with code %q", c.Stats().RetriedObjects, code)
			}
		})
	}
}

func TestRefundsTheActionRefusesAreMarkedThroughPUT(t *testing.T) {
	onOff(t, func(t *testing.T, on bool) {
		sim, srv := newSim(t, zuorasim.Options{ActionRefusesCreditMemoRefunds: on})
		c := newClient(t, srv.URL, nil)
		ofMemos := 0
		for _, r := range sim.Snapshot("refunds") {
			if r["sourceType"] == "CreditMemo" {
				ofMemos++
			}
		}
		if ofMemos == 0 {
			t.Fatal("the tenant has no refund of a credit memo")
		}
		markAll(t, c, sim, zuora.Refund, "refunds", nil)
		markAll(t, c, sim, zuora.Payment, "payments", nil)
		want := 0
		if on {
			want = ofMemos
		}
		if got := c.Stats().Fallbacks; got != int64(want) || sim.Stats().Requests["PUT /v1/refunds/{key}"] != want {
			t.Errorf("%d fallbacks, %d PUTs, want %d", got, sim.Stats().Requests["PUT /v1/refunds/{key}"], want)
		}
	})
}

func TestRateLimitResetIsHonouredWithoutRetryAfter(t *testing.T) {
	onOff(t, func(t *testing.T, on bool) {
		// Five requests a second: the fast test policy (ms backoff, 12
		// attempts) would give up inside one window unless it waits for the reset.
		sim, srv := newSim(t, zuorasim.Options{Faults: zuorasim.Faults{RateLimit: 5, RateWindow: time.Second, NoRetryAfter: on}})
		c := newClient(t, srv.URL, nil)
		assertExactWalk(t, sim, walkAll(t, c, false))
		if c.Stats().RetriesRateLimit == 0 {
			t.Errorf("no 429 was met: %+v", sim.Stats().Faults)
		}
	})
}

func TestARateLimitResettingAfterTheRetryBudgetStopsAtOnce(t *testing.T) {
	onOff(t, func(t *testing.T, on bool) {
		_, srv := newSim(t, zuorasim.Options{Faults: zuorasim.Faults{HourlyLimit: 3, NoRetryAfter: on}})
		c := newClient(t, srv.URL, nil)
		start := time.Now()
		var err error
		for _, e := range c.Records(context.Background(), zuora.Query{Object: "invoices", PageSize: 5}) {
			if e != nil {
				err = e
			}
		}
		var rl *zuora.RateLimitError
		if !errors.As(err, &rl) || rl.Window != "hourly" || rl.ResetIn <= 0 || rl.ResetIn > time.Hour {
			t.Fatalf("walk over an hourly cap: %v, want a RateLimitError naming the hourly limit", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("gave up after %s, want at once", d)
		}
		for _, want := range []string{"hourly", "resets in", "nothing was lost"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("message %q lacks %q", err, want)
			}
		}
		if retry.IsTransient(err) {
			t.Error("a wait past the budget is still marked transient")
		}
	})
}

func TestARequestRateKeepsTheClientUnderTheCap(t *testing.T) {
	onOff(t, func(t *testing.T, on bool) {
		sim, srv := newSim(t, zuorasim.Options{Faults: zuorasim.Faults{RateLimit: 4, RateWindow: time.Second, NoRetryAfter: true}})
		c := newClient(t, srv.URL, func(cfg *zuora.Config) {
			if on {
				cfg.RequestsPerMinute = 180 // three a second
			}
		})
		start := time.Now()
		n := 0
		for _, err := range c.Records(context.Background(), zuora.Query{Object: "payments", PageSize: 10}) {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != 60 {
			t.Fatalf("%d payments", n)
		}
		got429 := sim.Stats().Faults["429"]
		if on && (got429 != 0 || time.Since(start) < 1500*time.Millisecond) {
			t.Errorf("at 180 requests a minute: %d 429s in %s, want none and at least 1.5s for 6 pages", got429, time.Since(start))
		}
		if !on && got429 == 0 {
			t.Error("without a client rate the cap was never hit: the test proves nothing")
		}
	})
}

func TestAConcurrency429NarrowsTheClient(t *testing.T) {
	onOff(t, func(t *testing.T, on bool) {
		f := zuorasim.Faults{Latency: 10 * time.Millisecond}
		if on {
			f.ConcurrencyLimit, f.RetryAfter = 2, -1
		}
		sim, srv := newSim(t, zuorasim.Options{Faults: f})
		c := newClient(t, srv.URL, func(cfg *zuora.Config) { cfg.MaxConcurrency, cfg.Retry.MaxAttempts = 8, 200 })
		assertExactWalk(t, sim, walkAll(t, c, true))
		st := c.Stats()
		if (st.ConcurrencyCuts > 0) != on {
			t.Errorf("concurrency cuts %d with the cap %v", st.ConcurrencyCuts, on)
		}
		// Narrowed, the client stays within the tenant's cap for a while: a
		// second concurrent walk right away meets no concurrency 429.
		refused := sim.Stats().Faults["429"]
		assertExactWalk(t, sim, walkAll(t, c, true))
		if again := sim.Stats().Faults["429"] - refused; again != 0 {
			t.Errorf("the second walk met %d concurrency 429s (the first %d): the client went back to full width", again, refused)
		}
	})
}

func TestEntityIDIsSentOnEveryCall(t *testing.T) {
	onOff(t, func(t *testing.T, on bool) {
		opts := zuorasim.Options{}
		if on {
			opts.RequireEntityID = "8a8aa0a1-entity"
		}
		sim, srv := newSim(t, opts)
		c := newClient(t, srv.URL, func(cfg *zuora.Config) { cfg.EntityID = "8a8aa0a1-entity" })
		assertExactWalk(t, sim, walkAll(t, c, false))
		markAll(t, c, sim, zuora.Invoice, "invoices", func(r map[string]any) bool { return r["status"] == "Posted" })
		if !on {
			return
		}
		bare := newClient(t, srv.URL, nil)
		for _, err := range bare.Records(context.Background(), zuora.Query{Object: "invoices"}) {
			var e *zuora.Error
			if !errors.As(err, &e) || e.Status != 400 || !strings.Contains(err.Error(), "Zuora-Entity-Ids") {
				t.Fatalf("without the entity id: %v", err)
			}
			break
		}
	})
}

func TestPagingSaysWhetherTheCursorWasAKeyset(t *testing.T) {
	onOff(t, func(t *testing.T, on bool) {
		opts := zuorasim.Options{}
		if on {
			opts.OffsetCursorObjects = []string{"invoices"}
		}
		_, srv := newSim(t, opts)
		c := newClient(t, srv.URL, nil)
		for _, object := range []string{"invoices", "payments"} {
			var p zuora.Paging
			for _, err := range c.Records(context.Background(), zuora.Query{Object: object, PageSize: 20, Paging: &p}) {
				if err != nil {
					t.Fatal(err)
				}
			}
			if p.Pages < 3 || p.NonKeyset != (on && object == "invoices") {
				t.Errorf("%s: %+v", object, p)
			}
		}
	})
}
