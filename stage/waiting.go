package stage

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"
)

// WaitingIndexKey holds the windows whose lines the load held back on what
// other windows hold (docs/design.md "AR pipeline", "Load").
const WaitingIndexKey = "state/waiting.json"

// WaitingIndex lists the windows with lines held back, so that the pipeline
// loads one again as soon as what it waits on is confirmed, without reading
// every window. Its size follows the backlog, not the history.
type WaitingIndex struct {
	UpdatedAt time.Time       `json:"updated_at"`
	Windows   []WaitingWindow `json:"windows"`
}

// WaitingWindow is one window's held lines, by what holds them: WaitsOn the
// ids its waiting lines wait on, RejectedOn the rejected ids its
// dependency_rejected lines name (the load manifest's fields of that name).
type WaitingWindow struct {
	Window     string   `json:"window"`
	WaitsOn    []string `json:"waits_on,omitempty"`
	RejectedOn []string `json:"rejected_on,omitempty"`
}

// Set records w's held lines from its load manifest m, or forgets w when none is held.
func (x *WaitingIndex) Set(w Window, m LoadManifest) {
	x.Windows = slices.DeleteFunc(x.Windows, func(e WaitingWindow) bool { return e.Window == w.ID() })
	if len(m.WaitsOn) > 0 || len(m.RejectedOn) > 0 {
		x.Windows = append(x.Windows, WaitingWindow{Window: w.ID(), WaitsOn: m.WaitsOn, RejectedOn: m.RejectedOn})
	}
	slices.SortFunc(x.Windows, func(a, b WaitingWindow) int { return strings.Compare(a.Window, b.Window) })
}

// ReadWaitingIndex reads the waiting index; found is false when the stage has none yet.
func (s *Stage) ReadWaitingIndex(ctx context.Context) (idx WaitingIndex, found bool, err error) {
	err = s.ReadJSON(ctx, WaitingIndexKey, &idx)
	if errors.Is(err, ErrNotFound) {
		return WaitingIndex{}, false, nil
	}
	return idx, err == nil, err
}

// WriteWaitingIndex replaces the waiting index.
func (s *Stage) WriteWaitingIndex(ctx context.Context, idx WaitingIndex) error {
	if idx.Windows == nil {
		idx.Windows = []WaitingWindow{}
	}
	return s.WriteJSON(ctx, WaitingIndexKey, idx)
}
