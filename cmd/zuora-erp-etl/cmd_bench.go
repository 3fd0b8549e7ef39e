package main

// bench: one peak hour end to end against the simulators, each stage a
// process of the binary whose CPU and memory the kernel counts apart.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/erpsim"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// benchVolume is scale 1: a month-end peak hour of one tenant (issue 13).
var benchVolume = zuorasim.Volume{Accounts: 5000, Invoices: 60000, Payments: 25000, Refunds: 5000, CreditMemos: 6000, DebitMemos: 4000}

// The realistic latency profile: what one Zuora request and one ERP post take.
const (
	realisticZuoraLatency = 150 * time.Millisecond
	realisticERPLatency   = 40 * time.Millisecond
)

type benchOptions struct {
	scale            float64
	latency          string
	zuoraLatency     time.Duration
	erpLatency       time.Duration
	out              string
	seed             int64
	hour             timeFlag
	zuoraConcurrency int
	erpConcurrency   int
	slices           int
	dir              string
	profileDir       string
	phases           string
}

// benchStage is what one child process of a stage measured.
type benchStage struct {
	Stage         string  `json:"stage"`
	Exit          int     `json:"exit"`
	WallSeconds   float64 `json:"wall_s"`
	DocsPerSecond float64 `json:"docs_per_s"`
	ZuoraRequests int     `json:"zuora_requests"` // token requests included
	ERPRequests   int     `json:"erp_requests"`
	UserSeconds   float64 `json:"user_s"`
	SysSeconds    float64 `json:"sys_s"`
	CPUSeconds    float64 `json:"cpu_s"`
	CPUPer1000    float64 `json:"cpu_ms_per_1000_docs"`
	MaxRSSMB      float64 `json:"max_rss_mb"`
	PeakAnonMB    float64 `json:"peak_anon_mb"`        // RssAnon sampled every 20 ms (Linux), 0 where unknown
	SimCPUSeconds float64 `json:"sim_cpu_s,omitempty"` // both simulators, during the stage (Linux)
	LimitSeconds  float64 `json:"limit_s,omitempty"`   // Σ requests × latency ÷ concurrency, per API
	Ratio         float64 `json:"ratio,omitempty"`     // wall ÷ limit
}

// benchRun is one line of --out.
type benchRun struct {
	Time             time.Time    `json:"time"`
	CodeVersion      string       `json:"code_version"`
	Scale            float64      `json:"scale"`
	Volume           volumeJSON   `json:"volume"`
	Window           string       `json:"window"`
	Documents        int64        `json:"documents"`
	Latency          string       `json:"latency"`
	ZuoraLatencyMS   float64      `json:"zuora_latency_ms"`
	ERPLatencyMS     float64      `json:"erp_latency_ms"`
	ZuoraConcurrency int          `json:"zuora_concurrency"`
	ERPConcurrency   int          `json:"erp_concurrency"`
	Slices           int          `json:"slices"`
	Machine          benchMachine `json:"machine"`
	Stages           []benchStage `json:"stages"`
	// SimSetupCPUSeconds is what the simulators took to generate the tenant, per phase.
	SimSetupCPUSeconds map[string]float64 `json:"sim_setup_cpu_s,omitempty"`
	// SimCPUSeconds is everything each phase's simulator process took.
	SimCPUSeconds map[string]float64 `json:"sim_cpu_s"`
}

type volumeJSON struct {
	Accounts    int `json:"accounts"`
	Invoices    int `json:"invoices"`
	Payments    int `json:"payments"`
	Refunds     int `json:"refunds"`
	CreditMemos int `json:"credit_memos"`
	DebitMemos  int `json:"debit_memos"`
}

type benchMachine struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	CPUModel   string `json:"cpu_model,omitempty"`
	MemoryMB   int64  `json:"memory_mb,omitempty"`
	LoadAvg    string `json:"load_avg_at_start,omitempty"` // other work on the machine
}

const benchSynopsis = `bench [--scale 1] [--latency none|realistic] [--out FILE] [flags]

Measures one peak hour end to end. It starts the simulators as a separate process of this binary
(sim), seeded with --scale times a month-end hour (5,000 accounts, 60,000 invoices, 25,000 payments,
5,000 refunds, 6,000 credit memos, 4,000 debit memos), runs the window as one process per stage
(extract --from/--to, transform --window, load --window) on a fresh stage, then, against fresh
simulators and a fresh stage, as one run. Per stage it prints the wall time, documents per second,
the HTTP requests the simulators counted, the CPU (user + sys) and peak RSS of the stage's process,
and with latency the stage's limit (requests x latency / concurrency, per API) and the ratio to it.
--out appends one JSON line per bench. Profiles: --profile-dir DIR writes a CPU and a heap profile
of every process (go tool pprof DIR/steps-extract.cpu.pprof).`

func cmdBench(ctx context.Context, args []string, e *env) int {
	fs := newFlagSet("bench", benchSynopsis)
	var o benchOptions
	fs.Float64Var(&o.scale, "scale", 1, "volume of the hour: 1 is the peak hour above, 0.1 a tenth of it (0.001 to 10)")
	fs.StringVar(&o.latency, "latency", "none", "latency profile: none, or realistic (150ms per Zuora request, 40ms per ERP post)")
	fs.DurationVar(&o.zuoraLatency, "zuora-latency", -1, "latency of every Zuora request (default: the profile's)")
	fs.DurationVar(&o.erpLatency, "erp-latency", -1, "latency of every ERP request (default: the profile's)")
	fs.StringVar(&o.out, "out", "", "append one JSON line with every figure to this `file`")
	fs.Int64Var(&o.seed, "seed", 1, "seed of the generated tenant")
	fs.Var(&o.hour, "hour", "`time` (RFC3339, on the hour) where the measured hour starts (default: the hour two days ago)")
	fs.IntVar(&o.zuoraConcurrency, "zuora-concurrency", 8, "--zuora-concurrency of the pipeline's processes, 1 to 80")
	fs.IntVar(&o.erpConcurrency, "erp-concurrency", 4, "--erp-concurrency of the pipeline's processes, 1 to 256")
	fs.IntVar(&o.slices, "slices", 1, "--slices of the pipeline's extracts: time slices of the window walked at once, 1 to 100")
	fs.StringVar(&o.dir, "dir", "", "folder for the stages, logs and profiles, kept afterwards (default: a temporary folder, removed)")
	fs.StringVar(&o.profileDir, "profile-dir", "", "write a CPU and a heap profile of every process into this `folder`")
	fs.StringVar(&o.phases, "phases", "steps,run", "what to measure: steps (one process per stage), run (one run), or both")
	if code, ok := parse(fs, args, e); !ok {
		return code
	}
	if err := o.check(fs.NArg()); err != nil {
		return fail(e, err)
	}
	res, err := runBench(ctx, o, e)
	if res != nil {
		res.print(e.stdout)
	}
	if err != nil {
		return fail(e, err)
	}
	if o.out != "" {
		if err := appendJSONLine(o.out, res); err != nil {
			return fail(e, fmt.Errorf("--out: %w", err))
		}
		fmt.Fprintf(e.stdout, "\nappended to %s\n", o.out)
	}
	return exitOK
}

// check validates the options, filling the profile's latencies and the hour.
func (o *benchOptions) check(nargs int) error {
	bad := func(name, value, want string) error {
		return &pipeline.ConfigError{Msg: fmt.Sprintf("--%s %s: %s", name, value, want)}
	}
	switch {
	case nargs > 0:
		return &pipeline.ConfigError{Msg: "bench takes no arguments; see: zuora-erp-etl bench --help"}
	case !(o.scale >= 0.001 && o.scale <= 10):
		return bad("scale", fmt.Sprint(o.scale), "want 0.001 to 10 (1 is the peak hour)")
	case o.zuoraConcurrency < 1 || o.zuoraConcurrency > 80:
		return bad("zuora-concurrency", fmt.Sprint(o.zuoraConcurrency), "want 1 to 80")
	case o.erpConcurrency < 1 || o.erpConcurrency > 256:
		return bad("erp-concurrency", fmt.Sprint(o.erpConcurrency), "want 1 to 256")
	case o.slices < 1 || o.slices > 100:
		return bad("slices", fmt.Sprint(o.slices), "want 1 to 100")
	}
	var zl, el time.Duration
	switch o.latency {
	case "none":
	case "realistic":
		zl, el = realisticZuoraLatency, realisticERPLatency
	default:
		return bad("latency", o.latency, "want none or realistic")
	}
	if o.zuoraLatency < 0 {
		o.zuoraLatency = zl
	}
	if o.erpLatency < 0 {
		o.erpLatency = el
	}
	if o.hour.t.IsZero() {
		o.hour.t = time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Hour)
	}
	if !o.hour.t.Equal(o.hour.t.Truncate(time.Hour)) {
		return bad("hour", o.hour.String(), "want the start of an hour, e.g. 2026-11-30T10:00:00Z")
	}
	if o.hour.t.Add(time.Hour).After(time.Now().Add(-5 * time.Minute)) {
		return bad("hour", o.hour.String(), "want an hour that ended before now minus the settle lag")
	}
	for _, p := range strings.Split(o.phases, ",") {
		if p != "steps" && p != "run" {
			return bad("phases", o.phases, "want steps, run or steps,run")
		}
	}
	return nil
}

// volume is the generated tenant at the bench's scale, at least one of each.
func (o benchOptions) volume() zuorasim.Volume {
	v := zuorasim.DefaultVolume()
	n := func(base int) int { return max(1, int(math.Round(float64(base)*o.scale))) }
	v.Accounts, v.Invoices, v.Payments = n(benchVolume.Accounts), n(benchVolume.Invoices), n(benchVolume.Payments)
	v.Refunds, v.CreditMemos, v.DebitMemos = n(benchVolume.Refunds), n(benchVolume.CreditMemos), n(benchVolume.DebitMemos)
	return v
}

func runBench(ctx context.Context, o benchOptions, e *env) (*benchRun, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bench: the binary to start: %w", err)
	}
	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "zuora-erp-etl-bench-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return nil, fmt.Errorf("--profile-dir: %w", err)
		}
	}
	v := o.volume()
	w := stage.Window{Start: o.hour.t, End: o.hour.t.Add(time.Hour)}
	res := &benchRun{
		Time: time.Now().UTC(), CodeVersion: codeVersion(), Scale: o.scale, Window: w.ID(),
		Volume:  volumeJSON{v.Accounts, v.Invoices, v.Payments, v.Refunds, v.CreditMemos, v.DebitMemos},
		Latency: o.latency, ZuoraLatencyMS: ms(o.zuoraLatency), ERPLatencyMS: ms(o.erpLatency),
		ZuoraConcurrency: o.zuoraConcurrency, ERPConcurrency: o.erpConcurrency, Slices: o.slices,
		Machine: machine(), SimSetupCPUSeconds: map[string]float64{}, SimCPUSeconds: map[string]float64{},
	}
	fmt.Fprintf(e.stderr, "bench: window %s, %d accounts, %d invoices, %d payments, %d refunds, %d credit memos, %d debit memos; work in %s\n",
		w.ID(), v.Accounts, v.Invoices, v.Payments, v.Refunds, v.CreditMemos, v.DebitMemos, dir)
	from, to := w.Start.Format(time.RFC3339), w.End.Format(time.RFC3339)
	for _, phase := range strings.Split(o.phases, ",") {
		var steps [][]string
		switch phase {
		case "steps":
			steps = [][]string{
				{"extract", "--from", from, "--to", to, "--window", "1h", "--zuora-concurrency", fmt.Sprint(o.zuoraConcurrency), "--slices", fmt.Sprint(o.slices)},
				{"transform", "--window", w.ID()},
				{"load", "--window", w.ID(), "--zuora-concurrency", fmt.Sprint(o.zuoraConcurrency), "--erp-concurrency", fmt.Sprint(o.erpConcurrency)},
			}
		case "run":
			steps = [][]string{{"run", "--since", from, "--until", to, "--window", "1h", "--slices", fmt.Sprint(o.slices),
				"--zuora-concurrency", fmt.Sprint(o.zuoraConcurrency), "--erp-concurrency", fmt.Sprint(o.erpConcurrency)}}
		}
		if err := benchPhase(ctx, exe, dir, phase, steps, o, v, w, res, e); err != nil {
			return res, err
		}
	}
	return res, nil
}

// benchPhase starts fresh simulators, runs steps against a fresh stage, and
// stops the simulators.
func benchPhase(ctx context.Context, exe, dir, phase string, steps [][]string, o benchOptions, v zuorasim.Volume, w stage.Window, res *benchRun, e *env) (err error) {
	pdir := filepath.Join(dir, phase)
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		return err
	}
	sim, err := startSim(ctx, exe, pdir, phase, o, v, w)
	if err != nil {
		return err
	}
	defer func() {
		total, serr := sim.stop()
		res.SimCPUSeconds[phase] = total.Seconds()
		if err == nil && serr != nil {
			err = serr
		}
	}()
	if c, ok := procCPU(sim.cmd.Process.Pid); ok {
		res.SimSetupCPUSeconds[phase] = c.Seconds()
	}
	bp := &benchPhaseRun{exe: exe, dir: pdir, phase: phase, o: o, w: w, res: res, e: e, sim: sim,
		stageURL: "file://" + filepath.ToSlash(filepath.Join(pdir, "stage")),
		zr:       zuorasim.NewRemote(sim.zuoraURL, zuorasim.DefaultClientID, zuorasim.DefaultClientSecret)}
	for _, args := range steps {
		if err := bp.step(ctx, args); err != nil {
			return err
		}
	}
	for i := range res.Stages {
		if s := &res.Stages[i]; s.WallSeconds > 0 && res.Documents > 0 {
			s.DocsPerSecond = float64(res.Documents) / s.WallSeconds
			s.CPUPer1000 = s.CPUSeconds * 1000 / float64(res.Documents) * 1000
		}
	}
	return nil
}

// benchPhaseRun is one phase of a bench: its simulators, its stage and
// where its logs go.
type benchPhaseRun struct {
	exe, dir, phase string
	o               benchOptions
	w               stage.Window
	res             *benchRun
	e               *env
	sim             *benchSim
	zr              *zuorasim.Remote
	stageURL        string
}

// step runs one command of the phase as a child process and records what it
// took, what it asked of the simulators and how that compares with the
// latency floor.
func (bp *benchPhaseRun) step(ctx context.Context, args []string) error {
	name := args[0]
	fmt.Fprintf(bp.e.stderr, "bench: %s: %s\n", bp.phase, name)
	before, err := bp.sim.counts(ctx, bp.zr)
	if err != nil {
		return err
	}
	env := childEnv(map[string]string{
		"ZUORA_BASE_URL": bp.sim.zuoraURL, "ZUORA_CLIENT_ID": zuorasim.DefaultClientID, "ZUORA_CLIENT_SECRET": zuorasim.DefaultClientSecret,
		"ERP_BASE_URL": bp.sim.erpURL, "ERP_TOKEN": erpsim.DefaultToken, "ETL_STAGE": bp.stageURL,
	}, bp.o.profileDir, bp.phase+"-"+name)
	if name != "transform" {
		args = append(args, "--progress-interval", "0")
	}
	logPath := filepath.Join(bp.dir, name+".log")
	m, err := runChild(ctx, bp.exe, args, env, logPath)
	if err != nil {
		return err
	}
	after, err := bp.sim.counts(ctx, bp.zr)
	if err != nil {
		return err
	}
	m.Stage = name
	if bp.phase != "steps" {
		m.Stage = bp.phase
	}
	bp.o.measure(&m, before, after)
	if ok := m.Exit == exitOK || m.Exit == exitRejected && name != "extract"; !ok {
		bp.res.Stages = append(bp.res.Stages, m)
		fmt.Fprintln(bp.e.stderr, logTail(logPath, 20))
		return fmt.Errorf("bench: %s exited %d; its log is %s", name, m.Exit, logPath)
	}
	if name == "transform" || name == "run" {
		if bp.res.Documents, err = windowDocuments(ctx, bp.stageURL, bp.w); err != nil {
			return err
		}
	}
	bp.res.Stages = append(bp.res.Stages, m)
	return nil
}

// measure fills m with the requests the simulators counted between before
// and after, their CPU, and the floor the latencies set on the step: the
// timed requests, spread over the concurrency each side allows.
func (o benchOptions) measure(m *benchStage, before, after simCounts) {
	m.ZuoraRequests = after.zuora.Total() - before.zuora.Total()
	m.ERPRequests = after.erp.Total() - before.erp.Total()
	if after.simCPU > 0 {
		m.SimCPUSeconds = (after.simCPU - before.simCPU).Seconds()
	}
	zuoraTimed := m.ZuoraRequests - (after.zuora.Requests["POST /oauth/token"] - before.zuora.Requests["POST /oauth/token"])
	m.LimitSeconds = float64(zuoraTimed)*o.zuoraLatency.Seconds()/float64(o.zuoraConcurrency) +
		float64(m.ERPRequests)*o.erpLatency.Seconds()/float64(o.erpConcurrency)
	if m.LimitSeconds > 0 {
		m.Ratio = m.WallSeconds / m.LimitSeconds
	}
}

// windowDocuments counts the documents the transform accounted for in w.
func windowDocuments(ctx context.Context, stageURL string, w stage.Window) (int64, error) {
	st, err := stage.Open(ctx, stageURL, stage.ReadOnly())
	if err != nil {
		return 0, err
	}
	defer st.Close()
	tm, found, err := st.ReadTransform(ctx, w)
	if err != nil || !found {
		return 0, fmt.Errorf("bench: the transform of %s: found %t, %v", w.ID(), found, err)
	}
	var n int64
	for _, t := range tm.Totals {
		n += t.Extracted.Count
	}
	return n, nil
}

// benchSim is a running sim process.
type benchSim struct {
	cmd              *exec.Cmd
	zuoraURL, erpURL string
	log              *os.File
}

type simCounts struct {
	zuora  zuorasim.Stats
	erp    erpsim.Stats
	simCPU time.Duration
}

func (s *benchSim) counts(ctx context.Context, zr *zuorasim.Remote) (simCounts, error) {
	var c simCounts
	var err error
	if c.zuora, err = zr.Stats(ctx); err != nil {
		return c, err
	}
	if c.erp, err = erpsim.RemoteStats(ctx, s.erpURL, erpsim.DefaultToken); err != nil {
		return c, err
	}
	c.simCPU, _ = procCPU(s.cmd.Process.Pid)
	return c, nil
}

// startSim starts the simulators of one phase and waits until both listen.
func startSim(ctx context.Context, exe, dir, phase string, o benchOptions, v zuorasim.Volume, w stage.Window) (*benchSim, error) {
	args := []string{"sim", "--zuora-addr", "127.0.0.1:0", "--erp-addr", "127.0.0.1:0", "--seed", fmt.Sprint(o.seed),
		"--from", w.Start.Format(time.RFC3339), "--to", w.End.Format(time.RFC3339),
		"--accounts", fmt.Sprint(v.Accounts), "--invoices", fmt.Sprint(v.Invoices), "--payments", fmt.Sprint(v.Payments),
		"--refunds", fmt.Sprint(v.Refunds), "--credit-memos", fmt.Sprint(v.CreditMemos), "--debit-memos", fmt.Sprint(v.DebitMemos)}
	if o.zuoraLatency > 0 {
		args = append(args, "--latency", o.zuoraLatency.String())
	}
	if o.erpLatency > 0 {
		args = append(args, "--erp-latency", o.erpLatency.String())
	}
	log, err := os.Create(filepath.Join(dir, "sim.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = childEnv(nil, o.profileDir, phase+"-sim")
	cmd.Stderr = log
	out, err := cmd.StdoutPipe()
	if err != nil {
		log.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("bench: start the simulators: %w", err)
	}
	s := &benchSim{cmd: cmd, log: log}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(log, line)
			if a, ok := strings.CutPrefix(line, "Zuora simulator on "); ok {
				s.zuoraURL, _, _ = strings.Cut(a, " ")
			}
			if a, ok := strings.CutPrefix(line, "ERP simulator on"); ok {
				s.erpURL = strings.TrimSpace(a)
			}
			if s.zuoraURL != "" && s.erpURL != "" {
				ready <- nil
				_, _ = io.Copy(log, out)
				return
			}
		}
		ready <- fmt.Errorf("bench: the simulators exited before listening; their log: %s\n%s", log.Name(), logTail(log.Name(), 20))
	}()
	select {
	case err = <-ready:
	case <-ctx.Done():
		err = context.Cause(ctx)
	}
	if err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// stop interrupts the simulators (so that their profiles are written) and
// returns the CPU they took in all.
func (s *benchSim) stop() (time.Duration, error) {
	defer s.log.Close()
	if err := s.cmd.Process.Signal(os.Interrupt); err != nil {
		s.cmd.Process.Kill()
	}
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
	u := usageOf(s.cmd.ProcessState)
	return u.user + u.sys, nil
}

// runChild runs one stage's process to its end and measures it.
func runChild(ctx context.Context, exe string, args, env []string, logPath string) (benchStage, error) {
	var m benchStage
	log, err := os.Create(logPath)
	if err != nil {
		return m, err
	}
	defer log.Close()
	fmt.Fprintf(log, "$ zuora-erp-etl %s\n", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, log, log
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return m, fmt.Errorf("bench: %s: %w", args[0], err)
	}
	anon := watchAnon(cmd.Process.Pid)
	err = cmd.Wait()
	m.WallSeconds = time.Since(start).Seconds()
	m.PeakAnonMB = float64(anon.stop()) / (1 << 20)
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		m.Exit = exit.ExitCode()
	case err != nil:
		return m, fmt.Errorf("bench: %s: %w", args[0], err)
	}
	u := usageOf(cmd.ProcessState)
	m.UserSeconds, m.SysSeconds = u.user.Seconds(), u.sys.Seconds()
	m.CPUSeconds = m.UserSeconds + m.SysSeconds
	m.MaxRSSMB = float64(u.maxRSS) / (1 << 20)
	return m, nil
}

// childEnv is this process's environment without the settings the bench
// decides (the connections, the stage, a configuration file, profiles),
// plus set and, with a profile folder, the profiles of the process named name.
func childEnv(set map[string]string, profileDir, name string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "ZUORA_"), strings.HasPrefix(k, "ERP_"),
			k == "ETL_STAGE", k == "ETL_CONFIG", k == envCPUProfile, k == envMemProfile:
			continue
		}
		env = append(env, kv)
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	if profileDir != "" {
		env = append(env, envCPUProfile+"="+filepath.Join(profileDir, name+".cpu.pprof"),
			envMemProfile+"="+filepath.Join(profileDir, name+".heap.pprof"))
	}
	return env
}

func (r *benchRun) print(w io.Writer) {
	fmt.Fprintf(w, "bench %s: scale %g (%d accounts, %d invoices, %d payments, %d refunds, %d credit memos, %d debit memos), window %s\n",
		r.CodeVersion, r.Scale, r.Volume.Accounts, r.Volume.Invoices, r.Volume.Payments, r.Volume.Refunds, r.Volume.CreditMemos, r.Volume.DebitMemos, r.Window)
	fmt.Fprintf(w, "latency %s (Zuora %gms, ERP %gms per request), zuora-concurrency %d, erp-concurrency %d, slices %d; %d documents in the window\n",
		r.Latency, r.ZuoraLatencyMS, r.ERPLatencyMS, r.ZuoraConcurrency, r.ERPConcurrency, r.Slices, r.Documents)
	m := r.Machine
	fmt.Fprintf(w, "machine: %d CPUs (GOMAXPROCS %d) %s, %d MB, %s/%s, load average at start %s\n\n", m.CPUs, m.GOMAXPROCS, m.CPUModel, m.MemoryMB, m.OS, m.Arch, m.LoadAvg)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "stage\texit\twall s\tdocs/s\tzuora req\terp req\tcpu s\tcpu ms/1000 docs\tpeak RSS MB\tpeak anon MB\tsim cpu s\tlimit s\tratio\t")
	for _, s := range r.Stages {
		limit, ratio, anon := "-", "-", "-"
		if s.LimitSeconds > 0 {
			limit, ratio = fmt.Sprintf("%.1f", s.LimitSeconds), fmt.Sprintf("%.2f", s.Ratio)
		}
		if s.PeakAnonMB > 0 {
			anon = fmt.Sprintf("%.0f", s.PeakAnonMB)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.0f\t%d\t%d\t%.1f\t%.0f\t%.0f\t%s\t%.1f\t%s\t%s\t\n", s.Stage, s.Exit, s.WallSeconds, s.DocsPerSecond,
			s.ZuoraRequests, s.ERPRequests, s.CPUSeconds, s.CPUPer1000, s.MaxRSSMB, anon, s.SimCPUSeconds, limit, ratio)
	}
	tw.Flush()
	for _, phase := range []string{"steps", "run"} {
		if c, ok := r.SimCPUSeconds[phase]; ok {
			fmt.Fprintf(w, "simulators (%s): %.1f s CPU in all, %.1f s of it generating the tenant\n", phase, c, r.SimSetupCPUSeconds[phase])
		}
	}
}

func appendJSONLine(path string, v any) error {
	line, err := json.Marshal(v)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// machine describes where the bench ran, as far as the system says.
func machine() benchMachine {
	m := benchMachine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			m.MemoryMB = kb / 1024
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	return m
}

// procCPU is the user + sys CPU a running process took so far, from Linux's
// /proc (ticks of 1/100 s); false elsewhere.
func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b)[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	var utime, stime int64
	if _, err := fmt.Sscan(f[11], &utime); err != nil {
		return 0, false
	}
	if _, err := fmt.Sscan(f[12], &stime); err != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, true
}

// logTail is the last n lines of a file, for a failure message.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
