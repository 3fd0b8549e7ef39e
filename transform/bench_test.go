package transform

import (
	"context"
	"log/slog"
	"testing"
)

// BenchmarkRunLarge transforms a window of 10,000 invoices with 5 items each
// and 10,000 payments, the volume of a busy hour.
func BenchmarkRunLarge(b *testing.B) {
	ctx := context.Background()
	st := largeStage(b, 10000, 5)
	opts := Options{Force: true, Logger: slog.New(slog.DiscardHandler)}
	for b.Loop() {
		m, err := Run(ctx, st, testWindow, opts)
		if err != nil {
			b.Fatal(err)
		}
		var ready int64
		for _, r := range m.Totals {
			ready += r.Ready.Count
		}
		if ready != 20000 {
			b.Fatalf("%d ready documents, want 20000", ready)
		}
	}
}
