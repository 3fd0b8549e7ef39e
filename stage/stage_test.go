package stage_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/s3test"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

var memSeq atomic.Int64

// backends opens a fresh, empty stage of every kind the pipeline supports.
var backends = []struct {
	name string
	open func(t *testing.T) *stage.Stage
}{
	{"file", func(t *testing.T) *stage.Stage {
		return open(t, "file://"+filepath.ToSlash(t.TempDir())+"/stage")
	}},
	{"mem", func(t *testing.T) *stage.Stage {
		return open(t, fmt.Sprintf("mem://stage-test-%d", memSeq.Add(1)))
	}},
	{"s3", func(t *testing.T) *stage.Stage {
		return open(t, s3test.StageURL(t))
	}},
}

func open(t *testing.T, url string) *stage.Stage {
	t.Helper()
	st, err := stage.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	st.SetCacheDir(t.TempDir())
	t.Cleanup(func() { st.Close() })
	return st
}

func sum(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

func mustWindow(t *testing.T, id string) stage.Window {
	t.Helper()
	w, err := stage.ParseWindowID(id)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestStage runs one behavioural suite against file://, mem:// and s3://.
func TestStage(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Run("WriteThenRead", func(t *testing.T) { testWriteRead(t, b.open(t)) })
			t.Run("FailedWriteLeavesNoObject", func(t *testing.T) { testFailedWrite(t, b.open(t)) })
			t.Run("ListExistsDelete", func(t *testing.T) { testListExistsDelete(t, b.open(t)) })
			t.Run("JSON", func(t *testing.T) { testJSON(t, b.open(t)) })
			t.Run("Manifests", func(t *testing.T) { testManifests(t, b.open(t)) })
			t.Run("WindowState", func(t *testing.T) { testWindowState(t, b.open(t)) })
			t.Run("Windows", func(t *testing.T) { testWindows(t, b.open(t)) })
			t.Run("HighWater", func(t *testing.T) { testHighWater(t, b.open(t)) })
			t.Run("LocalPath", func(t *testing.T) { testLocalPath(t, b.open(t)) })
		})
	}
}

func testWriteRead(t *testing.T, st *stage.Stage) {
	ctx := context.Background()
	data := bytes.Repeat([]byte("zuora→erp "), 700_000) // about 8 MB: a multipart upload on S3
	info, err := write(ctx, st, "raw/entity=invoices/part-00000.parquet", func(w io.Writer) error {
		for chunk := range slices.Chunk(data, 64<<10) {
			if _, err := w.Write(chunk); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := stage.ObjectInfo{Key: "raw/entity=invoices/part-00000.parquet", Size: int64(len(data)), SHA256: sum(data)}
	if info != want {
		t.Errorf("Write returned %+v, want %+v", info, want)
	}
	got, err := st.Read(ctx, info.Key)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Read: %d bytes, err %v; want the %d written", len(got), err, len(data))
	}
	r, err := st.NewReader(ctx, info.Key)
	if err != nil {
		t.Fatal(err)
	}
	streamed, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(streamed, data) {
		t.Errorf("NewReader: %d bytes, err %v", len(streamed), err)
	}

	// Overwriting a key replaces it (re-runs write the same keys).
	info2, err := st.WriteBytes(ctx, info.Key, []byte("second"))
	if err != nil || info2.Size != 6 || info2.SHA256 != sum([]byte("second")) {
		t.Fatalf("overwrite: %+v %v", info2, err)
	}
	if got, _ := st.Read(ctx, info.Key); string(got) != "second" {
		t.Errorf("after overwrite read %q", got)
	}

	for _, op := range []struct {
		name string
		do   func() error
	}{
		{"Read", func() error { _, err := st.Read(ctx, "no/such/key"); return err }},
		{"NewReader", func() error { _, err := st.NewReader(ctx, "no/such/key"); return err }},
	} {
		if err := op.do(); !errors.Is(err, stage.ErrNotFound) {
			t.Errorf("%s of a missing key: %v, want ErrNotFound", op.name, err)
		}
	}
}

// write streams fn's output to key as every writer of the stage does: the
// object is committed by Close when fn succeeds, and aborted when it fails.
func write(ctx context.Context, st *stage.Stage, key string, fn func(io.Writer) error) (stage.ObjectInfo, error) {
	w, err := st.NewWriter(ctx, key)
	if err != nil {
		return stage.ObjectInfo{}, err
	}
	defer w.Abort()
	if err := fn(w); err != nil {
		return stage.ObjectInfo{}, err
	}
	if err := w.Close(); err != nil {
		return stage.ObjectInfo{}, err
	}
	return w.Info(), nil
}

func testFailedWrite(t *testing.T, st *stage.Stage) {
	ctx := context.Background()
	boom := errors.New("source failed halfway")
	failing := func(w io.Writer) error {
		if _, err := w.Write(bytes.Repeat([]byte("x"), 10_000)); err != nil {
			return err
		}
		return boom
	}
	if _, err := write(ctx, st, "raw/new.parquet", failing); !errors.Is(err, boom) {
		t.Fatalf("failed Write returned %v, want the callback's error", err)
	}
	if ok, err := st.Exists(ctx, "raw/new.parquet"); ok || err != nil {
		t.Errorf("a failed Write left an object (exists %v, err %v)", ok, err)
	}
	objs, err := st.List(ctx, "")
	if err != nil || len(objs) != 0 {
		t.Errorf("a failed Write left %v (err %v)", objs, err)
	}

	// The same for an object large enough for a multipart upload on S3.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	_, err = write(ctx, st, "raw/big.parquet", func(w io.Writer) error {
		for range 12 {
			if _, err := w.Write(big); err != nil {
				return err
			}
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("failed large Write returned %v", err)
	}
	if ok, err := st.Exists(ctx, "raw/big.parquet"); ok || err != nil {
		t.Errorf("a failed large Write left an object (exists %v, err %v)", ok, err)
	}

	// A failed rewrite keeps the committed object as it was.
	if _, err := st.WriteBytes(ctx, "raw/old.parquet", []byte("committed")); err != nil {
		t.Fatal(err)
	}
	if _, err := write(ctx, st, "raw/old.parquet", failing); !errors.Is(err, boom) {
		t.Fatalf("failed rewrite returned %v", err)
	}
	if got, err := st.Read(ctx, "raw/old.parquet"); err != nil || string(got) != "committed" {
		t.Errorf("after a failed rewrite the object is %q (err %v), want the committed one", got, err)
	}

	// A cancelled context aborts the write as well.
	cctx, cancel := context.WithCancel(ctx)
	_, err = write(cctx, st, "raw/cancelled.parquet", func(w io.Writer) error {
		w.Write([]byte("partial"))
		cancel()
		return cctx.Err()
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Write returned %v", err)
	}
	if ok, _ := st.Exists(ctx, "raw/cancelled.parquet"); ok {
		t.Error("a cancelled Write left an object")
	}

	// An object is visible only once Close commits it; Abort after Close keeps it.
	w, err := st.NewWriter(ctx, "raw/late.parquet")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("late")); err != nil {
		t.Fatal(err)
	}
	if ok, _ := st.Exists(ctx, "raw/late.parquet"); ok {
		t.Error("an object is visible before Close")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w.Abort()
	if got, err := st.Read(ctx, "raw/late.parquet"); err != nil || string(got) != "late" || w.Info().Size != 4 || w.Info().SHA256 != sum([]byte("late")) {
		t.Errorf("after Close and Abort: %q, %v, info %+v", got, err, w.Info())
	}
}

func testListExistsDelete(t *testing.T, st *stage.Stage) {
	ctx := context.Background()
	keys := []string{"ledger/window=b/part-2", "ledger/window=a/part-1", "ledger/window=a/part-2", "manifests/x.json", "ledgerx"}
	for i, k := range keys {
		if _, err := st.WriteBytes(ctx, k, bytes.Repeat([]byte("y"), i+1)); err != nil {
			t.Fatal(err)
		}
	}
	objs, err := st.List(ctx, "ledger/")
	if err != nil {
		t.Fatal(err)
	}
	want := []stage.ObjectInfo{
		{Key: "ledger/window=a/part-1", Size: 2},
		{Key: "ledger/window=a/part-2", Size: 3},
		{Key: "ledger/window=b/part-2", Size: 1},
	}
	if !slices.Equal(objs, want) {
		t.Errorf("List(ledger/) = %+v, want %+v", objs, want)
	}
	if objs, err := st.List(ctx, "nothing/"); err != nil || len(objs) != 0 {
		t.Errorf("List of an empty prefix: %v %v", objs, err)
	}
	all, _ := st.List(ctx, "")
	if len(all) != len(keys) {
		t.Errorf("List() = %d objects, want %d", len(all), len(keys))
	}

	if ok, err := st.Exists(ctx, "manifests/x.json"); !ok || err != nil {
		t.Errorf("Exists of a written key: %v %v", ok, err)
	}
	if ok, err := st.Exists(ctx, "manifests/"); ok || err != nil {
		t.Errorf("Exists of a prefix: %v %v", ok, err)
	}
	if err := st.Delete(ctx, "manifests/x.json"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := st.Exists(ctx, "manifests/x.json"); ok {
		t.Error("deleted key still exists")
	}
	if err := st.Delete(ctx, "manifests/x.json"); err != nil {
		t.Errorf("deleting a missing key: %v", err)
	}
	if left, _ := st.List(ctx, ""); len(left) != len(keys)-1 {
		t.Errorf("Delete removed %d objects, want 1", len(keys)-len(left))
	}
}

func testJSON(t *testing.T, st *stage.Stage) {
	ctx := context.Background()
	type doc struct {
		Name   string          `json:"name"`
		Amount decimal.Decimal `json:"amount"`
	}
	in := doc{"inv", decimal.RequireFromString("0.1").Add(decimal.RequireFromString("0.2"))}
	if err := st.WriteJSON(ctx, "state/doc.json", in); err != nil {
		t.Fatal(err)
	}
	var out doc
	if err := st.ReadJSON(ctx, "state/doc.json", &out); err != nil {
		t.Fatal(err)
	}
	if out.Name != "inv" || out.Amount.String() != "0.3" {
		t.Errorf("ReadJSON = %+v", out)
	}
	if err := st.ReadJSON(ctx, "state/missing.json", &out); !errors.Is(err, stage.ErrNotFound) {
		t.Errorf("ReadJSON of a missing key: %v, want ErrNotFound", err)
	}
	if _, err := st.WriteBytes(ctx, "state/bad.json", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	if err := st.ReadJSON(ctx, "state/bad.json", &out); err == nil || errors.Is(err, stage.ErrNotFound) {
		t.Errorf("ReadJSON of invalid JSON: %v, want a decode error", err)
	}
	if err := st.WriteJSON(ctx, "state/chan.json", make(chan int)); err == nil {
		t.Error("WriteJSON of an unencodable value succeeded")
	}
	if ok, _ := st.Exists(ctx, "state/chan.json"); ok {
		t.Error("a failed WriteJSON left an object")
	}
}

func testManifests(t *testing.T, st *stage.Stage) {
	ctx := context.Background()
	w := mustWindow(t, "20261125T220000Z-20261125T230000Z")
	if _, found, err := st.ReadExtract(ctx, w); found || err != nil {
		t.Fatalf("ReadExtract before any commit: found %v err %v", found, err)
	}
	min, max := w.Start.Add(time.Minute), w.End.Add(-time.Second)
	in := stage.ExtractManifest{
		Window: w.ID(), Start: w.Start, End: w.End, QueryFrom: w.Start.Add(-10 * time.Minute), RunID: "r1",
		CommittedAt: time.Date(2026, 11, 25, 23, 1, 2, 3000, time.UTC),
		Tables: map[string]stage.TableSnapshot{"invoices": {
			Rows: 2, Files: []stage.ObjectInfo{{Key: stage.RawKey("invoices", w, 0), Size: 10, SHA256: sum(nil)}},
			Amounts:    map[string]decimal.Decimal{"USD": decimal.RequireFromString("12345678901234567890.123456789")},
			MinUpdated: &min, MaxUpdated: &max,
			Query: map[string][]string{"filter[]": {"updateddate.GE:2026-11-25T21:50:00Z"}},
		}},
		Warnings: []string{"invoices x: amount 1 differs"},
	}
	if err := st.WriteManifest(ctx, w, in); err != nil {
		t.Fatal(err)
	}
	if ok, _ := st.Exists(ctx, "manifests/window=20261125T220000Z-20261125T230000Z/extract.json"); !ok {
		t.Error("manifest not at its documented key")
	}
	m, found, err := st.ReadExtract(ctx, w)
	if !found || err != nil {
		t.Fatalf("ReadExtract after commit: found %v err %v", found, err)
	}
	snap := m.Tables["invoices"]
	if m.RunID != "r1" || !m.CommittedAt.Equal(in.CommittedAt) || !m.QueryFrom.Equal(in.QueryFrom) ||
		snap.Rows != 2 || snap.Files[0] != in.Tables["invoices"].Files[0] ||
		!snap.Amounts["USD"].Equal(in.Tables["invoices"].Amounts["USD"]) || !snap.MaxUpdated.Equal(max) ||
		!slices.Equal(m.Warnings, in.Warnings) || snap.Query["filter[]"][0] != "updateddate.GE:2026-11-25T21:50:00Z" {
		t.Errorf("manifest round trip:\n got %+v\nwant %+v", m, in)
	}
	_, found, err = st.ReadTransform(ctx, w)
	if found || err != nil {
		t.Errorf("another step's manifest: found %v err %v", found, err)
	}
}

// testWindowState: the unfinished windows, the ledger parts of a window and
// of the stage, and reopening a load, without a caller building a key.
func testWindowState(t *testing.T, st *stage.Stage) {
	ctx := context.Background()
	done, open, bare := mustWindow(t, "20261125T220000Z-20261125T230000Z"), mustWindow(t, "20261125T230000Z-20261126T000000Z"), mustWindow(t, "20261126T000000Z-20261126T010000Z")
	for _, w := range []stage.Window{done, open} {
		if err := st.WriteManifest(ctx, w, stage.ExtractManifest{Window: w.ID()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.WriteManifest(ctx, bare, stage.TransformManifest{Window: bare.ID()}); err != nil { // no snapshot: never unfinished
		t.Fatal(err)
	}
	if err := st.WriteManifest(ctx, done, stage.LoadManifest{Window: done.ID(), Complete: true}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetLoadComplete(ctx, done); err != nil {
		t.Fatal(err)
	}
	ws, err := st.UnfinishedWindows(ctx)
	if err != nil || len(ws) != 1 || ws[0] != open {
		t.Fatalf("UnfinishedWindows = %v, %v; want only %s", ws, err, open)
	}
	if err := st.ReopenLoad(ctx, done); err != nil {
		t.Fatal(err)
	}
	if _, found, err := st.ReadLoad(ctx, done); found || err != nil {
		t.Errorf("after ReopenLoad the load manifest is still there (%v, %v)", found, err)
	}
	if ws, err := st.UnfinishedWindows(ctx); err != nil || len(ws) != 2 || ws[0] != done || ws[1] != open {
		t.Fatalf("after ReopenLoad: %v, %v; want both windows in time order", ws, err)
	}

	for i, w := range []stage.Window{open, done, open} {
		if _, err := st.WriteBytes(ctx, stage.LedgerKey(w, time.Date(2026, 11, 26, 1, 0, i, 0, time.UTC), "run", i), []byte("p")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.WriteBytes(ctx, stage.LedgerPrefix(open)+"notes.txt", []byte("not a part")); err != nil {
		t.Fatal(err)
	}
	parts, err := st.LedgerParts(ctx, open)
	if err != nil || len(parts) != 2 || parts[0].Key != stage.LedgerKey(open, time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC), "run", 0) {
		t.Fatalf("LedgerParts(%s) = %v, %v; want its two parts in write order", open, parts, err)
	}
	all, err := st.AllLedgerParts(ctx)
	if err != nil || len(all) != 3 || all[0].Window != done.ID() || all[1].Window != open.ID() || all[2].Window != open.ID() {
		t.Fatalf("AllLedgerParts = %+v, %v; want the three parts with their windows, in window order", all, err)
	}
}

func testWindows(t *testing.T, st *stage.Stage) {
	ctx := context.Background()
	if ws, err := st.Windows(ctx); err != nil || len(ws) != 0 {
		t.Fatalf("Windows of an empty stage: %v %v", ws, err)
	}
	ids := []string{"20261126T000000Z-20261126T010000Z", "20261125T220000Z-20261125T230000Z", "20261125T230000Z-20261126T000000Z"}
	for _, id := range ids {
		if err := st.WriteManifest(ctx, mustWindow(t, id), stage.ExtractManifest{Window: id}); err != nil {
			t.Fatal(err)
		}
	}
	// A second step of the same window does not list it twice; other prefixes are ignored.
	if err := st.WriteManifest(ctx, mustWindow(t, ids[1]), stage.LoadManifest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.WriteBytes(ctx, stage.RawKey("invoices", mustWindow(t, "20261127T000000Z-20261127T010000Z"), 0), []byte("x")); err != nil {
		t.Fatal(err)
	}
	ws, err := st.Windows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range ws {
		got = append(got, w.ID())
	}
	want := []string{ids[1], ids[2], ids[0]}
	if !slices.Equal(got, want) {
		t.Errorf("Windows = %v, want %v", got, want)
	}
	if _, err := st.WriteBytes(ctx, "manifests/window=yesterday/extract.json", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Windows(ctx); err == nil || !strings.Contains(err.Error(), "window=yesterday") {
		t.Errorf("Windows with a bad window folder: %v, want an error naming it", err)
	}
}

func testHighWater(t *testing.T, st *stage.Stage) {
	ctx := context.Background()
	if _, found, err := st.HighWater(ctx); found || err != nil {
		t.Fatalf("HighWater of an empty stage: found %v err %v", found, err)
	}
	w1 := mustWindow(t, "20261125T220000Z-20261125T230000Z")
	w2 := mustWindow(t, "20261125T230000Z-20261126T000000Z")
	now := time.Date(2026, 11, 26, 0, 5, 0, 0, time.FixedZone("PST", -8*3600))
	steps := []struct {
		w        stage.Window
		wantNext time.Time
		wantWin  string
	}{
		{w2, w2.End, w2.ID()},
		{w1, w2.End, w2.ID()}, // never backwards
		{w2, w2.End, w2.ID()}, // idempotent
	}
	for i, s := range steps {
		if err := st.SetHighWater(ctx, s.w, now.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
		hw, found, err := st.HighWater(ctx)
		if !found || err != nil || !hw.Next.Equal(s.wantNext) || hw.Window != s.wantWin {
			t.Errorf("after SetHighWater(%s): %+v found %v err %v, want next %s", s.w, hw, found, err, s.wantNext)
		}
		if hw.Next.Location() != time.UTC || hw.UpdatedAt.Location() != time.UTC || !hw.UpdatedAt.Equal(now) {
			t.Errorf("high-water mark times %s / %s, want UTC and the first update", hw.Next, hw.UpdatedAt)
		}
	}
}

func testLocalPath(t *testing.T, st *stage.Stage) {
	ctx := context.Background()
	data := []byte("PAR1 pretend parquet PAR1")
	info, err := st.WriteBytes(ctx, "raw/entity=invoices/window=w/part-00000.parquet", data)
	if err != nil {
		t.Fatal(err)
	}
	path, err := st.LocalPath(ctx, info.Key, info.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("LocalPath file holds %q (err %v)", got, err)
	}
	again, err := st.LocalPath(ctx, info.Key, info.SHA256)
	if err != nil || again != path {
		t.Errorf("second LocalPath %q %v, want %q", again, err, path)
	}
	if st.IsLocal() {
		if !strings.HasSuffix(filepath.ToSlash(path), "/stage/"+info.Key) {
			t.Errorf("a file:// stage should return the object's own file, got %s", path)
		}
		return
	}
	// Remote stages verify the copy against the manifest's checksum.
	if _, err := st.LocalPath(ctx, info.Key, sum([]byte("something else"))); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("LocalPath with a wrong checksum: %v", err)
	}
	if _, err := st.LocalPath(ctx, "raw/missing.parquet", ""); !errors.Is(err, stage.ErrNotFound) {
		t.Errorf("LocalPath of a missing key: %v, want ErrNotFound", err)
	}
}

func TestMemStageIsSharedByURL(t *testing.T) {
	ctx := context.Background()
	url := fmt.Sprintf("mem://stage-shared-%d", memSeq.Add(1))
	a, b := open(t, url), open(t, url)
	if _, err := a.WriteBytes(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	a.Close() // closing one handle must not close the shared bucket
	if got, err := b.Read(ctx, "k"); err != nil || string(got) != "v" {
		t.Errorf("second handle reads %q %v", got, err)
	}
	other := open(t, fmt.Sprintf("mem://stage-shared-%d", memSeq.Add(1)))
	if ok, _ := other.Exists(ctx, "k"); ok {
		t.Error("another mem:// name sees the object")
	}
}

func TestOpenRelativePathAndRedact(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	st := open(t, "out/stage")
	if !st.IsLocal() {
		t.Fatal("a bare path is not a local stage")
	}
	if _, err := st.WriteBytes(context.Background(), "a/b.txt", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "stage", "a", "b.txt")); err != nil {
		t.Errorf("object not under the working directory: %v", err)
	}
	for raw, want := range map[string]string{
		"s3://AKIA:secret@bucket/prefix?endpoint=http://x&access_key=secret": "s3://bucket/prefix",
		"file:///var/stage": "file:///var/stage",
	} {
		if got := stage.Redact(raw); got != want || strings.Contains(got, "secret") {
			t.Errorf("Redact(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestKeys(t *testing.T) {
	w := stage.Window{Start: time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC), End: time.Date(2026, 11, 25, 23, 0, 0, 0, time.UTC)}
	at := time.Date(2026, 11, 25, 15, 4, 5, 123456789, time.FixedZone("PST", -8*3600))
	tests := []struct{ got, want string }{
		{stage.RawKey("invoice_items", w, 3), "raw/entity=invoice_items/window=20261125T220000Z-20261125T230000Z/part-00003.parquet"},
		{stage.ReadyKey("documents", w, "ndjson"), "ready/documents/window=20261125T220000Z-20261125T230000Z/part-00000.ndjson"},
		{stage.LedgerKey(w, at, "run1", 7), "ledger/window=20261125T220000Z-20261125T230000Z/part-20261125T230405.123456789Z-run1-000007.parquet"},
		{stage.ManifestKey("load", w), "manifests/window=20261125T220000Z-20261125T230000Z/load.json"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %s, want %s", tt.got, tt.want)
		}
	}
}

func TestWindowIDsAndSplit(t *testing.T) {
	pst := time.FixedZone("PST", -8*3600)
	for _, tt := range []struct {
		id      string
		wantErr bool
	}{
		{"20261125T220000Z-20261125T230000Z", false},
		{"20261125T230000Z-20261125T220000Z", true}, // empty
		{"20261125T220000Z-20261125T220000Z", true},
		{"20261125T220000Z", true},
		{"2026-11-25T22:00:00Z-2026-11-25T23:00:00Z", true},
	} {
		w, err := stage.ParseWindowID(tt.id)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseWindowID(%q) err %v, want error %v", tt.id, err, tt.wantErr)
		}
		if err == nil && w.ID() != tt.id {
			t.Errorf("ParseWindowID(%q).ID() = %q", tt.id, w.ID())
		}
	}
	w, err := stage.NewWindow(time.Date(2026, 11, 25, 14, 0, 0, 0, pst), time.Date(2026, 11, 25, 15, 0, 0, 0, pst))
	if err != nil || w.ID() != "20261125T220000Z-20261125T230000Z" || w.Start.Location() != time.UTC {
		t.Errorf("NewWindow in -08:00: %v %v", w, err)
	}
	for _, c := range []struct {
		t    time.Time
		want bool
	}{
		{w.Start, true}, {w.End.Add(-time.Microsecond), true}, {w.End, false}, {w.Start.Add(-time.Second), false},
		{time.Date(2026, 11, 25, 14, 59, 59, 0, pst), true},
	} {
		if w.Contains(c.t) != c.want {
			t.Errorf("Contains(%s) = %v", c.t, !c.want)
		}
	}
	ws := stage.Split(w.Start, w.Start.Add(150*time.Minute), time.Hour)
	var ids []string
	for _, x := range ws {
		ids = append(ids, x.ID())
	}
	want := []string{"20261125T220000Z-20261125T230000Z", "20261125T230000Z-20261126T000000Z", "20261126T000000Z-20261126T003000Z"}
	if !slices.Equal(ids, want) {
		t.Errorf("Split = %v, want %v", ids, want)
	}
}
