package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/config"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

const configSynopsis = `config show|check [--config FILE] [flags]

Settings come, in this order of precedence, from a flag, the environment, the configuration file
(--config FILE or ETL_CONFIG: YAML whose keys are the long flag names, see examples/config.yaml)
and the built-in default. Secrets may come from files: ZUORA_CLIENT_SECRET_FILE, ERP_TOKEN_FILE.
  show   every setting of run and schedule, its value (secrets masked) and where it came from
  check  validate every setting, fetch a Zuora token and read one page, make the ERP's harmless
         read (GET /api/ping), write and delete a probe object in the stage, and check that the
         stage's lease is free; changes nothing. Exit status: 0 when all hold, else the status of
         the first that failed (2 a setting, 1 unreachable, 4 lease held).`

// registerConfig adds --config, the configuration file.
func (s *settings) registerConfig(e *env) {
	s.fs.StringVar(&s.configFile, "config", e.getenv("ETL_CONFIG"), "YAML file of settings keyed by the long flag names; flags and the environment win over it (env ETL_CONFIG)")
}

// flagEnv is the environment variable of each flag that has one.
var flagEnv = func() map[string]string {
	m := map[string]string{"config": "ETL_CONFIG", "audits-dir": "ETL_AUDITS_DIR"}
	for _, f := range settingFlags {
		if f.env != "" {
			m[f.flag] = f.env
		}
	}
	return m
}()

// settingNames is every flag some pipeline command takes: the keys a
// configuration file may hold (config itself excepted).
var settingNames = func() map[string]bool {
	names := map[string]bool{}
	quiet := &env{getenv: func(string) string { return "" }}
	for name := range pipelineCommands {
		newSettings(name, quiet).fs.VisitAll(func(f *flag.Flag) { names[f.Name] = true })
	}
	delete(names, "config")
	return names
}()

// layer records where each flag's value came from and fills the flags that
// neither the command line nor the environment set from the configuration
// file: flag > environment > file > default.
func (s *settings) layer(e *env) error {
	s.fs.Visit(func(f *flag.Flag) { s.sources[f.Name] = "flag" })
	s.fs.VisitAll(func(f *flag.Flag) {
		if _, set := s.sources[f.Name]; !set && flagEnv[f.Name] != "" && e.getenv(flagEnv[f.Name]) != "" {
			s.sources[f.Name] = "env " + flagEnv[f.Name]
		}
	})
	if len(s.errs) > 0 {
		return s.errs[0]
	}
	if s.configFile == "" {
		return nil
	}
	file, err := config.Load(s.configFile, func(k string) bool { return settingNames[k] })
	var unknown *config.UnknownKeyError
	switch {
	case errors.As(err, &unknown):
		return &pipeline.ConfigError{Msg: fmt.Sprintf("configuration file %s:%d: unknown setting %q: the keys are the long flag names (zuora-erp-etl run --help lists them)", unknown.Path, unknown.Line, unknown.Key)}
	case err != nil:
		return &pipeline.ConfigError{Msg: fmt.Sprintf("configuration file: %v; check --config (ETL_CONFIG)", err)}
	}
	for _, v := range file.Values {
		f := s.fs.Lookup(v.Key)
		if f == nil {
			continue // a setting of another command
		}
		if _, set := s.sources[v.Key]; set {
			continue // the command line or the environment wins
		}
		items := v.Items
		if _, repeatable := f.Value.(interface{ parts() []string }); v.List && !repeatable {
			items = []string{strings.Join(v.Items, ",")}
		}
		for _, item := range items {
			if err := f.Value.Set(item); err != nil {
				shown := item
				if secretFlags[v.Key] {
					shown = "…"
				}
				return &pipeline.ConfigError{Msg: fmt.Sprintf("configuration file %s:%d: %s %q: %v", file.Path, v.Line, v.Key, shown, err)}
			}
		}
		s.sources[v.Key] = fmt.Sprintf("file %s:%d", file.Path, v.Line)
		if secretFlags[v.Key] {
			s.warned = append(s.warned, fmt.Sprintf("configuration file %s:%d holds %s in plain text; prefer %s_FILE naming a file only this service can read",
				file.Path, v.Line, v.Key, flagEnv[v.Key]))
		}
	}
	return nil
}

// source says where flag name's value came from.
func (s *settings) source(name string) string {
	if src, ok := s.sources[name]; ok {
		return src
	}
	return "default"
}

func cmdConfig(ctx context.Context, args []string, e *env) int {
	var sub string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	s := newSettings("config", e)
	if code, ok := s.parse(args, e); !ok {
		return code
	}
	if sub == "" && s.fs.NArg() > 0 {
		sub = s.fs.Arg(0)
	}
	switch sub {
	case "show":
		s.printSettings(e)
		return exitOK
	case "check":
		return s.checkSetup(ctx, e)
	}
	fmt.Fprintf(e.stderr, "zuora-erp-etl: config wants show or check (then its flags); got %q\n", sub)
	return exitUsage
}

// printSettings writes every setting, its value (secrets masked, credentials
// in a stage URL left out) and where it came from.
func (s *settings) printSettings(e *env) {
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "setting\tvalue\tsource")
	var names []string
	s.fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	slices.Sort(names)
	for _, name := range names {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", name, s.shown(name), s.source(name))
	}
	tw.Flush()
}

// shown is a setting's value as config show prints it.
func (s *settings) shown(name string) string {
	f := s.fs.Lookup(name)
	switch {
	case secretFlags[name] && secretSet(f):
		return "******** (set)"
	case secretFlags[name]:
		return "(not set)"
	case name == "stage":
		if u, err := url.Parse(f.Value.String()); err == nil && u.User != nil {
			u.User = nil
			return u.String()
		}
	}
	if v := f.Value.String(); v != "" {
		return v
	}
	return "(empty)"
}

func secretSet(f *flag.Flag) bool {
	v, ok := f.Value.(secretValue)
	return ok && *v.p != ""
}

// checkSetup runs config check: every setting, both APIs, the stage and its lease.
func (s *settings) checkSetup(ctx context.Context, e *env) int {
	if err := s.finish(e); err != nil {
		return s.fail(e, err)
	}
	defer s.close()
	p, err := pipeline.Open(ctx, s.cfg)
	if err != nil {
		return s.fail(e, err)
	}
	defer p.Close()
	code := exitOK
	for _, c := range p.CheckSetup(ctx) {
		if c.Err == nil {
			fmt.Fprintf(e.stdout, "ok    %-8s %s (%s)\n", c.Name, c.Detail, c.Took.Round(1e6))
			continue
		}
		status := int(pipeline.OutcomeOf(nil, c.Err))
		var held *stage.LeaseHeldError
		var ce *pipeline.ConfigError
		msg := oneLine(c.Err)
		switch {
		case errors.As(c.Err, &held):
			msg = held.Error() + "; " + "to free it once its holder is gone: " + breakCommand(held.StageURL, held.Lease.Holder.RunID)
		case errors.As(c.Err, &ce):
			msg = s.configMessage(ce)
		}
		fmt.Fprintf(e.stdout, "FAIL  %-8s %s (exit status %d)\n", c.Name, msg, status)
		if code == exitOK {
			code = status
		}
	}
	if code == exitOK {
		fmt.Fprintln(e.stdout, "every check passed; nothing was changed")
	}
	return code
}
