package main

import (
	"context"
	"fmt"
	"time"
)

const pruneSynopsis = `prune --before DATE [--apply] [--stage URL]

Removes the windows that end at or before DATE whose load is complete, whose every document is
marked transferred and that hold no outstanding reject: their raw snapshot, transform outputs and
manifests, and the records of runs started before DATE. The ledger of every window stays (it proves
that each document was posted once) and so does state/. Without --apply it only says what it
would remove. It takes the stage's lease, and refuses a DATE less than a day before the high water.`

// dateFlag is a time given as RFC3339 or as a date (midnight UTC).
type dateFlag struct{ t time.Time }

func (f *dateFlag) String() string {
	if f.t.IsZero() {
		return ""
	}
	return f.t.Format(time.RFC3339)
}

func (f *dateFlag) Set(s string) error {
	for _, layout := range []string{time.RFC3339, time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			f.t = t.UTC()
			return nil
		}
	}
	return fmt.Errorf("want an RFC3339 time such as 2026-11-01T00:00:00Z or a date such as 2026-11-01")
}

func cmdPrune(ctx context.Context, args []string, e *env) int {
	s := newSettings("prune", e)
	if code, ok := s.parse(args, e); !ok {
		return code
	}
	if err := s.finish(e); err != nil {
		return s.fail(e, err)
	}
	p, err := s.open(ctx, e)
	defer s.close()
	if err != nil {
		return s.fail(e, err)
	}
	rep, err := p.Prune(ctx, s.before.t, s.apply)
	if rep != nil {
		verb := "would remove"
		if s.apply {
			verb = "removed"
		}
		for _, w := range rep.Pruned {
			fmt.Fprintf(e.stdout, "%s window %s: %d objects, %d bytes\n", verb, w.Window.ID(), len(w.Keys), w.Bytes)
		}
		for _, k := range rep.Kept {
			fmt.Fprintf(e.stdout, "kept window %s: %s\n", k.Window.ID(), k.Why)
		}
		n, bytes := rep.Objects()
		fmt.Fprintf(e.stdout, "%s %d window(s) and %d run record(s): %d objects, %d bytes; kept %d older window(s); the ledger and state/ are never pruned\n",
			verb, len(rep.Pruned), len(rep.Runs), n, bytes, len(rep.Kept))
		if !s.apply && len(rep.Pruned)+len(rep.Runs) > 0 {
			fmt.Fprintf(e.stdout, "nothing was deleted (a dry run); to delete: %s --before %s --apply\n", "zuora-erp-etl prune", s.before.String())
		}
	}
	if err != nil {
		return s.fail(e, err)
	}
	return exitOK
}
