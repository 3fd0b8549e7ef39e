package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuora"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
	"github.com/zuora-erp-etl/zuora-erp-etl/transform"
)

// Check is one finding of CheckSetup: what was checked, what it found, and
// the error when it failed (a *ConfigError for a setting to fix, a
// *stage.LeaseHeldError for a held lease, anything else for an outage).
type Check struct {
	Name   string // "settings", "zuora", "erp", "stage", "lease"
	Detail string
	Err    error
	Took   time.Duration
}

// CheckSetup checks everything a run needs without changing anything: the
// settings, a Zuora token and one page of one document, the ERP's harmless
// read, that the stage takes a write (deleted at once) and that its lease is
// free. Every check runs; each says what it found.
func (p *Pipeline) CheckSetup(ctx context.Context) []Check {
	checks := []struct {
		name string
		f    func(context.Context) (string, error)
	}{
		{"settings", p.checkSettings},
		{"zuora", p.checkZuora},
		{"erp", p.checkERP},
		{"stage", p.checkStage},
		{"lease", p.checkLease},
	}
	out := make([]Check, 0, len(checks))
	for _, c := range checks {
		t := time.Now()
		detail, err := c.f(ctx)
		out = append(out, Check{Name: c.name, Detail: detail, Err: classify(err), Took: time.Since(t)})
	}
	return out
}

// checkSettings checks every setting a run needs, the mapping included.
func (p *Pipeline) checkSettings(context.Context) (string, error) {
	for _, check := range []func() error{p.cfg.needZuora, p.cfg.needERP, p.cfg.checkWindows} {
		if err := check(); err != nil {
			return "", err
		}
	}
	if _, err := transform.MappingDigest(p.cfg.SQLDir); err != nil {
		return "", &ConfigError{Msg: fmt.Sprintf("mapping: %v", err), Settings: []string{"SQLDir"}}
	}
	return "every setting is valid", nil
}

// checkZuora fetches a token and reads one page of one record of the first
// document type the run moves.
func (p *Pipeline) checkZuora(ctx context.Context) (string, error) {
	if err := p.cfg.needZuora(); err != nil {
		return "", err
	}
	zc, err := p.zuoraClient()
	if err != nil {
		return "", err
	}
	types := stage.Only(p.cfg.DocTypes, stage.KindDocument) // the reversal has no Zuora object
	if len(types) == 0 {
		types = stage.Documents()
	}
	obj := types[0].Object()
	n := 0
	for _, err := range zc.Records(ctx, zuora.Query{Object: obj, Fields: []string{"id"}, PageSize: 1}) {
		if err != nil {
			return "", err
		}
		n++
		break // one record of one page is enough
	}
	return fmt.Sprintf("token fetched; read one page of %s (%d record)", obj, n), nil
}

// checkERP asks the ERP its harmless read with the token.
func (p *Pipeline) checkERP(ctx context.Context) (string, error) {
	if err := p.cfg.needERP(); err != nil {
		return "", err
	}
	ec, err := p.erpClient()
	if err != nil {
		return "", err
	}
	if err := ec.Ping(ctx); err != nil {
		return "", err
	}
	return "the ERP answered its harmless read (GET /api/ping) with the token", nil
}

// checkStage writes and deletes a probe object in the stage.
func (p *Pipeline) checkStage(ctx context.Context) (string, error) {
	if err := p.st.CheckWritable(ctx); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s takes writes (a probe object written and deleted)", p.st.URL()), nil
}

// checkLease says whether the stage's lease is free.
func (p *Pipeline) checkLease(ctx context.Context) (string, error) {
	cur, found, err := p.st.CurrentLease(ctx)
	switch {
	case err != nil:
		return "", err
	case found && cur.Live(p.cfg.Now()):
		return "", &stage.LeaseHeldError{Stage: p.st.URL(), StageURL: p.st.CommandURL(), Lease: cur}
	case found:
		return fmt.Sprintf("free (last held by %s)", cur.Holder), nil
	}
	return "free (never taken)", nil
}
