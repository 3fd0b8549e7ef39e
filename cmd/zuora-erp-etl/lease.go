package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// Bounds of --lease-ttl: a lease shorter than a second cannot be renewed
// reliably; one longer than an hour keeps a killed writer's stage blocked.
const (
	minLeaseTTL = time.Second
	maxLeaseTTL = time.Hour
)

// registerLease adds --lease-ttl to a command that writes the stage.
func (s *settings) registerLease(fs *flag.FlagSet, e *env) {
	def := e.getenv("ETL_LEASE_TTL")
	if def == "" {
		def = stage.DefaultLeaseTTL.String()
	}
	fs.StringVar(&s.leaseTTL, "lease-ttl", def, "how long the stage's lease lives without renewal: the longest a killed writer blocks the stage (env ETL_LEASE_TTL)")
}

// finishLease validates --lease-ttl into the configuration.
func (s *settings) finishLease() error {
	if s.leaseTTL == "" {
		return nil // a command that does not write
	}
	d, err := time.ParseDuration(s.leaseTTL)
	if err != nil || d < minLeaseTTL || d > maxLeaseTTL {
		return &pipeline.ConfigError{Msg: fmt.Sprintf("--lease-ttl %q (or ETL_LEASE_TTL): want a duration from %s to %s, such as %s", s.leaseTTL, minLeaseTTL, maxLeaseTTL, stage.DefaultLeaseTTL)}
	}
	s.cfg.LeaseTTL = d
	return nil
}

// leaseFailure prints a lease error and returns exit status 4, or returns
// false when err is not about the lease.
func leaseFailure(e *env, err error) (int, bool) {
	stageURL := stageURLOf(err)
	var held *stage.LeaseHeldError
	var lost *stage.LeaseLostError
	switch {
	case errors.As(err, &held):
		fmt.Fprintf(e.stderr, "zuora-erp-etl: %s\n", held.Error())
		fmt.Fprintln(e.stderr, "nothing was done; try again later (a schedule tries again at its next tick)")
		fmt.Fprintf(e.stderr, "if that process is gone (killed), its lease expires by itself at %s; to free the stage now: %s\n",
			held.Lease.ExpiresAt.UTC().Format(time.RFC3339), breakCommand(stageURL, held.Lease.Holder.RunID))
	case errors.As(err, &lost):
		fmt.Fprintf(e.stderr, "zuora-erp-etl: %s\n", lost.Error())
		var se *pipeline.StepError
		if errors.As(err, &se) {
			fmt.Fprintf(e.stderr, "stopped during the %s of window %s; kept: %s\n", se.Step, se.Window.ID(), se.Kept)
		}
		fmt.Fprintf(e.stderr, "every step is safe to repeat: see who holds the stage with %s, and run again once it is free\n", leaseCommand(stageURL, "show"))
	default:
		return 0, false
	}
	return exitLeaseHeld, true
}

// stageURLOf returns the stage a lease error is about, for the commands it prints.
func stageURLOf(err error) string {
	var held *stage.LeaseHeldError
	var lost *stage.LeaseLostError
	switch {
	case errors.As(err, &held):
		return held.StageURL
	case errors.As(err, &lost):
		return lost.StageURL
	}
	return ""
}

func breakCommand(stageURL, runID string) string {
	cmd := leaseCommand(stageURL, "break")
	if runID != "" {
		cmd += " --run-id " + runID
	}
	return cmd
}

// leaseCommand renders `zuora-erp-etl lease SUB` for the stage, naming it
// unless it is the default one; credentials in the URL are left out.
func leaseCommand(stageURL, sub string) string {
	cmd := "zuora-erp-etl lease " + sub
	if stageURL != "" && stageURL != defaultStage {
		cmd += " --stage " + shellQuote(stageURL)
	}
	return cmd
}

const defaultStage = "file://./stage"

// shellQuote quotes s for a POSIX shell when it holds more than safe characters.
func shellQuote(s string) string {
	safe := func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@%+,", r)
	}
	if s != "" && strings.IndexFunc(s, func(r rune) bool { return !safe(r) }) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func cmdLease(ctx context.Context, args []string, e *env) int {
	l, code, ok := parseLease(args, e)
	if !ok {
		return code
	}
	ro, err := stage.Open(ctx, l.stageURL, stage.ReadOnly())
	var none *stage.NoStageError
	if errors.As(err, &none) {
		return fail(e, &pipeline.ConfigError{Msg: none.Error() + "; check --stage (ETL_STAGE)"})
	}
	if err != nil {
		return fail(e, err)
	}
	defer ro.Close()
	cur, found, err := ro.CurrentLease(ctx)
	if err != nil {
		return fail(e, err)
	}
	now := time.Now()
	if l.sub == "show" {
		printLease(e, cur, found, now)
		return exitOK
	}
	if !found || cur.ReleasedAt != nil {
		fmt.Fprintln(e.stdout, "the stage's lease is free; nothing to break")
		return exitOK
	}
	return l.breakLease(ctx, e, cur, ro.CommandURL(), now)
}

// leaseCmd is what the lease command was asked: show or break, on which
// stage, and for break the run id the lease must be held by ("" for any).
type leaseCmd struct {
	sub, stageURL, runID string
}

// parseLease reads the lease command's arguments; ok is false when the
// command ends there, with code.
func parseLease(args []string, e *env) (l leaseCmd, code int, ok bool) {
	const synopsis = `lease show|break [--stage URL] [--run-id ID]

One writer at a time works on a stage: run, each schedule tick, extract, transform and load take the
stage's lease and give it back when done; query and status never take it.
  show   who holds the lease, since when, and when it expires unless renewed
  break  free the stage now, e.g. after the holder was killed (its lease would expire by itself
         after --lease-ttl). If the holder still runs, it stops before its next write.`
	fs := newFlagSet("lease", synopsis)
	stageDefault := e.getenv("ETL_STAGE")
	if stageDefault == "" {
		stageDefault = defaultStage
	}
	stageURL := fs.String("stage", stageDefault, "stage bucket URL (env ETL_STAGE)")
	runID := fs.String("run-id", "", "break: only if the lease is held by this run id (as lease show or the refusal printed)")
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		l.sub, args = args[0], args[1:]
	}
	if code, ok := parse(fs, args, e); !ok {
		return l, code, false
	}
	rest := fs.Args()
	if l.sub == "" && len(rest) > 0 {
		l.sub, rest = rest[0], rest[1:]
	}
	if l.sub != "show" && l.sub != "break" || len(rest) > 0 {
		fmt.Fprintf(e.stderr, "zuora-erp-etl: lease wants show or break (then its flags); got %q\n", strings.Join(append([]string{l.sub}, rest...), " "))
		return l, exitUsage, false
	}
	l.stageURL, l.runID = *stageURL, *runID
	return l, 0, true
}

// breakLease breaks the live or expired lease cur, unless another run than
// the one asked for holds it or it changes hands meanwhile; shown is the
// stage as commands name it.
func (l leaseCmd) breakLease(ctx context.Context, e *env, cur stage.LeaseRecord, shown string, now time.Time) int {
	if l.runID != "" && cur.Holder.RunID != l.runID {
		fmt.Fprintf(e.stderr, "zuora-erp-etl: the lease is held by %s, not by %s: nothing broken; see %s\n", cur.Holder, l.runID, leaseCommand(shown, "show"))
		return exitLeaseHeld
	}
	st, err := stage.Open(ctx, l.stageURL)
	if err != nil {
		return fail(e, err)
	}
	defer st.Close()
	broken, err := st.BreakLease(ctx, cur.Generation, stage.Holder{Command: "lease break"})
	if errors.Is(err, stage.ErrLeaseChanged) {
		fmt.Fprintf(e.stderr, "zuora-erp-etl: the lease changed hands while it was being broken: nothing broken; see %s\n", leaseCommand(shown, "show"))
		return exitLeaseHeld
	}
	if err != nil {
		return fail(e, err)
	}
	state := "expired at " + broken.ExpiresAt.UTC().Format(time.RFC3339)
	if broken.Live(now) {
		state = "live until " + broken.ExpiresAt.UTC().Format(time.RFC3339) + "; if that process still runs, it stops before its next write"
	}
	fmt.Fprintf(e.stdout, "broke the lease of %s, held since %s (%s); the stage is free\n",
		broken.Holder, broken.AcquiredAt.UTC().Format(time.RFC3339), state)
	return exitOK
}

func printLease(e *env, cur stage.LeaseRecord, found bool, now time.Time) {
	at := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	switch {
	case !found:
		fmt.Fprintln(e.stdout, "the stage's lease is free: no writer has taken it yet")
	case cur.Broke != nil:
		fmt.Fprintf(e.stdout, "the stage's lease is free: %s broke the lease of %s at %s\n", cur.Holder, cur.Broke, at(cur.AcquiredAt))
	case cur.ReleasedAt != nil:
		fmt.Fprintf(e.stdout, "the stage's lease is free: last held by %s from %s, given back at %s\n", cur.Holder, at(cur.AcquiredAt), at(*cur.ReleasedAt))
	case !cur.Live(now):
		fmt.Fprintf(e.stdout, "the stage's lease is free: %s held it from %s until it expired at %s without being given back (killed or stalled); the next writer takes it over\n",
			cur.Holder, at(cur.AcquiredAt), at(cur.ExpiresAt))
	default:
		fmt.Fprintf(e.stdout, "held by %s since %s; last renewed %s; expires %s unless renewed (generation %d, ttl %s)\n",
			cur.Holder, at(cur.AcquiredAt), at(cur.RenewedAt), at(cur.ExpiresAt), cur.Generation, cur.TTL)
	}
}
