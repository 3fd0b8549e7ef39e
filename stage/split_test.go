package stage_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

func TestSplitAlignsWindowsToTheirSize(t *testing.T) {
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name        string
		from, until string
		size        time.Duration
		want        []string
	}{
		{"whole hours", "2026-11-25T00:00:00Z", "2026-11-25T03:00:00Z", time.Hour,
			[]string{"20261125T000000Z-20261125T010000Z", "20261125T010000Z-20261125T020000Z", "20261125T020000Z-20261125T030000Z"}},
		{"realigns after a partial window", "2026-11-25T00:55:00Z", "2026-11-25T02:10:00Z", time.Hour,
			[]string{"20261125T005500Z-20261125T010000Z", "20261125T010000Z-20261125T020000Z", "20261125T020000Z-20261125T021000Z"}},
		{"nothing due", "2026-11-25T03:00:00Z", "2026-11-25T03:00:00Z", time.Hour, nil},
		{"less than a second due", "2026-11-25T03:00:00Z", "2026-11-25T03:00:00.900Z", time.Hour, nil},
		{"sub-second bounds become whole seconds", "2026-11-25T02:59:59.250Z", "2026-11-25T03:00:01.900Z", time.Hour,
			[]string{"20261125T025959Z-20261125T030000Z", "20261125T030000Z-20261125T030001Z"}},
		{"until before from", "2026-11-25T03:00:00Z", "2026-11-25T02:00:00Z", time.Hour, nil},
		{"quarter hours", "2026-11-25T00:00:00Z", "2026-11-25T00:30:00Z", 15 * time.Minute,
			[]string{"20261125T000000Z-20261125T001500Z", "20261125T001500Z-20261125T003000Z"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := stage.Split(at(tc.from), at(tc.until), tc.size)
			var got []string
			for _, w := range ws {
				got = append(got, w.ID())
			}
			if len(got) != len(tc.want) {
				t.Fatalf("Split = %v; want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("Split = %v; want %v", got, tc.want)
				}
			}
			for i := 1; i < len(ws); i++ {
				if !ws[i].Start.Equal(ws[i-1].End) {
					t.Fatalf("windows %v and %v leave a gap or overlap", ws[i-1], ws[i])
				}
			}
		})
	}
}

// TestSplitSeqHoldsOneWindowAtATime: walking a year of one-minute windows
// allocates next to nothing, however many windows there are (a slice of them
// would take 25 MB).
func TestSplitSeqHoldsOneWindowAtATime(t *testing.T) {
	from := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	n := 0
	for range stage.SplitSeq(from, from.AddDate(1, 0, 0), time.Minute) {
		n++
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; n != 365*24*60 || grew > 1<<20 {
		t.Fatalf("%d windows in %d bytes; want 525600 in next to nothing", n, grew)
	}
}
