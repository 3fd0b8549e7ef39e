package extract_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/extract"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/testutil"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuora"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// zuoraProcessEnv makes the test binary serve a simulated Zuora of that many
// invoices an hour instead of running tests, so that memory tests measure the
// extract alone.
const zuoraProcessEnv = "EXTRACT_TEST_ZUORA_PROCESS"

func TestMain(m *testing.M) {
	if n := os.Getenv(zuoraProcessEnv); n != "" {
		serveZuoraProcess(n)
		return
	}
	os.Exit(m.Run())
}

// serveZuoraProcess serves hours 21 and 22 of a generated tenant of about n
// invoices an hour, one item each, until stdin closes.
func serveZuoraProcess(n string) {
	invoices, err := strconv.Atoi(n)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	v := zuorasim.Volume{Accounts: 50, Invoices: 2 * invoices, MaxItems: 1, NoERPPercent: 10, DraftPercent: 10, BurstPercent: 20}
	sim := zuorasim.New(zuorasim.Options{})
	sim.Load(zuorasim.Generate(11, v, hour(21).Start, hour(22).End))
	testutil.ServeChild(sim)
}

// zuoraProcess starts a simulated Zuora of about n invoices an hour in a child
// process (serveZuoraProcess) and returns the real client of it.
func zuoraProcess(t testing.TB, n int) *env {
	t.Helper()
	url := testutil.StartChild(t, zuoraProcessEnv+"="+strconv.Itoa(n))
	client, err := zuora.New(zuora.Config{BaseURL: url, ClientID: zuorasim.DefaultClientID, ClientSecret: zuorasim.DefaultClientSecret,
		RunID: "extract-process", Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	return &env{client: client}
}

// extractBytesPerRecord is what the extract may keep per invoice of a window:
// its dedupe key (16 bytes in a map), with room for the map's growth, the
// row groups' footer entries and a collection's timing; measured 57 to 132
// bytes. Holding a row group of up to 10,000 rows of each table, a zstd
// encoder per table, each key as an id string and every key of the window
// before measured 2.5 KB per invoice (one item each).
const extractBytesPerRecord = 300

// TestExtractMemoryPerRecordIsADedupeKey extracts an hour of invoices from a
// simulated Zuora in another process, over real HTTP into a file stage, after the hour before it has been staged
// (so the overlap's dedupe reads that window's keys), at two sizes ten times
// apart: the live heap's peak grows with the window by at most a dedupe key
// per record, never by the records, their rows or the earlier window's keys.
func TestExtractMemoryPerRecordIsADedupeKey(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(10)) // a collection every MB or two: the live heap's peak is seen
	small, large := extractPeaks(t, 1000), extractPeaks(t, 10000)
	perRecord := float64(large.peak-small.peak) / float64(large.staged-small.staged)
	t.Logf("heap peak growth: %.1f MB at %d invoices, %.1f MB at %d: %.0f bytes per invoice",
		float64(small.peak)/(1<<20), small.staged, float64(large.peak)/(1<<20), large.staged, perRecord)
	if perRecord > extractBytesPerRecord {
		t.Errorf("the extract's heap grows by %.0f bytes per invoice of the window; want at most %d (a dedupe key)", perRecord, extractBytesPerRecord)
	}
}

// extractPeak is the live heap's peak growth over an extract that staged staged invoices.
type extractPeak struct{ peak, staged int64 }

// extractPeaks stages hour 21 of a tenant of about n invoices an hour, then
// extracts hour 22 twice (the second forced) and returns the lower of the two
// live heap peaks: a collection's timing only adds.
func extractPeaks(t *testing.T, n int) extractPeak {
	t.Helper()
	e := zuoraProcess(t, n)
	st := openStage(t, "file://"+filepath.ToSlash(t.TempDir()))
	// Row groups of 1,000 rows at both sizes: a group buffers up to 1 MiB,
	// which the smaller window would not fill, and that bound is not a record's.
	opts := extract.Options{DocTypes: []stage.DocType{stage.Invoice}, RunID: fmt.Sprint("mem-", n), RowGroupRows: 1000}
	run(t, e, st, hour(21), opts)
	opts.Force = true
	var peaks [2]int64
	var staged int64
	for i := range peaks {
		h := testutil.StartLivePeak()
		start := time.Now()
		m, err := extract.Run(context.Background(), e.client, st, hour(22), opts)
		peaks[i] = h.Growth()
		if err != nil {
			t.Fatalf("%d invoices, run %d: %v", n, i+1, err)
		}
		staged = m.Tables["invoices"].Rows
		if staged < int64(n)/2 {
			t.Fatalf("%d invoices an hour: hour 22 staged %d", n, staged)
		}
		t.Logf("%d invoices an hour, run %d: %d staged in %v, live heap peak +%.1f MB",
			n, i+1, staged, time.Since(start).Round(time.Millisecond), float64(peaks[i])/(1<<20))
	}
	return extractPeak{min(peaks[0], peaks[1]), staged}
}
