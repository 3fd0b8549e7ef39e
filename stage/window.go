package stage

import (
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"
)

// Window is a half-open interval [Start, End) of Zuora updatedDate values, in UTC.
type Window struct {
	Start time.Time
	End   time.Time
}

const windowIDLayout = "20060102T150405Z"

// NewWindow returns the window [start, end) in UTC, or an error when it is empty.
func NewWindow(start, end time.Time) (Window, error) {
	w := Window{Start: start.UTC(), End: end.UTC()}
	if !w.Start.Before(w.End) {
		return Window{}, fmt.Errorf("window %s to %s is empty", w.Start.Format(time.RFC3339), w.End.Format(time.RFC3339))
	}
	return w, nil
}

// ID names the window in stage keys, e.g. 20261125T220000Z-20261125T230000Z.
// It sorts in time order and contains no characters that Hive-style paths forbid.
func (w Window) ID() string {
	return w.Start.UTC().Format(windowIDLayout) + "-" + w.End.UTC().Format(windowIDLayout)
}

func (w Window) String() string { return w.ID() }

// Contains reports whether t falls inside [Start, End).
func (w Window) Contains(t time.Time) bool {
	return !t.Before(w.Start) && t.Before(w.End)
}

// ParseWindowID is the inverse of Window.ID.
func ParseWindowID(id string) (Window, error) {
	a, b, ok := strings.Cut(id, "-")
	if !ok {
		return Window{}, fmt.Errorf("window id %q: want START-END such as 20261125T220000Z-20261125T230000Z", id)
	}
	start, err := time.Parse(windowIDLayout, a)
	if err != nil {
		return Window{}, fmt.Errorf("window id %q: start: %w", id, err)
	}
	end, err := time.Parse(windowIDLayout, b)
	if err != nil {
		return Window{}, fmt.Errorf("window id %q: end: %w", id, err)
	}
	return NewWindow(start, end)
}

// Split cuts [from, until) into consecutive windows that end on multiples of
// size (so hourly runs make hourly windows even after a partial one), the last
// ending at until. Bounds are whole seconds, the precision of Zuora's
// updatedDate and of window ids.
func Split(from, until time.Time, size time.Duration) []Window {
	return slices.Collect(SplitSeq(from, until, size))
}

// SplitSeq yields the windows of Split one at a time, so that planning a long
// range holds one window in memory, not all of them.
func SplitSeq(from, until time.Time, size time.Duration) iter.Seq[Window] {
	from, until = from.UTC().Truncate(time.Second), until.UTC().Truncate(time.Second)
	return func(yield func(Window) bool) {
		if size <= 0 {
			return
		}
		for start := from; start.Before(until); {
			end := start.Truncate(size).Add(size)
			if end.After(until) {
				end = until
			}
			if !yield(Window{Start: start, End: end}) {
				return
			}
			start = end
		}
	}
}
