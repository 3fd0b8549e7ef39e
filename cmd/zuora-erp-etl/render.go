package main

import (
	"errors"
	"flag"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/kballard/go-shellquote"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuora"
)

// command renders step as a command line that runs verbatim: the command,
// its window or range, and every setting of this invocation that differs from
// its built-in default (whether a flag or the environment set it) and that
// the command accepts, secrets and per-invocation flags left out; the
// configuration file's settings come with --config.
func (s *settings) command(step pipeline.Step) string {
	args := []string{"zuora-erp-etl", step.Command}
	switch step.Command {
	case "transform", "load":
		args = append(args, "--window", step.Window.ID())
	case "extract":
		args = append(args, "--from", step.From.UTC().Format(time.RFC3339), "--to", step.To.UTC().Format(time.RFC3339))
		if step.Force {
			args = append(args, "--force")
		}
	case "run":
		if !step.Until.IsZero() {
			args = append(args, "--until", step.Until.UTC().Format(time.RFC3339))
		}
	}
	return shellquote.Join(append(args, s.carried(step.Command)...)...)
}

// query renders a query command over this invocation's stage.
func (s *settings) query(sql string) string {
	args := append([]string{"zuora-erp-etl", "query"}, s.carried("query")...)
	return shellquote.Join(append(args, sql)...)
}

// carried returns, as --name=value arguments, the settings of this invocation
// that command target needs: every flag target has too (with the same kind of
// value) whose value differs from target's built-in default.
func (s *settings) carried(target string) []string {
	if s == nil || s.fs == nil {
		return nil
	}
	if _, ok := pipelineCommands[target]; !ok {
		return nil // demo and sim own their settings
	}
	defaults := newSettings(target, &env{getenv: func(string) string { return "" }}).fs
	windowID := pipelineCommands[target].takes&takesWindowID != 0 // the step names the window
	var out []string
	s.fs.VisitAll(func(f *flag.Flag) {
		d := defaults.Lookup(f.Name)
		if d == nil || secretFlags[f.Name] || perInvocationFlags[f.Name] || windowID && f.Name == "window" ||
			reflect.TypeOf(d.Value) != reflect.TypeOf(f.Value) {
			return
		}
		if f.Value.String() == d.DefValue || strings.HasPrefix(s.sources[f.Name], "file ") {
			return // a setting from the configuration file comes again with --config
		}
		if m, ok := f.Value.(interface{ parts() []string }); ok {
			for _, v := range m.parts() {
				out = append(out, "--"+f.Name+"="+v)
			}
			return
		}
		out = append(out, "--"+f.Name+"="+f.Value.String())
	})
	return out
}

// setting names a pipeline.Config field as the user sets it.
func setting(field string) string {
	f, ok := settingFlags[field]
	switch {
	case !ok:
		return field
	case f.env == "":
		return "--" + f.flag
	}
	return fmt.Sprintf("%s (--%s)", f.env, f.flag)
}

// configMessage renders a configuration error on one line: what is wrong,
// the settings to check, and the command that does what the user may have meant.
func (s *settings) configMessage(ce *pipeline.ConfigError) string {
	var names []string
	flagsOnly := true
	for _, f := range ce.Settings {
		names = append(names, setting(f))
		flagsOnly = flagsOnly && settingFlags[f].env == ""
	}
	var msg string
	switch {
	case ce.Missing && len(ce.Settings) > 0:
		f := settingFlags[ce.Settings[0]]
		msg = fmt.Sprintf("%s is not set (set the environment variable or pass --%s)", f.env, f.flag)
		if f.env == "" {
			msg = fmt.Sprintf("--%s is not set", f.flag)
		}
	case len(names) > 0 && flagsOnly:
		msg = strings.Join(names, " and ") + ": " + ce.Msg
	case len(names) > 0:
		msg = ce.Msg + "; check " + strings.Join(names, " and ")
	default:
		msg = ce.Msg
	}
	if ce.Next != nil {
		msg += "; " + ce.NextFor + ": " + s.command(*ce.Next)
	}
	return msg
}

// fail prints err and returns its exit status: 2 for configuration errors
// (one line, no resume hint), 1 for the rest: the root cause first, then
// what was kept, then the command that resumes.
func (s *settings) fail(e *env, err error) int {
	if code, ok := leaseFailure(e, err); ok {
		return code
	}
	var ce *pipeline.ConfigError
	if errors.As(err, &ce) {
		fmt.Fprintf(e.stderr, "zuora-erp-etl: %s\n", s.configMessage(ce))
		return exitUsage
	}
	var se *pipeline.StepError
	if errors.As(err, &se) {
		fmt.Fprintf(e.stderr, "zuora-erp-etl: %s\nkept: %s\nresume with: %s\n", rootFirst(se), se.Kept, s.command(se.Resume))
		return exitFailed
	}
	fmt.Fprintf(e.stderr, "zuora-erp-etl: %s\n", oneLine(err))
	if again := s.again(); again != nil {
		fmt.Fprintf(e.stderr, "resume with: %s (every step is safe to repeat)\n", s.command(*again))
	}
	return exitFailed
}

// again is the command that repeats this invocation, or nil for one that
// writes nothing (status, query) or belongs to no stage.
func (s *settings) again() *pipeline.Step {
	if s == nil {
		return nil
	}
	switch s.name {
	case "run", "schedule":
		return &pipeline.Step{Command: "run", Until: s.until.t}
	case "extract":
		return &pipeline.Step{Command: "extract", From: s.from.t, To: s.to.t, Force: s.force}
	case "transform", "load":
		return &pipeline.Step{Command: s.name, Window: s.window()}
	}
	return nil
}

// rootFirst renders a step's failure with its root cause on the first line,
// right after the step and window: Zuora's answer when Zuora failed, with the
// chain below the window's context on a detail line; else the error as the
// step gave it, which names the window once.
func rootFirst(se *pipeline.StepError) string {
	full := oneLine(se.Err)
	var root error
	var te *zuora.TokenError
	var rl *zuora.RateLimitError
	var ze *zuora.Error
	switch {
	case errors.As(se.Err, &rl):
		root = rl // which limit, when it resets: more than the 429 it wraps
	case errors.As(se.Err, &te):
		root = te
	case errors.As(se.Err, &ze):
		root = ze
	default:
		return full
	}
	detail := full
	if below := errors.Unwrap(se.Err); below != nil {
		detail = oneLine(below) // the first line names the step and window already
	}
	return fmt.Sprintf("%s window %s: %s\ndetail: %s", se.Step, se.Window.ID(), oneLine(root), detail)
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", " ; ")), " ")
}

// outcome prints the report and returns the command's exit status: 0 done,
// 1 failed or unfinished (with the command that resumes), 2 configuration,
// 3 finished with documents rejected, which need a person, 4 the lease is held.
func (s *settings) outcome(e *env, rep *pipeline.Report, err error) int {
	if rep != nil && (err == nil || len(rep.Windows) > 0) {
		rep.Print(e.stdout)
	}
	if err != nil {
		return s.fail(e, err)
	}
	if rep == nil {
		return exitOK
	}
	if !rep.Balanced() {
		fmt.Fprintf(e.stderr, "zuora-erp-etl: the report does not balance: some documents are unaccounted for; see: %s\n", s.command(pipeline.Step{Command: "status"}))
		return exitFailed
	}
	if rep.Unfinished() {
		fmt.Fprintf(e.stderr, "zuora-erp-etl: some documents are not yet posted or not yet marked\nresume with: %s\n", s.command(*s.again()))
		return exitFailed
	}
	if l := rep.Left; l != nil {
		fmt.Fprintf(e.stderr, "zuora-erp-etl: %d more window(s) are due (at most %d per run); the next run takes them, or now: %s\n",
			l.Windows, l.Max, s.command(l.Next))
	}
	if rep.NeedsAttention() {
		fmt.Fprintf(e.stderr, "zuora-erp-etl: some documents were rejected and need attention; list them with: %s\n", s.command(pipeline.Step{Command: "rejects"}))
		fmt.Fprintln(e.stderr, "fixed in Zuora (the account is enough) or in the mapping (--sql-dir), the next run posts them; one that must never be posted: zuora-erp-etl rejects ack --id ZUORA_ID --reason TEXT")
		return exitRejected
	}
	return exitOK
}

// fail is settings.fail for the commands that have no pipeline settings (demo, sim).
func fail(e *env, err error) int { return (*settings)(nil).fail(e, err) }
