package stage

import (
	"context"
	"strings"
)

// RunsPrefix holds the run history: one record per run (see RunKey).
const RunsPrefix = "runs/"

// RunKey is where the record of run runID is kept. Run ids sort by their
// start time, so the keys list in run order.
func RunKey(runID string) string { return RunsPrefix + runID + ".json" }

// RunIDs returns the id of every run recorded in the stage, oldest first.
func (s *Stage) RunIDs(ctx context.Context) ([]string, error) {
	objs, err := s.List(ctx, RunsPrefix)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		id, ok := strings.CutSuffix(strings.TrimPrefix(o.Key, RunsPrefix), ".json")
		if ok && id != "" && !strings.Contains(id, "/") {
			out = append(out, id)
		}
	}
	return out, nil
}
