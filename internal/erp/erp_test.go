package erp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/erpsim"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/retry"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

func TestNewNeedsTheBaseURLAndToken(t *testing.T) {
	if _, err := New(Config{Token: "x"}); err == nil {
		t.Fatal("no base URL accepted")
	}
	if _, err := New(Config{BaseURL: "http://erp"}); err == nil {
		t.Fatal("no token accepted")
	}
	c, err := New(Config{BaseURL: "http://erp/", Token: "x"})
	if err != nil || c.base != "http://erp" || c.timeout != 30*time.Second || c.http == nil {
		t.Fatalf("client = %+v, %v", c, err)
	}
}

// TestPostSaysHowTheERPSettledIt: a create, its replay, a refusal of the
// document and a refusal of the integration, each as the ledger records it.
func TestPostSaysHowTheERPSettledIt(t *testing.T) {
	sim := erpsim.New(erpsim.Options{Token: "tok"})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	fast := retry.Policy{MaxAttempts: 2, Initial: time.Millisecond, Max: time.Millisecond, MaxElapsed: time.Second}
	c, err := New(Config{BaseURL: srv.URL, Token: "tok", Retry: fast})
	if err != nil {
		t.Fatal(err)
	}
	body := json.RawMessage(`{"payment":{"zuora_id":"p1","number":"P-1","customer":"ERP-1","currency":"USD","date":"2026-11-25","amount":10.5}}`)
	doc := Document{DocType: stage.Payment, ZuoraID: "p1", IdempotencyKey: "p1", Payload: body}
	ctx := context.Background()
	if res := c.Post(ctx, doc); res.Outcome != stage.OutcomeCreated || res.ERPID == "" || res.Status != 201 || res.Attempts != 1 {
		t.Fatalf("first post: %+v", res)
	}
	if res := c.Post(ctx, doc); res.Outcome != stage.OutcomeDuplicate || res.Status != 200 {
		t.Fatalf("replay: %+v", res)
	}
	other := doc
	other.Payload = json.RawMessage(`{"payment":{"zuora_id":"p1","number":"P-1","customer":"ERP-2","currency":"USD","date":"2026-11-25","amount":10.5}}`)
	if res := c.Post(ctx, other); res.Outcome != stage.OutcomeRejected || res.Status != 409 || res.Message == "" {
		t.Fatalf("another body under the same key: %+v", res)
	}
	bad, _ := New(Config{BaseURL: srv.URL, Token: "wrong", Retry: fast})
	res := bad.Post(ctx, doc)
	var fatal *FatalError
	var refused *RefusedError
	if res.Outcome != stage.OutcomeTransient || !errors.As(res.Err, &fatal) || !errors.As(res.Err, &refused) || refused.Status != 401 {
		t.Fatalf("a wrong token: %+v (%v); want a *FatalError holding a *RefusedError 401", res, res.Err)
	}
}

// TestDocumentReadsWhatTheERPHolds: a document the ERP holds comes back with
// its exact open balance after an application; one it never held is not found.
func TestDocumentReadsWhatTheERPHolds(t *testing.T) {
	sim := erpsim.New(erpsim.Options{Token: "tok"})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	fast := retry.Policy{MaxAttempts: 2, Initial: time.Millisecond, Max: time.Millisecond, MaxElapsed: time.Second}
	c, err := New(Config{BaseURL: srv.URL, Token: "tok", Retry: fast})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, d := range []Document{
		{DocType: stage.Invoice, ZuoraID: "i1", IdempotencyKey: "i1", Payload: json.RawMessage(`{"invoice":{"zuora_id":"i1","number":"INV-1","customer":"ERP-1","currency":"USD","date":"2026-11-25","amount":100.10,"items":[{"zuora_id":"ii1","description":"x","quantity":1,"unit_price":100.10,"amount":100.10,"tax_amount":0}]}}`)},
		{DocType: stage.Payment, ZuoraID: "p1", IdempotencyKey: "p1", Payload: json.RawMessage(`{"payment":{"zuora_id":"p1","number":"P-1","customer":"ERP-1","currency":"USD","date":"2026-11-25","amount":40.015}}`)},
	} {
		if res := c.Post(ctx, d); res.Outcome != stage.OutcomeCreated {
			t.Fatalf("post %s: %+v", d.ZuoraID, res)
		}
	}
	app := Document{DocType: stage.PaymentApplication, ZuoraID: "a1", IdempotencyKey: "a1", Payload: json.RawMessage(`{"application":{"zuora_id":"a1","kind":"payment","source_zuora_id":"p1","target_type":"invoice","target_zuora_id":"i1","customer":"ERP-1","currency":"USD","amount":40.015,"date":"2026-11-25"}}`)}
	if res := c.Post(ctx, app); res.Outcome != stage.OutcomeCreated {
		t.Fatalf("post the application: %+v", res)
	}
	held, found, err := c.Document(ctx, "i1")
	if err != nil || !found {
		t.Fatalf("Document(i1) = %+v, %v, %v", held, found, err)
	}
	if held.DocType != "invoice" || !held.Live || held.OpenBalance.String() != "60.085" || held.Amount.String() != "100.1" || held.Copies != 1 {
		t.Fatalf("Document(i1) = %+v; want a live invoice open by 60.085", held)
	}
	if _, found, err := c.Document(ctx, "never-held"); err != nil || found {
		t.Fatalf("Document(never-held) found %v, %v; want not found", found, err)
	}
	bad, _ := New(Config{BaseURL: srv.URL, Token: "wrong", Retry: fast})
	var fatal *FatalError
	if _, _, err := bad.Document(ctx, "i1"); !errors.As(err, &fatal) {
		t.Fatalf("a wrong token: %v; want a *FatalError", err)
	}
}

// TestPostsReuseTheirConnections: as many posts at once as the client is
// configured for keep that many connections to the ERP, not a new one for
// every post beyond the transport's default two idle ones (a TLS handshake
// each against a real ERP, and a socket left in TIME_WAIT). A post that
// finds no idle connection for a moment dials one while it waits, so a few
// more than conns are opened (9 to 15 for 8 in 500 runs); keeping two idle,
// one post in three opened its own.
func TestPostsReuseTheirConnections(t *testing.T) {
	const conns, posts = 8, 400
	srv := httptest.NewUnstartedServer(erpsim.New(erpsim.Options{Token: "tok"}))
	var opened atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, Token: "tok", Conns: conns})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	next := make(chan int)
	for range conns {
		wg.Go(func() {
			for i := range next {
				id := fmt.Sprintf("p%d", i)
				body := json.RawMessage(fmt.Sprintf(`{"payment":{"zuora_id":%q,"number":"P-%d","customer":"ERP-1","currency":"USD","date":"2026-11-25","amount":1}}`, id, i))
				if res := c.Post(context.Background(), Document{DocType: stage.Payment, ZuoraID: id, IdempotencyKey: id, Payload: body}); res.Outcome != stage.OutcomeCreated {
					t.Errorf("post %s: %+v", id, res)
				}
			}
		})
	}
	for i := range posts {
		next <- i
	}
	close(next)
	wg.Wait()
	if n := opened.Load(); n > posts/10 {
		t.Errorf("%d posts, %d at a time, opened %d connections to the ERP; want at most one in ten posts to open one", posts, conns, n)
	}
}
