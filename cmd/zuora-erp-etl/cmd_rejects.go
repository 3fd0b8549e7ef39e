package main

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
)

const rejectsSynopsis = `rejects [--stage URL]
       zuora-erp-etl rejects ack --id ZUORA_ID --reason TEXT [--stage URL]

Lists the outstanding rejects of every window: documents whose latest version was rejected by the
mapping, quarantined as MALFORMED or refused by the ERP (ERP_REJECTED), and that nothing resolved
since. Every run re-checks them against Zuora and posts those that now map or whose payload changed
(fix the account in Zuora, or the mapping with --sql-dir).
Exit status 3 while any is outstanding, 0 when none is.

"rejects ack" acknowledges one that must never go to the ERP: it is recorded in the stage with who
(user@host) and when, and from the next run on it is reported as skipped (ACKNOWLEDGED) with the reason.`

func cmdRejects(ctx context.Context, args []string, e *env) int {
	if len(args) > 0 && args[0] == "ack" {
		return cmdRejectsAck(ctx, args[1:], e)
	}
	s := newSettings("rejects", e)
	fs := s.fs
	if code, ok := parseLayered(s, args, e); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fail(e, &pipeline.ConfigError{Msg: fmt.Sprintf("rejects: unexpected %q; want no argument, or: ack --id ZUORA_ID --reason TEXT", strings.Join(fs.Args(), " "))})
	}
	s.cfg.ReadOnly = true // listing never writes, and a missing stage is a typo, not an empty one
	p, err := s.open(ctx, e)
	defer s.close()
	if err != nil {
		return fail(e, err)
	}
	rs, err := p.Rejects(ctx)
	if err != nil {
		return fail(e, err)
	}
	if len(rs) == 0 {
		fmt.Fprintln(e.stdout, "no outstanding rejects")
		return exitOK
	}
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "window\ttype\tid\tnumber\treason\tmessage\tfirst seen\tlast seen")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Window, r.DocType, r.ZuoraID, dash(r.Number), r.ReasonCode,
			strings.ReplaceAll(r.Message, "\n", " "), r.FirstSeen.Format(time.RFC3339), r.LastSeen.Format(time.RFC3339))
	}
	tw.Flush()
	fmt.Fprintf(e.stdout, "%d outstanding rejects. Fixed in Zuora, they are posted by the next run; one that must never go to the ERP:\n  zuora-erp-etl rejects ack --id ZUORA_ID --reason TEXT\n", len(rs))
	return exitRejected
}

func cmdRejectsAck(ctx context.Context, args []string, e *env) int {
	s := newSettings("rejects ack", e)
	fs := s.fs
	id := fs.String("id", "", "the Zuora id of the outstanding reject (see zuora-erp-etl rejects)")
	reason := fs.String("reason", "", "why it must never go to the ERP (kept in the stage and in the skip's message)")
	if code, ok := parseLayered(s, args, e); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fail(e, &pipeline.ConfigError{Msg: fmt.Sprintf("rejects ack: unexpected %q; quote the reason: --reason \"TEXT\"", strings.Join(fs.Args(), " "))})
	}
	p, err := s.open(ctx, e)
	defer s.close()
	if err != nil {
		return fail(e, err)
	}
	a, err := p.Acknowledge(ctx, *id, *reason, whoAmI(e))
	if err != nil {
		return fail(e, err)
	}
	fmt.Fprintf(e.stdout, "acknowledged %s %s (%s) of window %s, rejected %s, by %s at %s; the next run reports it as skipped (ACKNOWLEDGED)\n",
		a.DocType, dash(a.Number), a.ZuoraID, a.Window, a.ReasonCode, a.By, a.At.Format(time.RFC3339))
	return exitOK
}

// whoAmI names the person at the terminal as user@host.
func whoAmI(e *env) string {
	name := e.getenv("USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	if name == "" {
		name = "unknown"
	}
	return name + "@" + host
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
