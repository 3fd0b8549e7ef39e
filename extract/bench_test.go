package extract

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// BenchmarkRun measures staging one window of invoices with three items each;
// memory per run should stay proportional to RowGroupRows, not to the window.
func BenchmarkRun(b *testing.B) {
	f := newFake()
	f.account("a1", "A-1", "ERP-1")
	const n = 2000
	for i := range n {
		f.invoice(fmt.Sprintf("inv%05d", i), "a1", at(22, 0, 0).Add(time.Duration(i)*time.Second),
			line{"10.5", "1.05"}, line{"3.333333333", "0"}, line{"1", "0.1"})
	}
	b.ReportAllocs()
	for b.Loop() {
		st, err := stage.Open(context.Background(), fmt.Sprintf("mem://extract-bench-%d", stageSeq.Add(1)))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Run(context.Background(), f, st, w1, Options{RowGroupRows: 1000}); err != nil {
			b.Fatal(err)
		}
		st.Close()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "invoices/s")
}
