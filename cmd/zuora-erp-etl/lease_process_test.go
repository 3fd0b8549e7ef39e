package main

// Real processes of the binary on one stage: the lease lets exactly one of them
// write, a killed holder blocks the stage for at most the lease's time to live,
// and the run that takes over finishes the work exactly once.

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/demo"
)

// assertHolderNamed checks the refusal of a second writer: status 4, and a
// message naming the holder and how to break a stale lease.
func assertHolderNamed(t *testing.T, loser, holder *proc, holderRunID string) {
	t.Helper()
	if loser.code != exitLeaseHeld {
		t.Fatalf("the second writer exited %d; want %d (another writer holds the stage)\n%s", loser.code, exitLeaseHeld, loser)
	}
	host, _ := os.Hostname()
	msg := loser.stderr.String()
	for _, want := range []string{
		"another writer holds the stage",
		fmt.Sprintf("pid %d", holder.cmd.Process.Pid),
		host,
		holderRunID,
		"since",
		"expires",
		"zuora-erp-etl lease break",
	} {
		if want == "" || !strings.Contains(msg, want) {
			t.Errorf("the second writer's message lacks %q:\n%s", want, msg)
		}
	}
	if first := strings.SplitN(strings.TrimSpace(msg), "\n", 2)[0]; !strings.Contains(first, "another writer holds the stage") {
		t.Errorf("the first line does not say what happened: %q", first)
	}
	if loser.stdout.Len() != 0 {
		t.Errorf("the second writer printed a report although it did nothing:\n%s", loser.stdout.String())
	}
}

// assertPostedAndMarkedOnce checks the ERP and Zuora after the runs: the ERP
// holds each document once, every request after a document's first was
// answered from the idempotency store, each posted document was marked in
// Zuora exactly once and is transferred, and nothing else was marked.
func (w *procWorld) assertPostedAndMarkedOnce(t *testing.T, maxPostsPerKey int) {
	t.Helper()
	docs := w.erp.Documents()
	if len(docs) == 0 {
		t.Fatal("the ERP holds no documents")
	}
	held := map[string]int{}
	for _, d := range docs {
		held[d.Key]++
	}
	posts := map[string]int{}
	created := map[string]bool{}
	for _, r := range w.erp.Requests() {
		if r.Method != http.MethodPost {
			continue
		}
		posts[r.Key]++
		// A post that reached the ERP after its document was created must be
		// answered from the idempotency store; one whose predecessor never
		// created anything (the killed holder's post cut off unanswered) may
		// create it.
		if created[r.Key] && !r.Replayed {
			t.Errorf("document %s: post %d came after the document was created and was not a replay (status %d)", r.Key, posts[r.Key], r.Status)
		}
		if r.Status >= 200 && r.Status < 300 {
			created[r.Key] = true
		}
	}
	marks := w.marks.snapshot()
	bad := 0
	for key, n := range held {
		if n != 1 || posts[key] < 1 || posts[key] > maxPostsPerKey || marks[key] != 1 || w.zuora.Transferred(key) != "Yes" {
			if bad++; bad <= 10 {
				t.Errorf("document %s: held %d times by the ERP, posted %d times (at most %d), marked %d times, transferred %q",
					key, n, posts[key], maxPostsPerKey, marks[key], w.zuora.Transferred(key))
			}
		}
	}
	for key, n := range marks {
		if held[key] == 0 {
			if bad++; bad <= 10 {
				t.Errorf("%s was marked %d times but the ERP does not hold it", key, n)
			}
		}
	}
	if bad > 10 {
		t.Errorf("… %d documents in all", bad)
	}
}

// TestTwoProcessesOneWriter starts two runs of the binary on one stage at the
// same moment. The ERP holds every post until one of them has exited, so the
// winner is surely mid-run while the other tries: exactly one posts and marks,
// the other exits 4 naming the holder.
func TestTwoProcessesOneWriter(t *testing.T) {
	for _, backend := range []string{"file", "s3"} {
		t.Run(backend, func(t *testing.T) {
			w := newProcWorld(t, backend)
			w.gate.hold(0)
			args := []string{"run", "--since", demo.From.Format(time.RFC3339), "--until", demo.To.Format(time.RFC3339)}
			a, b := w.start(t, args...), w.start(t, args...)
			var loser, winner *proc
			select {
			case <-a.done:
				loser, winner = a, b
			case <-b.done:
				loser, winner = b, a
			case <-time.After(30 * time.Second):
				w.gate.open()
				<-a.done
				<-b.done
				t.Fatalf("neither process gave way within 30s (both were writing)\nA: %s\nB: %s", a, b)
			}
			w.gate.open()
			select {
			case <-winner.done:
			case <-time.After(60 * time.Second):
				t.Fatalf("the winner did not finish within 60s\n%s", winner)
			}
			if winner.code != exitRejected {
				t.Fatalf("the winner exited %d; want %d (the tenant has documents the mapping rejects)\nwinner: %s\nloser: %s", winner.code, exitRejected, winner, loser)
			}
			assertHolderNamed(t, loser, winner, winner.runID())
			w.assertPostedAndMarkedOnce(t, 1)
		})
	}
}

// TestKilledHolderIsTakenOverAfterTTL kills the holder with SIGKILL in the
// middle of its load. Until its lease expires another run is refused with
// status 4; after at most the lease's time to live a run takes over and
// finishes, each document posted once and marked once.
func TestKilledHolderIsTakenOverAfterTTL(t *testing.T) {
	for _, backend := range []string{"file", "s3"} {
		t.Run(backend, func(t *testing.T) {
			w := newProcWorld(t, backend)
			w.gate.hold(20) // the ERP takes 20 posts, then holds the rest: the holder is mid-load
			args := []string{"run", "--since", demo.From.Format(time.RFC3339), "--until", demo.To.Format(time.RFC3339)}
			holder := w.start(t, args...)
			deadline := time.Now().Add(30 * time.Second)
			for w.gate.waiting.Load() == 0 {
				select {
				case <-holder.done:
					t.Fatalf("the holder finished before it was held mid-load\n%s", holder)
				default:
				}
				if time.Now().After(deadline) {
					t.Fatalf("the holder never reached its load\n%s", holder)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err := holder.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-holder.done
			killed := time.Now()
			w.gate.open()
			holderRunID := holder.runID()
			if holderRunID == "" {
				t.Fatalf("the holder logged no run id before it was killed\n%s", holder)
			}

			resume := []string{"run", "--until", demo.To.Format(time.RFC3339)}
			refused := w.run(t, resume...)
			assertHolderNamed(t, refused, holder, holderRunID)

			var taker *proc
			for {
				taker = w.run(t, resume...)
				if taker.code != exitLeaseHeld {
					break
				}
				if time.Since(killed) > procLeaseTTL+5*time.Second {
					t.Fatalf("the stage is still held %s after the holder was killed (lease TTL %s)\n%s", time.Since(killed), procLeaseTTL, taker)
				}
				time.Sleep(100 * time.Millisecond)
			}
			took := time.Since(killed)
			t.Logf("%s: a run took over %s after the kill (lease TTL %s)", backend, took.Round(time.Millisecond), procLeaseTTL)
			if taker.code != exitRejected {
				t.Fatalf("the run that took over exited %d; want %d\n%s", taker.code, exitRejected, taker)
			}
			if !strings.Contains(taker.stderr.String(), "expired lease") || !strings.Contains(taker.stderr.String(), holderRunID) {
				t.Errorf("the run that took over does not say whose expired lease it took:\n%s", taker.stderr.String())
			}
			// The killed holder's posts that reached the ERP after its last
			// ledger part are posted again, and answered from the ERP's
			// idempotency store: never a second document.
			w.assertPostedAndMarkedOnce(t, 2)

			posts, marks := len(w.erp.Requests()), w.marks.total()
			again := w.run(t, resume...)
			if again.code != exitOK && again.code != exitRejected || len(w.erp.Requests()) != posts || w.marks.total() != marks {
				t.Fatalf("a further run: exit %d, %d new ERP requests, %d new marks\n%s", again.code, len(w.erp.Requests())-posts, w.marks.total()-marks, again)
			}
		})
	}
}
