package main

// The soak (issue 9): real processes of the binary killed with SIGKILL at
// random moments of `run` over several windows, resumed each time, and every
// promise checked once the last run is done. It runs only when asked:
//
//	go test ./cmd/zuora-erp-etl -run TestSoak -soak -v -timeout 60m
//
// Each seed draws a tenant (3 to 5 hourly windows, a few hundred documents),
// one to four kills, each aimed at a phase of the run (soakPhases) and landing
// a random delay or a random request into it, how the stage is freed after
// each (the lease's time to live, or lease break), and whether the accounts
// without an ERP customer are fixed in Zuora after one of the kills, so that
// the re-check brings their documents back under kills as well. The outcome
// is compared with the same tenant run without kills (checkSoak).

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/demo"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/warehouse"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

var (
	soakFlag    = flag.Bool("soak", false, "run TestSoak: SIGKILL the binary at random moments of run, resume, and check every promise")
	soakSeeds   = flag.Int("soak.seeds", 30, "TestSoak: run seeds 1 to N")
	soakSeed    = flag.Int64("soak.seed", 0, "TestSoak: replay this one seed (its tenant, kill schedule and fix)")
	soakBackend = flag.String("soak.backend", "file", "TestSoak: the stage's backend, file or s3 (gofakes3 in the test process)")
)

const soakCommand = "go test ./cmd/zuora-erp-etl -run TestSoak -soak -v -timeout 60m"

// soakFrom is where every soak tenant's activity starts.
var soakFrom = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

// killPlan is when one kill comes: at the nth request of a kind, or a delay
// after a moment, chosen to land in the phase it aims at.
type killPlan struct {
	aim    string
	nth    int
	delay  time.Duration
	after  bool   // a kill in a request: after the simulator acted, so only its answer is lost
	atLine bool   // manifest writes and re-check: after a log line rather than after requests
	resume string // how the stage is freed for the next run: "ttl" (wait) or "break" (lease break)
}

// fallback is the kill that replaces k when k's moment never came because the
// run finished first: at the next run's re-check, which every run goes through.
func (k killPlan) fallback() killPlan {
	return killPlan{aim: phaseRecheck, after: !k.after, resume: k.resume}
}

func (k killPlan) String() string {
	cut := "before the simulator acted"
	if k.after {
		cut = "after the simulator acted (its answer lost)"
	}
	var when string
	switch k.aim {
	case phaseStartup:
		when = fmt.Sprintf("%s after the start", k.delay.Round(time.Millisecond))
	case phaseExtract:
		when = fmt.Sprintf("at Object Query #%d, %s", k.nth, cut)
	case phaseTransform:
		when = fmt.Sprintf("%s after %q", k.delay.Round(time.Millisecond), "extract committed")
	case phasePosting:
		when = fmt.Sprintf("at post #%d, %s", k.nth, cut)
	case phaseLedger:
		when = fmt.Sprintf("%s after the load's last post was answered", k.delay.Round(10*time.Microsecond))
	case phaseWriteBack:
		when = fmt.Sprintf("at mark call #%d, %s", k.nth, cut)
	case phaseManifest:
		if k.atLine {
			when = fmt.Sprintf("%s after %q", k.delay.Round(10*time.Microsecond), "load finished")
		} else {
			when = fmt.Sprintf("%s after every mark call was answered, unless another request followed", k.delay.Round(10*time.Microsecond))
		}
	case phaseRecheck:
		if k.atLine {
			when = fmt.Sprintf("%s after %q", k.delay.Round(time.Millisecond), recheckStarted)
		} else {
			when = "at the first query by id, " + cut
		}
	}
	return fmt.Sprintf("aimed at %s: %s; then %s", k.aim, when, map[string]string{"ttl": "wait out the lease", "break": "lease break"}[k.resume])
}

// soakPlan is everything a seed decides before it runs.
type soakPlan struct {
	seed     int64
	from, to time.Time
	volume   zuorasim.Volume
	kills    []killPlan
	fixAfter int // the accounts without ERPAccountId__c are fixed after this kill (1-based); 0 never
}

func planSeed(seed int64) soakPlan {
	r := rand.New(rand.NewPCG(uint64(seed), 0x50a4c0de))
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(r.Int64N(int64(hi-lo))) }
	more := func(n int) int { return n + n*r.IntN(60)/100 }
	v := zuorasim.DefaultVolume()
	v.Accounts, v.Invoices, v.Payments, v.Refunds, v.CreditMemos, v.DebitMemos = 40, more(100), more(70), more(20), more(25), more(12)
	windows := 3 + r.IntN(3)
	p := soakPlan{seed: seed, from: soakFrom, to: soakFrom.Add(time.Duration(windows) * time.Hour), volume: v}
	for range 1 + r.IntN(4) {
		k := killPlan{aim: soakPhases[r.IntN(len(soakPhases))], after: r.IntN(2) == 0, atLine: r.IntN(2) == 0, resume: []string{"ttl", "break"}[r.IntN(2)]}
		switch k.aim {
		case phaseStartup:
			k.delay = between(0, 35*time.Millisecond)
		case phaseExtract:
			k.nth = 1 + r.IntN(8)
		case phaseTransform:
			k.delay = between(0, 250*time.Millisecond)
		case phasePosting:
			k.nth = 1 + r.IntN(30)
		case phaseLedger:
			k.delay = between(0, 1500*time.Microsecond)
		case phaseWriteBack:
			k.nth = 1 + r.IntN(3)
		case phaseManifest:
			k.delay = between(0, 5*time.Millisecond)
		case phaseRecheck:
			k.delay = between(0, 300*time.Millisecond)
		}
		p.kills = append(p.kills, k)
	}
	if r.IntN(2) == 0 {
		p.fixAfter = 1 + r.IntN(len(p.kills))
	}
	return p
}

func (p soakPlan) windows() []string {
	var ids []string
	for s := p.from; s.Before(p.to); s = s.Add(time.Hour) {
		ids = append(ids, stage.Window{Start: s, End: s.Add(time.Hour)}.ID())
	}
	return ids
}

func (p soakPlan) runArgs() []string {
	return []string{"run", "--since", p.from.Format(time.RFC3339), "--until", p.to.Format(time.RFC3339)}
}

// soakRun is one child of the soak: what it logged, what the simulators saw
// from it, and its kill.
type soakRun struct {
	plan      *killPlan // nil: let it finish
	ready     chan struct{}
	p         *proc
	startedAt time.Time

	mu     sync.Mutex
	lines  []logLine
	sims   []simEvent
	seen   [simKinds]int
	open   [simKinds]int
	lineN  map[string]int
	killed bool
	killAt time.Time
	how    string
}

func (r *soakRun) proc() *proc { <-r.ready; return r.p }

// kill sends SIGKILL once, recording when and how.
func (r *soakRun) kill(how string) bool {
	r.mu.Lock()
	if r.killed {
		r.mu.Unlock()
		return false
	}
	r.killed, r.killAt, r.how = true, time.Now(), how
	r.mu.Unlock()
	_ = r.proc().cmd.Process.Signal(syscall.SIGKILL)
	return true
}

// armLocked kills the child after d unless, by then, a request of the given
// kinds has come (the moment it aimed at has passed). Call with r.mu held.
func (r *soakRun) armLocked(d time.Duration, how string, unless ...simKind) {
	from := len(r.sims)
	time.AfterFunc(d, func() {
		r.mu.Lock()
		passed := slices.ContainsFunc(r.sims[from:], func(e simEvent) bool { return slices.Contains(unless, e.kind) })
		r.mu.Unlock()
		if !passed {
			r.kill(how)
		}
	})
}

// request records a request reaching a simulator and says whether the child
// is to be killed at it, and how many of its kind came so far.
func (r *soakRun) request(kind simKind) (bool, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.killed {
		return false, 0
	}
	r.sims = append(r.sims, simEvent{at: time.Now(), kind: kind})
	r.seen[kind]++
	r.open[kind]++
	k, n := r.plan, r.seen[kind]
	if k == nil {
		return false, n
	}
	switch {
	case k.aim == phaseExtract && kind == simQuery && n == k.nth,
		k.aim == phasePosting && kind == simPostIn && n == k.nth,
		k.aim == phaseWriteBack && kind == simMarkIn && n == k.nth,
		k.aim == phaseRecheck && !k.atLine && kind == simRecheck && n == 1:
		return true, n
	}
	return false, n
}

// runID returns the run id the child logged ("" before its first line).
func (r *soakRun) runID() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.lines {
		if id := l.attr("run_id"); id != "" {
			return id
		}
	}
	return ""
}

// answered records a simulator's answer to a request of kind-1.
func (r *soakRun) answered(kind simKind) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.killed {
		return
	}
	r.sims = append(r.sims, simEvent{at: time.Now(), kind: kind})
	r.open[kind-1]--
	k := r.plan
	switch {
	case k == nil:
	case k.aim == phaseLedger && kind == simPostOut && r.open[simPostIn] == 0 && postsDone(r.lines, r.sims, time.Now()):
		r.armLocked(k.delay, fmt.Sprintf("%s after the load's last post was answered", k.delay), simPostIn)
	case k.aim == phaseManifest && !k.atLine && kind == simMarkOut && r.open[simMarkIn] == 0:
		r.armLocked(k.delay, fmt.Sprintf("%s after the mark calls in flight were answered", k.delay), simPostIn, simMarkIn, simQuery)
	}
}

// onLine records one line of the child's stderr.
func (r *soakRun) onLine(s string) {
	l, ok := parseLogLine(s)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, l)
	r.lineN[l.msg]++
	k := r.plan
	switch {
	case k == nil || r.killed:
	case k.aim == phaseTransform && l.msg == "extract committed" && r.lineN[l.msg] == 1,
		k.aim == phaseManifest && k.atLine && l.msg == "load finished" && r.lineN[l.msg] == 1,
		k.aim == phaseRecheck && k.atLine && l.msg == recheckStarted:
		r.armLocked(k.delay, fmt.Sprintf("%s after %q", k.delay, l.msg))
	}
}

// soakWorld is a procWorld whose simulators report every request to the
// current child.
type soakWorld struct {
	*procWorld
	mu  sync.Mutex
	cur *soakRun
}

func newSoakWorld(t *testing.T, backend string, tenant *zuorasim.Tenant) *soakWorld {
	sw := &soakWorld{}
	sw.procWorld = newProcWorldWith(t, backend, procOptions{tenant: tenant, zuora: sw.watch, erp: sw.watch})
	return sw
}

func (sw *soakWorld) current() *soakRun {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.cur
}

// watch wraps a simulator: each request a child makes is recorded, and the
// child is killed at the one its plan names, before or after the simulator
// acts on it.
func (sw *soakWorld) watch(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r, kind := sw.current(), requestKind(req)
		if r == nil || kind < 0 {
			next.ServeHTTP(w, req)
			return
		}
		if cut, n := r.request(kind); cut {
			how := fmt.Sprintf("at %s #%d, before the simulator acted", kind, n)
			if r.plan.after {
				next.ServeHTTP(httptest.NewRecorder(), req)
				how = fmt.Sprintf("at %s #%d, after the simulator acted", kind, n)
			}
			if r.kill(how) {
				select {
				case <-r.proc().done:
				case <-time.After(10 * time.Second):
				}
			}
			panic(http.ErrAbortHandler) // no answer: the child is gone
		}
		next.ServeHTTP(w, req)
		if kind == simPostIn || kind == simMarkIn {
			r.answered(kind + 1)
		}
	})
}

// requestKind says what a request to either simulator is, or -1 for one the
// soak does not follow (tokens).
func requestKind(r *http.Request) simKind {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/api/") && r.Method == http.MethodPost:
		return simPostIn
	case strings.HasPrefix(p, "/object-query/"):
		for _, f := range r.URL.Query()["filter[]"] {
			if strings.HasPrefix(f, "id.IN:") {
				return simRecheck
			}
		}
		return simQuery
	case p == "/v1/action/update", strings.HasSuffix(p, "-memos/bulk"):
		return simMarkIn
	}
	if _, ok := financeID(r); ok && r.Method == http.MethodPut {
		return simMarkIn
	}
	return -1
}

// startRun starts `run` as the current child, armed with k (nil: unarmed).
func (sw *soakWorld) startRun(t *testing.T, k *killPlan, args []string) *soakRun {
	t.Helper()
	r := &soakRun{plan: k, ready: make(chan struct{}), lineN: map[string]int{}}
	sw.mu.Lock()
	sw.cur = r
	sw.mu.Unlock()
	r.startedAt = time.Now()
	r.p = sw.startWatched(t, r.onLine, args...)
	close(r.ready)
	if k != nil && k.aim == phaseStartup {
		r.mu.Lock()
		r.armLocked(k.delay, fmt.Sprintf("%s after the start", k.delay))
		r.mu.Unlock()
	}
	select {
	case <-r.p.done:
	case <-time.After(90 * time.Second):
		t.Fatalf("%v did not finish within 90s\n%s", args, r.p)
	}
	sw.mu.Lock()
	sw.cur = nil
	sw.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if ws, ok := r.p.cmd.ProcessState.Sys().(syscall.WaitStatus); r.killed && !(ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL) {
		r.killed = false // the moment came after the child had exited by itself
	}
	return r
}

// killRecord is one kill as it happened.
type killRecord struct {
	plan     killPlan
	fired    bool   // false: the run finished before the moment came
	replaces bool   // the fallback of the kill before, whose moment never came
	phase    string // the phase it hit (classifyKill)
	how      string
	runID    string
	refused  int           // runs refused with status 4 before the killed one started
	blocked  time.Duration // from the previous kill until a run was let in
}

// soakSeedResult is one seed's figures and verdict.
type soakSeedResult struct {
	plan     soakPlan
	backend  string
	records  int // the tenant's records: documents and applications
	apps     int // of which applications
	posted   int // records the ledger confirms posted at the end
	rejected int // outstanding rejects at the end
	skipped  int
	held     [3]int // the ERP's documents (copies from the pipeline), applications and reversals at the end
	parity   int    // documents AR parity compared
	kills    []killRecord
	refusals int
	breaks   int
	waits    int
	maxWait  time.Duration
	posts    int // ERP requests
	replays  int
	verdict  soakVerdict
	finalErr string // the final run's stderr messages, when a promise broke
	wall     time.Duration
}

func (s soakSeedResult) fired() []killRecord {
	var out []killRecord
	for _, k := range s.kills {
		if k.fired {
			out = append(out, k)
		}
	}
	return out
}

func (s soakSeedResult) line() string {
	var phases []string
	for _, k := range s.fired() {
		phases = append(phases, k.phase)
	}
	fix := "no fix"
	if s.plan.fixAfter > 0 {
		fix = fmt.Sprintf("accounts fixed after kill %d", s.plan.fixAfter)
	}
	v := s.verdict
	status := "ok"
	if len(v.Broken) > 0 {
		status = fmt.Sprintf("BROKE %d PROMISES", len(v.Broken))
	}
	return fmt.Sprintf("seed %2d %s: %d windows, %d records (%d applications: %d posted, %d rejected, %d skipped), the ERP holds %d documents, %d applications, %d reversals; "+
		"AR parity over %d documents, %d differences; %s; %d kills %v, %d missed; %d waits (max %s) and %d breaks, %d refusals (status 4); "+
		"%d posts (%d replays), %d re-marks; duplicates %d, losses %d, extra marks %d; %s; %s",
		s.plan.seed, s.backend, len(s.plan.windows()), s.records, s.apps, s.posted, s.rejected, s.skipped, s.held[0], s.held[1], s.held[2],
		s.parity, v.Unbalanced, fix, len(phases), phases, len(s.kills)-len(phases),
		s.waits, s.maxWait.Round(10*time.Millisecond), s.breaks, s.refusals, s.posts, s.replays, v.Remarks, v.Duplicates, v.Losses, v.ExtraMarks,
		s.wall.Round(100*time.Millisecond), status)
}

func (s soakSeedResult) schedule() string {
	var b strings.Builder
	n := 0
	for _, k := range s.kills {
		label := fmt.Sprintf("kill %d", n+1)
		if k.replaces {
			label = "  in its place,"
		} else {
			n++
		}
		hit := "missed: the run finished first"
		if k.fired {
			run := k.runID
			if run == "" {
				run = "that logged nothing yet"
			}
			hit = fmt.Sprintf("hit %s (%s; run %s)", k.phase, k.how, run)
		}
		fmt.Fprintf(&b, "\n  %s %s → %s", label, k.plan, hit)
	}
	if s.plan.fixAfter > 0 {
		fmt.Fprintf(&b, "\n  accounts without ERPAccountId__c fixed in Zuora after kill %d", s.plan.fixAfter)
	}
	return b.String()
}

// TestSoak kills `run` with SIGKILL at random moments over several windows,
// for many seeds, resumes each time, and checks that every document,
// application and reversal the uninterrupted run posts is in the ERP exactly
// once, every posted document marked and nothing else, that AR parity holds
// and that the report balances (checkSoak).
func TestSoak(t *testing.T) {
	if !*soakFlag {
		t.Skip("the soak runs only when asked: " + soakCommand + " [-soak.backend s3] [-soak.seeds N] [-soak.seed N]")
	}
	backend := *soakBackend
	if backend != "file" && backend != "s3" {
		t.Fatalf("-soak.backend %q: want file or s3", backend)
	}
	binary(t)                               // before XDG_CACHE_HOME moves: the build uses the usual Go build cache
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // the in-process status reads s3 objects through a local cache
	seeds := make([]int64, 0, *soakSeeds)
	if *soakSeed != 0 {
		seeds = append(seeds, *soakSeed)
	} else {
		for s := range int64(*soakSeeds) {
			seeds = append(seeds, s+1)
		}
	}
	started := time.Now()
	var results []soakSeedResult
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			res := runSoakSeed(t, backend, planSeed(seed))
			results = append(results, res)
			t.Log(res.line())
			if len(res.verdict.Broken) > 0 {
				t.Errorf("seed %d broke %d promises:\n  %s\nkill schedule:%s\nfinal run's messages:\n%s\nreplay: go test ./cmd/zuora-erp-etl -run TestSoak -soak -soak.seed %d -soak.backend %s -v",
					seed, len(res.verdict.Broken), strings.Join(res.verdict.Broken, "\n  "), res.schedule(), res.finalErr, seed, backend)
			} else {
				t.Logf("kill schedule:%s", res.schedule())
			}
		})
	}
	t.Log(soakSummary(results, backend, time.Since(started)))
}

func soakSummary(results []soakSeedResult, backend string, wall time.Duration) string {
	hits := map[string]int{}
	aimed := map[string]int{}
	var kills, missed, breaks, waits, refusals, posts, replays, broken int
	var maxWait time.Duration
	var v soakVerdict
	for _, r := range results {
		for _, k := range r.kills {
			aimed[k.plan.aim]++
			if k.fired {
				kills++
				hits[k.phase]++
			} else {
				missed++
			}
		}
		breaks, waits, refusals, posts, replays = breaks+r.breaks, waits+r.waits, refusals+r.refusals, posts+r.posts, replays+r.replays
		maxWait = max(maxWait, r.maxWait)
		v.Duplicates += r.verdict.Duplicates
		v.Losses += r.verdict.Losses
		v.Extras += r.verdict.Extras
		v.Changed += r.verdict.Changed
		v.Unmarked += r.verdict.Unmarked
		v.ExtraMarks += r.verdict.ExtraMarks
		v.Remarks += r.verdict.Remarks
		v.NotReplayed += r.verdict.NotReplayed
		v.Disagree += r.verdict.Disagree
		v.Unaccounted += r.verdict.Unaccounted
		v.Unbalanced += r.verdict.Unbalanced
		if len(r.verdict.Broken) > 0 {
			broken++
		}
	}
	var ph []string
	for _, p := range soakPhases {
		ph = append(ph, fmt.Sprintf("%s %d (aimed %d)", p, hits[p], aimed[p]))
	}
	return fmt.Sprintf("soak on %s: %d seeds, %d kills with SIGKILL (%d aimed moments never came, the run finishing first: each replaced by a kill at the next run's re-check), wall time %s\n"+
		"phases hit: %s\n"+
		"resumes: %d after waiting out the lease (longest wait %s, %d runs refused with status 4 meanwhile), %d after lease break\n"+
		"duplicates %d, losses %d, extra records %d, changed bodies %d, unmarked %d, extra marks %d, posts not replayed %d, "+
		"ledger and ERP disagreeing %d, records not accounted for %d, AR parity differences %d; "+
		"%d posts to the ERP (%d answered as replays), %d documents marked more than once (a kill mid-write-back; harmless)\n"+
		"seeds that broke a promise: %d\ncommand: %s -soak.backend %s -soak.seeds %d",
		backend, len(results), kills, missed, wall.Round(time.Second), strings.Join(ph, ", "),
		waits, maxWait.Round(10*time.Millisecond), refusals, breaks,
		v.Duplicates, v.Losses, v.Extras, v.Changed, v.Unmarked, v.ExtraMarks, v.NotReplayed, v.Disagree, v.Unaccounted, v.Unbalanced, posts, replays, v.Remarks,
		broken, soakCommand, backend, len(results))
}

// runSoakSeed runs one seed: the reference without kills, then the kills and
// resumes, the final run and one more, and the checks.
func runSoakSeed(t *testing.T, backend string, plan soakPlan) soakSeedResult {
	started := time.Now()
	ctx := context.Background()
	res := soakSeedResult{plan: plan, backend: backend}
	tenant := zuorasim.Generate(plan.seed, plan.volume, plan.from, plan.to)
	records := tenantRecords(tenant)
	var ids []string // the tenant's documents
	for id, dt := range records {
		if stage.DocType(dt).IsDocument() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	res.records, res.apps = len(records), len(records)-len(ids)
	args := plan.runArgs()

	// The reference: the same tenant, nothing killed.
	ref := newProcWorldWith(t, "file", procOptions{tenant: tenant})
	preloadTransferred(t, ref)
	rp := ref.run(t, args...)
	if plan.fixAfter > 0 {
		if rp.code == exitOK || rp.code == exitRejected {
			fixAccounts(t, ref.zuora)
		}
		rp = ref.run(t, args...)
	}
	if rp.code != exitOK && rp.code != exitRejected {
		t.Fatalf("the reference run without kills exited %d\n%s", rp.code, rp)
	}
	o := soakOutcome{Want: ref.erp.Documents(), WantApps: ref.erp.Applications(), WantReversals: ref.erp.Reversals(), WantCode: rp.code,
		Records: records, WantTransferred: map[string]string{}, GotTransferred: map[string]string{}}
	for _, id := range ids {
		o.WantTransferred[id] = ref.zuora.Transferred(id)
	}
	o.WantRejects = outstandingRejects(ctx, t, ref.stageURL)
	o.WantParity, _ = soakParity(ref, o.WantRejects)

	// The soak.
	sw := newSoakWorld(t, backend, tenant)
	preloadTransferred(t, sw.procWorld)
	complete := map[string]bool{}
	var lastKill time.Time
	lastResume := ""
	// letIn starts runs armed with k until one is not refused by the lease.
	letIn := func(k *killPlan) (*soakRun, int) {
		refused := 0
		for {
			r := sw.startRun(t, k, args)
			if r.killed || r.p.code != exitLeaseHeld {
				return r, refused
			}
			refused++
			if lastResume == "break" {
				o.RefusedAfterBreak = append(o.RefusedAfterBreak, strings.Join(messages(r.p.stderr.String()), " / "))
				return r, refused
			}
			if !strings.Contains(r.p.stderr.String(), "another writer holds the stage") {
				t.Fatalf("a run refused with status 4 does not say another writer holds the stage\n%s", r.p)
			}
			if since := time.Since(lastKill); since > procLeaseTTL+3*time.Second {
				o.BlockedPastTTL = append(o.BlockedPastTTL, fmt.Sprintf("%s after the kill (lease TTL %s)", since.Round(10*time.Millisecond), procLeaseTTL))
				return r, refused
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	// attempt runs until k's kill (or the run's end) and frees the stage as k says.
	attempt := func(k *killPlan, label string) (rec killRecord, finished bool) {
		r, refused := letIn(k)
		rec = killRecord{plan: *k, refused: refused}
		res.refusals += refused
		if !lastKill.IsZero() && lastResume == "ttl" {
			rec.blocked = r.startedAt.Sub(lastKill)
			res.maxWait = max(res.maxWait, rec.blocked)
		}
		for _, l := range r.lines {
			if l.msg == "window done" && l.attr("complete") == "true" {
				complete[l.attr("window")] = true
			}
		}
		lastKill, lastResume = time.Time{}, ""
		switch {
		case r.killed:
			left := slices.ContainsFunc(plan.windows(), func(id string) bool { return !complete[id] })
			r.mu.Lock()
			rec.fired, rec.how, rec.phase = true, r.how, classifyKill(r.lines, r.sims, r.killAt, left)
			lastKill = r.killAt
			r.mu.Unlock()
			rec.runID, lastResume = r.runID(), k.resume
			if k.resume == "break" {
				res.breaks++
				breakLease(t, sw.procWorld, rec.runID)
			} else {
				res.waits++
			}
		case r.p.code == exitOK || r.p.code == exitRejected:
			return rec, true // the moment never came: the run finished first
		default:
			o.ResumeFailures = append(o.ResumeFailures, fmt.Sprintf("%s's run exited %d: %s", label, r.p.code, strings.Join(messages(r.p.stderr.String()), " / ")))
		}
		return rec, false
	}
	for i := range plan.kills {
		rec, finished := attempt(&plan.kills[i], fmt.Sprintf("kill %d", i+1))
		res.kills = append(res.kills, rec)
		if finished {
			// Nothing is left but the re-check: the next run is killed there instead.
			fb := plan.kills[i].fallback()
			rec, _ = attempt(&fb, fmt.Sprintf("kill %d's replacement", i+1))
			rec.replaces = true
			res.kills = append(res.kills, rec)
		}
		if plan.fixAfter == i+1 {
			fixAccounts(t, sw.zuora)
		}
	}

	// The final run, then one more that must find nothing to do.
	final, refused := letIn(nil)
	res.refusals += refused
	if !lastKill.IsZero() && lastResume == "ttl" {
		res.maxWait = max(res.maxWait, final.startedAt.Sub(lastKill))
	}
	o.FinalCode, o.FinalReport = final.p.code, final.p.stdout.String()
	requests, marks := len(sw.erp.Requests()), sw.marks.total()
	lastResume = ""
	further, _ := letIn(nil)
	o.FurtherCode, o.FurtherRequests, o.FurtherMarks = further.p.code, len(sw.erp.Requests())-requests, sw.marks.total()-marks

	o.Got, o.GotApps, o.GotRevs = sw.erp.Documents(), sw.erp.Applications(), sw.erp.Reversals()
	o.Requests, o.Marks = sw.erp.Requests(), sw.marks.snapshot()
	for _, id := range ids {
		o.GotTransferred[id] = sw.zuora.Transferred(id)
	}
	o.GotRejects = outstandingRejects(ctx, t, sw.stageURL)
	o.Status = stageStatus(ctx, t, sw.stageURL)
	o.Skipped, o.Confirmed = stageOutcomes(ctx, t, sw.stageURL)
	o.GotParity, o.ParityDocs = soakParity(sw.procWorld, o.GotRejects)
	for _, req := range o.Requests {
		res.posts++
		if req.Replayed {
			res.replays++
		}
	}
	posted := map[string]bool{}
	for _, c := range o.Confirmed {
		if c.DocType != string(stage.Reversal) {
			posted[c.ZuoraID] = true
		}
	}
	held, _ := erpKeys(o.Got, nil, nil)
	res.posted, res.rejected, res.skipped = len(posted), len(o.GotRejects), len(o.Skipped)
	res.held, res.parity = [3]int{len(held), len(o.GotApps), len(o.GotRevs)}, o.ParityDocs
	res.verdict = checkSoak(o)
	if len(res.verdict.Broken) > 0 {
		res.finalErr = final.p.stderr.String()
	}
	res.wall = time.Since(started)
	return res
}

// breakLease frees the stage after a kill as the README says: lease break,
// naming the killed run when it logged its id.
func breakLease(t *testing.T, w *procWorld, runID string) {
	t.Helper()
	args := []string{"lease", "break"}
	if runID != "" {
		args = append(args, "--run-id", runID)
	}
	p := w.run(t, args...)
	out := p.stdout.String() + p.stderr.String()
	switch {
	case p.code == exitOK && (strings.Contains(out, "broke the lease") || strings.Contains(out, "lease is free")):
	case p.code == exitUsage && strings.Contains(out, "no stage at"): // killed before it wrote anything
	default:
		t.Fatalf("lease break after a kill exited %d\n%s", p.code, p)
	}
}

// fixAccounts sets ERPAccountId__c on every account that has none, as a user
// would in Zuora; the values depend only on the tenant, so the reference and
// the soak get the same.
func fixAccounts(t *testing.T, z *zuorasim.Sim) {
	t.Helper()
	for i, a := range z.Snapshot("accounts") {
		if v, _ := a["ERPAccountId__c"].(string); v != "" {
			continue
		}
		id, _ := a["id"].(string)
		if err := z.SetFields(id, map[string]string{"ERPAccountId__c": fmt.Sprintf("ERP-FIX-%03d", i)}); err != nil {
			t.Fatal(err)
		}
	}
}

// outstandingRejects lists a stage's outstanding rejects, doc_type/id → reason code.
func outstandingRejects(ctx context.Context, t *testing.T, stageURL string) map[string]string {
	t.Helper()
	p, err := pipeline.Open(ctx, pipeline.Config{StageURL: stageURL, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	rs, err := p.Rejects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string, len(rs))
	for _, r := range rs {
		out[r.DocType+"/"+r.ZuoraID] = r.ReasonCode
	}
	return out
}

// stageOutcomes reads what a stage's query layer says became of every
// record: the skipped ones (every window's last transform; id → reason
// code) and every post the ledger records as confirmed.
func stageOutcomes(ctx context.Context, t *testing.T, stageURL string) (map[string]string, []ledgerPost) {
	t.Helper()
	p, err := pipeline.Open(ctx, pipeline.Config{StageURL: stageURL, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	db, err := warehouse.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.AttachStage(ctx, p.Stage()); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Strings(ctx, "SELECT zuora_id, reason_code FROM skipped")
	if err != nil {
		t.Fatal(err)
	}
	skipped := make(map[string]string, len(rows))
	for _, r := range rows {
		if prev, twice := skipped[r[0]]; twice {
			r[1] = prev + "+" + r[1] // skipped in two windows: not one fate
		}
		skipped[r[0]] = r[1]
	}
	rows, err = db.Strings(ctx, `SELECT doc_type, zuora_id, idempotency_key FROM ledger
WHERE action = `+warehouse.Literal(stage.ActionPost)+` AND outcome IN (`+warehouse.Literal(stage.OutcomeCreated)+`, `+warehouse.Literal(stage.OutcomeDuplicate)+`)`)
	if err != nil {
		t.Fatal(err)
	}
	confirmed := make([]ledgerPost, 0, len(rows))
	for _, r := range rows {
		confirmed = append(confirmed, ledgerPost{DocType: r[0], ZuoraID: r[1], Key: r[2]})
	}
	return skipped, confirmed
}

// tenantRecords lists every record of the tenant the pipeline moves, the
// documents and the applications, id → doc type.
func tenantRecords(tenant *zuorasim.Tenant) map[string]string {
	out := map[string]string{}
	for _, dt := range stage.Streams() {
		for _, r := range tenant.Snapshot(dt.Object(), nil) {
			id, _ := r["id"].(string)
			out[id] = string(dt)
		}
	}
	return out
}

// preloadTransferred tells w's ERP of the documents the tenant shows
// transferred before the stage, as the demo does: another integration's
// work, which the applications of them join in the ERP.
func preloadTransferred(t *testing.T, w *procWorld) {
	t.Helper()
	if err := (&demo.Servers{Zuora: w.zuora, ERP: w.erp}).PreloadTransferred(); err != nil {
		t.Fatal(err)
	}
}

// soakParity is AR parity between w's simulators over the customers without
// an outstanding reject (parityDifferences), and the documents it compared.
func soakParity(w *procWorld, rejects map[string]string) ([]string, int) {
	zdocs := w.zuora.ARDocuments()
	accountOf, transferred := map[string]string{}, map[string]string{}
	for _, d := range zdocs {
		accountOf[d.ZuoraID], transferred[d.ZuoraID] = d.Account, w.zuora.Transferred(d.ZuoraID)
	}
	for _, dt := range stage.Applications() {
		for _, a := range w.zuora.Snapshot(dt.Object()) {
			id, _ := a["id"].(string)
			accountOf[id], _ = a["accountId"].(string)
		}
	}
	return parityDifferences(zdocs, w.erp.ARDocuments(), rejects, accountOf, transferred)
}

// stageStatus is the status command's audit of every window of a stage.
func stageStatus(ctx context.Context, t *testing.T, stageURL string) *pipeline.Report {
	t.Helper()
	p, err := pipeline.Open(ctx, pipeline.Config{StageURL: stageURL, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	rep, err := p.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}
