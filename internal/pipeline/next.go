package pipeline

import (
	"errors"
	"fmt"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/erp"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuora"
	"github.com/zuora-erp-etl/zuora-erp-etl/load"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// Step is a command the user can run next, as data: which command and which
// window or range. cmd renders it as a command line with the settings it needs.
type Step struct {
	Command  string       // "run", "extract", "transform", "load" or "demo"
	Window   stage.Window // transform and load: the window
	From, To time.Time    // extract: the range
	Force    bool         // extract: take windows again that are already staged
	Until    time.Time    // run: the end the interrupted run was given, if any
}

// StepError is a step that failed for a window: exit status 1. Err is the
// root cause, whose outermost layer names the window, once; Kept says what the
// stage holds; Resume is the command that carries on from there.
type StepError struct {
	Step   string // "extract", "transform" or "load"
	Window stage.Window
	Err    error
	Kept   string
	Resume Step
}

func (e *StepError) Error() string { return fmt.Sprintf("%v\nkept: %s", e.Err, e.Kept) }

func (e *StepError) Unwrap() error { return e.Err }

// stepError is the failure of step for w. When err is a failure a step
// below already described, its cause and what it kept are said once, as it
// said them; resume is the caller's, which knows what the user ran.
func stepError(step string, w stage.Window, err error, kept string, resume Step) error {
	if se, ok := err.(*StepError); ok {
		err, kept = se.Err, se.Kept
	}
	return &StepError{Step: step, Window: w, Err: err, Kept: kept, Resume: resume}
}

// loadKept is what a failed load kept, as the load says, or a general account.
func loadKept(err error) string {
	var le *load.Error
	if errors.As(err, &le) && le.Kept != "" {
		return le.Kept
	}
	return "the window's ledger as it was before this load (confirmed documents are not posted again)"
}

// classify turns the failures that are settings to fix, however deep in err,
// into a *ConfigError: Zuora refusing the client credentials, the stage
// refusing (or not finding) cloud credentials.
func classify(err error) error {
	if err == nil || IsConfigError(err) {
		return err
	}
	var ce *zuora.CredentialsError
	if errors.As(err, &ce) {
		return &ConfigError{Msg: "Zuora's token endpoint refused the client credentials (" + ce.Err.Error() + ")",
			Settings: []string{"ZuoraClientID", "ZuoraClientSecret"}}
	}
	var re *erp.RefusedError
	if errors.As(err, &re) {
		return &ConfigError{Msg: fmt.Sprintf("%v: the ERP refuses the token or has no such endpoint; the window's ledger keeps every answer received before it", re),
			Settings: []string{"ERPBaseURL", "ERPToken"}}
	}
	if stage.IsAccessDenied(err) {
		return &ConfigError{Msg: "the stage refused access, or no cloud credentials were found (" + err.Error() + ")",
			Settings: []string{"StageURL"}}
	}
	return err
}
