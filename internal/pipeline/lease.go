package pipeline

import (
	"context"

	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// takeLease takes the stage's lease before command writes anything, so that
// one writer at a time works on a stage; release gives it back. Another
// holder is a *stage.LeaseHeldError; once the lease is lost, the stage refuses
// every write with a *stage.LeaseLostError.
func (p *Pipeline) takeLease(ctx context.Context, command string) (release func(), err error) {
	l, err := p.st.AcquireLease(ctx, stage.LeaseOptions{
		TTL:    p.cfg.LeaseTTL,
		Holder: stage.Holder{RunID: p.cfg.RunID, Command: command},
		Logger: p.cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	p.cfg.Logger.Debug("took the stage's lease", "generation", l.Record().Generation, "expires_at", l.Record().ExpiresAt)
	return func() {
		if err := l.Release(ctx); err != nil {
			p.cfg.Logger.Warn("could not give the stage's lease back", "err", err)
		}
	}, nil
}
