// Command zuora-erp-etl makes an ERP the Accounts Receivable master for what
// Zuora Billing produces: extract to Parquet, transform with DuckDB SQL, load
// exactly once. Run it with no arguments for the list of commands.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/retry"
)

// Exit statuses, part of the interface contract, one meaning for every
// command (README "Exit statuses").
const (
	exitOK        = 0 // done, nothing needs attention
	exitFailed    = 1 // failed or unfinished: the message says what was kept and the command that resumes
	exitUsage     = 2 // usage or configuration error: nothing was lost, fix the setting it names
	exitRejected  = 3 // finished, but documents were rejected and need a person
	exitLeaseHeld = 4 // another writer holds the stage: try later
)

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, env *env) int
}

var commands = []command{
	{"run", "process every due window: extract, transform, load", cmdRun},
	{"extract", "extract a range of windows to the stage (backfill; the high water stays)", cmdExtract},
	{"transform", "re-run the transform of one staged window", cmdTransform},
	{"load", "re-run post and write-back for one staged window", cmdLoad},
	{"query", "run DuckDB SQL over every staged window", cmdQuery},
	{"status", "show every window and what is pending", cmdStatus},
	{"rejects", "list the outstanding rejects of every window; rejects ack acknowledges one", cmdRejects},
	{"reconcile", "compare each document's open balance in Zuora with the ERP's (AR parity)", cmdReconcile},
	{"schedule", "run on a cron schedule until stopped", cmdSchedule},
	{"lease", "show or break the stage's lease (one writer per stage)", cmdLease},
	{"runs", "list the recent runs the stage recorded (--json for their records)", cmdRuns},
	{"config", "show every setting and where it came from, or check them all against Zuora, the ERP and the stage", cmdConfig},
	{"prune", "remove old windows whose documents are all posted and marked (dry run unless --apply)", cmdPrune},
	{"version", "print the module version and VCS revision of this binary", cmdVersion},
	{"demo", "run the whole pipeline against built-in Zuora and ERP simulators", cmdDemo},
	{"sim", "serve the Zuora and ERP simulators over HTTP", cmdSim},
	{"bench", "time a peak hour end to end against the simulators in a process of their own", cmdBench},
}

// env is what a command sees of the process: streams and environment.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	now            func() time.Time // nil: the clock
	retry          *retry.Policy    // nil: the default policy toward Zuora and the ERP (tests make it fast)
}

func main() {
	stopProfiles, err := startProfiles(os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "zuora-erp-etl: %v\n", err)
		os.Exit(exitUsage)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	stop := onSignals(cancel)
	code := run(ctx, os.Args[1:], &env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
	stop()
	stopProfiles()
	os.Exit(code)
}

// onSignals cancels the command at the first SIGINT or SIGTERM, so that it
// stops at its next safe point (what a step had committed stays, the ledger
// is flushed, the lease given back); at a second one it exits at once.
func onSignals(cancel context.CancelCauseFunc) (stop func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			fmt.Fprintf(os.Stderr, "zuora-erp-etl: %s: stopping at the next safe point (what is committed stays, the lease is given back); again to exit at once\n", sig)
			cancel(fmt.Errorf("%s received", sig))
		case <-done:
			return
		}
		select {
		case sig := <-sigs:
			fmt.Fprintf(os.Stderr, "zuora-erp-etl: second %s: exiting now\nkept: every step the stage committed before; the window in flight is resumed by the next run (its lease expires by itself after --lease-ttl, or: zuora-erp-etl lease break)\n", sig)
			os.Exit(exitFailed)
		case <-done:
		}
	}()
	return func() {
		close(done)
		signal.Stop(sigs)
	}
}

func run(ctx context.Context, args []string, e *env) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(e.stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, args[1:], e)
		}
	}
	fmt.Fprintf(e.stderr, "zuora-erp-etl: unknown command %q\n", args[0])
	usage(e.stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: zuora-erp-etl <command> [flags]   (zuora-erp-etl <command> --help for its flags)")
	fmt.Fprintln(w)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Settings come from the environment, each overridable by a flag: ZUORA_BASE_URL, ZUORA_CLIENT_ID,")
	fmt.Fprintln(w, "ZUORA_CLIENT_SECRET (or ZUORA_CLIENT_SECRET_FILE), ERP_BASE_URL, ERP_TOKEN (or ERP_TOKEN_FILE), ETL_STAGE")
	fmt.Fprintln(w, "(default file://./stage); below the environment, a YAML file of them (--config or ETL_CONFIG; see config show).")
	fmt.Fprintln(w, "Exit status: 0 done; 1 failed, resume with the command printed; 2 usage or configuration error;")
	fmt.Fprintln(w, "3 finished, but documents were rejected and need a person; 4 another writer holds the stage")
	fmt.Fprintln(w, "(try later; zuora-erp-etl lease show names it).")
}
