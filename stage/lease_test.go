package stage_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/s3test"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/testutil"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// stageURLs returns a fresh stage URL of every kind, so that a test can open
// several handles on one stage, as several processes would.
var stageURLs = []struct {
	name string
	url  func(t *testing.T) string
}{
	{"file", func(t *testing.T) string { return "file://" + filepath.ToSlash(t.TempDir()) + "/stage" }},
	{"mem", func(t *testing.T) string { return fmt.Sprintf("mem://lease-test-%d", memSeq.Add(1)) }},
	{"s3", func(t *testing.T) string { return s3test.StageURL(t) }},
}

func holder(name string) stage.Holder { return stage.Holder{RunID: name, Command: "test"} }

func acquire(t *testing.T, st *stage.Stage, name string, ttl time.Duration, now func() time.Time) *stage.Lease {
	t.Helper()
	l, err := st.AcquireLease(context.Background(), stage.LeaseOptions{TTL: ttl, Holder: holder(name), Now: now})
	if err != nil {
		t.Fatalf("%s: acquire: %v", name, err)
	}
	t.Cleanup(func() { l.Release(context.Background()) })
	return l
}

func wantHeldBy(t *testing.T, err error, runID string) {
	t.Helper()
	var held *stage.LeaseHeldError
	if !errors.As(err, &held) || held.Lease.Holder.RunID != runID {
		t.Fatalf("acquire: %v; want a *LeaseHeldError naming %s", err, runID)
	}
}

func wantLost(t *testing.T, err error, reason string) *stage.LeaseLostError {
	t.Helper()
	var lost *stage.LeaseLostError
	if !errors.As(err, &lost) || !strings.Contains(lost.Reason, reason) {
		t.Fatalf("write: %v; want a *LeaseLostError because %q", err, reason)
	}
	return lost
}

// TestLeaseHasOneWinner starts contenders at the same moment, each with its own
// handle on the stage, round after round: exactly one takes the lease, every
// other is told who holds it. (fileblob's own IfNotExist, a stat then a
// rename, let two contenders win about once in 300 rounds: hence the rounds.)
func TestLeaseHasOneWinner(t *testing.T) {
	const contenders = 6
	for _, b := range stageURLs {
		t.Run(b.name, func(t *testing.T) {
			rounds := 400
			if b.name == "s3" {
				rounds = 100 // each round is a few HTTP requests; the server's lock is not in question
			}
			url := b.url(t)
			handles := make([]*stage.Stage, contenders)
			for i := range handles {
				handles[i] = open(t, url)
			}
			for round := 0; round < rounds; round++ {
				var wg sync.WaitGroup
				start := make(chan struct{})
				leases := make([]*stage.Lease, contenders)
				errs := make([]error, contenders)
				for i, st := range handles {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						leases[i], errs[i] = st.AcquireLease(context.Background(), stage.LeaseOptions{TTL: time.Minute, Holder: holder(fmt.Sprintf("c%d", i))})
					}()
				}
				close(start)
				wg.Wait()
				var winners []int
				for i, l := range leases {
					if l != nil {
						winners = append(winners, i)
					}
				}
				if len(winners) != 1 {
					t.Fatalf("round %d: %d contenders took the lease (%v); want exactly one (errors %v)", round, len(winners), winners, errs)
				}
				w := winners[0]
				for i, err := range errs {
					if i != w {
						wantHeldBy(t, err, fmt.Sprintf("c%d", w))
					}
				}
				if err := leases[w].Release(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestLease checks the lease's life on every backend: the stage refuses the
// writes of a holder whose lease expired, was taken over or was broken; a
// released lease is free at once; renewals keep a working holder's lease.
func TestLease(t *testing.T) {
	ctx := context.Background()
	for _, b := range stageURLs {
		t.Run(b.name, func(t *testing.T) {
			t.Run("AnExpiredHolderWritesNothing", func(t *testing.T) {
				st := open(t, b.url(t))
				clock := testutil.NewClock(time.Now())
				l := acquire(t, st, "a", time.Hour, clock.Now)
				if _, err := st.WriteBytes(ctx, "before", []byte("x")); err != nil {
					t.Fatalf("write while holding: %v", err)
				}
				clock.Advance(2 * time.Hour) // paused past its expiry: no renewal happened
				_, err := st.WriteBytes(ctx, "after", []byte("x"))
				wantLost(t, err, "not renewed in time")
				wantLost(t, st.Delete(ctx, "before"), "not renewed in time")
				wantLost(t, st.WriteJSON(ctx, "after.json", 1), "not renewed in time")
				if ok, _ := st.Exists(ctx, "after"); ok {
					t.Fatal("the write of a holder that lost its lease reached the stage")
				}
				if ok, _ := st.Exists(ctx, "before"); !ok {
					t.Fatal("the delete of a holder that lost its lease reached the stage")
				}
				if !errors.As(l.Err(), new(*stage.LeaseLostError)) {
					t.Fatalf("Lease.Err() = %v after the loss", l.Err())
				}
			})
			t.Run("TakenOverOnlyOnceExpired", func(t *testing.T) {
				url := b.url(t)
				a, other := open(t, url), open(t, url)
				acquire(t, a, "a", time.Hour, nil)
				_, err := other.AcquireLease(ctx, stage.LeaseOptions{TTL: time.Hour, Holder: holder("b")})
				wantHeldBy(t, err, "a")
				later := testutil.NewClock(time.Now().Add(time.Hour + time.Second)) // b's clock, past a's expiry
				lb := acquire(t, other, "b", time.Hour, later.Now)
				if lb.Record().TookOver == nil || lb.Record().TookOver.RunID != "a" {
					t.Fatalf("the new record does not say whose lease it took over: %+v", lb.Record())
				}
				// a's own clock says it is still valid: the successor stops it.
				_, err = a.WriteBytes(ctx, "k", []byte("x"))
				lost := wantLost(t, err, "taken over by test b")
				if lost.Successor == nil || lost.Successor.Holder.RunID != "b" {
					t.Fatalf("the loss does not name the successor: %+v", lost)
				}
				if _, err := other.WriteBytes(ctx, "k", []byte("y")); err != nil {
					t.Fatalf("the new holder cannot write: %v", err)
				}
			})
			t.Run("BrokenWhileLive", func(t *testing.T) {
				url := b.url(t)
				a, op, c := open(t, url), open(t, url), open(t, url)
				acquire(t, a, "a", time.Hour, nil)
				cur, found, err := op.CurrentLease(ctx)
				if err != nil || !found || cur.Holder.RunID != "a" || !cur.Live(time.Now()) {
					t.Fatalf("current lease %+v %v %v; want a's, live", cur, found, err)
				}
				broken, err := op.BreakLease(ctx, cur.Generation, stage.Holder{Command: "lease break"})
				if err != nil || broken.Holder.RunID != "a" {
					t.Fatalf("break: %+v %v", broken, err)
				}
				if _, err := op.BreakLease(ctx, cur.Generation, stage.Holder{}); !errors.Is(err, stage.ErrLeaseChanged) {
					t.Fatalf("breaking the same generation twice: %v; want ErrLeaseChanged", err)
				}
				_, err = a.WriteBytes(ctx, "k", []byte("x"))
				wantLost(t, err, "broken by lease break")
				acquire(t, c, "c", time.Hour, nil) // free at once, no wait for the expiry
				if _, err := a.WriteBytes(ctx, "k", []byte("x")); err == nil {
					t.Fatal("the broken holder writes again once someone else holds the lease")
				}
			})
			t.Run("ReleasedIsFreeAtOnce", func(t *testing.T) {
				url := b.url(t)
				a, other := open(t, url), open(t, url)
				la := acquire(t, a, "a", time.Hour, nil)
				if err := la.Release(ctx); err != nil {
					t.Fatal(err)
				}
				if _, err := a.WriteBytes(ctx, "k", []byte("x")); err != nil {
					t.Fatalf("a stage without a lease refuses writes after a release: %v", err)
				}
				lb := acquire(t, other, "b", time.Hour, nil)
				if lb.Record().TookOver != nil {
					t.Fatalf("a released lease counts as taken over: %+v", lb.Record())
				}
			})
			t.Run("RenewedWhileWorking", func(t *testing.T) {
				url := b.url(t)
				a, other := open(t, url), open(t, url)
				const ttl = 2 * time.Second // long enough that a loaded machine still renews in time
				la := acquire(t, a, "a", ttl, nil)
				first := la.Record().ExpiresAt
				for end := time.Now().Add(2 * ttl); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
					if _, err := a.WriteBytes(ctx, "k", []byte("x")); err != nil {
						t.Fatalf("a renewed holder's write failed: %v", err)
					}
				}
				_, err := other.AcquireLease(ctx, stage.LeaseOptions{TTL: ttl, Holder: holder("b")})
				wantHeldBy(t, err, "a")
				if !la.Record().ExpiresAt.After(first.Add(ttl)) {
					t.Fatalf("expiry %s did not move past %s", la.Record().ExpiresAt, first.Add(ttl))
				}
			})
			t.Run("OldGenerationsArePruned", func(t *testing.T) {
				st := open(t, b.url(t))
				for i := 0; i < 6; i++ {
					if err := acquire(t, st, fmt.Sprint("r", i), time.Hour, nil).Release(ctx); err != nil {
						t.Fatal(err)
					}
				}
				objs, err := st.List(ctx, stage.LeasePrefix)
				if err != nil {
					t.Fatal(err)
				}
				if len(objs) != 3 || !strings.HasSuffix(objs[2].Key, "000000000006.json") {
					t.Fatalf("lease records %+v; want the three latest", objs)
				}
			})
		})
	}
}

// TestReadOnlyStage: a stage opened read-only must exist, and refuses writes
// and the lease.
func TestReadOnlyStage(t *testing.T) {
	ctx := context.Background()
	missing := filepath.Join(t.TempDir(), "typo")
	_, err := stage.Open(ctx, missing, stage.ReadOnly())
	var none *stage.NoStageError
	if !errors.As(err, &none) || !strings.Contains(err.Error(), "no stage at") || !strings.Contains(err.Error(), missing) {
		t.Fatalf("read-only open of a missing folder: %v; want a *NoStageError naming it", err)
	}
	if _, err := stage.Open(ctx, fmt.Sprintf("mem://never-written-%d", memSeq.Add(1)), stage.ReadOnly()); !errors.As(err, &none) {
		t.Fatalf("read-only open of an unknown mem:// stage: %v", err)
	}
	for _, b := range stageURLs {
		t.Run(b.name, func(t *testing.T) {
			url := b.url(t)
			if _, err := open(t, url).WriteBytes(ctx, "k", []byte("x")); err != nil {
				t.Fatal(err)
			}
			ro, err := stage.Open(ctx, url, stage.ReadOnly())
			if err != nil {
				t.Fatalf("read-only open of an existing stage: %v", err)
			}
			defer ro.Close()
			if got, err := ro.Read(ctx, "k"); err != nil || string(got) != "x" {
				t.Fatalf("read: %q %v", got, err)
			}
			if _, err := ro.WriteBytes(ctx, "k2", nil); !errors.Is(err, stage.ErrReadOnly) {
				t.Fatalf("write to a read-only stage: %v", err)
			}
			if _, err := ro.AcquireLease(ctx, stage.LeaseOptions{}); !errors.Is(err, stage.ErrReadOnly) {
				t.Fatalf("lease of a read-only stage: %v", err)
			}
		})
	}
}

// TestOpenCreatesNothing: opening a missing file:// stage leaves no folder; it
// reads as empty, and the first write creates it.
func TestOpenCreatesNothing(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "a", "stage")
	st := open(t, dir)
	if objs, err := st.List(ctx, ""); err != nil || len(objs) != 0 {
		t.Fatalf("list of a stage not created yet: %v %v", objs, err)
	}
	if _, err := st.Read(ctx, "k"); !errors.Is(err, stage.ErrNotFound) {
		t.Fatalf("read: %v; want ErrNotFound", err)
	}
	if err := st.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := st.HighWater(ctx); ok || err != nil {
		t.Fatalf("high-water mark of an empty stage: %v %v", ok, err)
	}
	if _, err := filepath.Glob(dir); err != nil {
		t.Fatal(err)
	}
	if exists(dir) {
		t.Fatal("opening and reading created the stage folder")
	}
	if _, err := st.WriteBytes(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Read(ctx, "k"); err != nil || string(got) != "v" {
		t.Fatalf("read after the first write: %q %v", got, err)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// ignoringBackend is an S3 backend that ignores If-None-Match, as some
// S3-compatible servers do.
type ignoringBackend struct{ *s3mem.Backend }

func (b ignoringBackend) PutObject(bucket, key string, meta map[string]string, input io.Reader, size int64, _ *gofakes3.PutConditions) (gofakes3.PutObjectResult, error) {
	return b.Backend.PutObject(bucket, key, meta, input, size, nil)
}

// TestLeaseRefusesAStoreWithoutConditionalWrites: on an S3 server that ignores
// If-None-Match two writers could both take the lease; acquiring says so
// instead of pretending.
func TestLeaseRefusesAStoreWithoutConditionalWrites(t *testing.T) {
	backend := s3mem.New()
	if err := backend.CreateBucket("ignoring"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(ignoringBackend{backend}).Server())
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAFAKEFAKEFAKE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "fake")
	st := open(t, "s3://ignoring?endpoint="+srv.URL+"&region=us-east-1&use_path_style=true&disable_https=true")
	_, err := st.AcquireLease(context.Background(), stage.LeaseOptions{Holder: holder("a")})
	if err == nil || !strings.Contains(err.Error(), "does not honour conditional writes") {
		t.Fatalf("acquire on a store that ignores If-None-Match: %v; want a refusal", err)
	}
	if cur, found, err := st.CurrentLease(context.Background()); err != nil || !found || cur.Live(time.Now()) {
		t.Fatalf("after the refusal the record is %+v (found %v, %v); want it released", cur, found, err)
	}
}

// BenchmarkWriteUnderLease measures what the lease check costs each write (one
// existence check of the next generation).
func BenchmarkWriteUnderLease(b *testing.B) {
	for _, backend := range []string{"file", "s3"} {
		for _, leased := range []bool{false, true} {
			name := backend + "/nolease"
			if leased {
				name = backend + "/lease"
			}
			b.Run(name, func(b *testing.B) {
				var url string
				if backend == "s3" {
					url = s3test.StageURL(b)
				} else {
					url = "file://" + filepath.ToSlash(b.TempDir())
				}
				st, err := stage.Open(context.Background(), url)
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				if leased {
					l, err := st.AcquireLease(context.Background(), stage.LeaseOptions{})
					if err != nil {
						b.Fatal(err)
					}
					defer l.Release(context.Background())
				}
				data := make([]byte, 4096)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := st.WriteBytes(context.Background(), fmt.Sprintf("k/%06d", i), data); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
