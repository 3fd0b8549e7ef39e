package extract_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/zuora-erp-etl/zuora-erp-etl/extract"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// BenchmarkRunSim extracts an hour of 5,000 invoices from a simulated Zuora in
// another process over real HTTP into a file stage, so that a CPU profile of
// the benchmark is the extract's alone (BenchmarkRun's fake source costs more
// than the extract).
func BenchmarkRunSim(b *testing.B) {
	e := zuoraProcess(b, 5000)
	st, err := stage.Open(context.Background(), "file://"+filepath.ToSlash(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	opts := extract.Options{DocTypes: []stage.DocType{stage.Invoice}, RunID: "bench", Force: true}
	var staged int64
	b.ReportAllocs()
	for b.Loop() {
		m, err := extract.Run(context.Background(), e.client, st, hour(22), opts)
		if err != nil {
			b.Fatal(err)
		}
		staged = m.Tables["invoices"].Rows
	}
	b.ReportMetric(float64(staged*int64(b.N))/b.Elapsed().Seconds(), "invoices/s")
}
