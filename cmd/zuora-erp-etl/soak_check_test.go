package main

// The soak's oracles, kept apart from its driver (soak_test.go) so that they
// are tested in the default suite: which phase of a run a SIGKILL hit, as the
// child's log and the simulators show it, and which promise a seed's outcome
// breaks. Each oracle is run against outcomes that break its promise.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/archeck"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/erpsim"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// The phases of a run a kill can hit, in the order a window goes through them.
const (
	phaseStartup   = "startup"         // before the first request for a window's data: settings, lease, start point
	phaseExtract   = "extract"         // a window's Object Query walk, up to its extract manifest
	phaseTransform = "transform"       // from the extract manifest to the load's start: DuckDB, reject index
	phasePosting   = "load posting"    // a post in flight, or the load reading its documents and ledger
	phaseLedger    = "ledger flush"    // every post answered, no mark sent: the ledger part being written
	phaseWriteBack = "write-back"      // a mark in flight (TransferredToAccounting = Yes)
	phaseManifest  = "manifest writes" // marks answered: the last ledger part, the load manifest, the complete marker
	phaseRecheck   = "re-check"        // the outstanding rejects fetched again by id, and what they bring back
)

var soakPhases = []string{phaseStartup, phaseExtract, phaseTransform, phasePosting, phaseLedger, phaseWriteBack, phaseManifest, phaseRecheck}

// settleGap is how long nothing must have moved after the last answer for a
// kill to count as hitting the write that follows it (the ledger part after
// the posts, the manifests after the marks) rather than the gap between two
// requests.
const settleGap = 2 * time.Millisecond

// logLine is one of the child's slog text lines.
type logLine struct {
	at  time.Time // the child's own time stamp (milliseconds)
	msg string
	raw string
}

var (
	logTimeRe = regexp.MustCompile(`^time=(\S+)`)
	logMsgRe  = regexp.MustCompile(` msg=("(?:[^"\\]|\\.)*"|\S+)`)
)

// parseLogLine reads the time and msg of a slog text line; ok is false for
// anything else (the messages a command prints).
func parseLogLine(s string) (logLine, bool) {
	tm := logTimeRe.FindStringSubmatch(s)
	mm := logMsgRe.FindStringSubmatch(s)
	if tm == nil || mm == nil {
		return logLine{}, false
	}
	at, err := time.Parse(time.RFC3339Nano, tm[1])
	if err != nil {
		return logLine{}, false
	}
	msg := mm[1]
	if strings.HasPrefix(msg, `"`) {
		if msg, err = strconv.Unquote(msg); err != nil {
			return logLine{}, false
		}
	}
	return logLine{at: at, msg: msg, raw: s}, true
}

// attr returns the value of one attribute of the line ("" when absent).
func (l logLine) attr(name string) string {
	m := regexp.MustCompile(` ` + regexp.QuoteMeta(name) + `=("(?:[^"\\]|\\.)*"|\S+)`).FindStringSubmatch(l.raw)
	if m == nil {
		return ""
	}
	if v, err := strconv.Unquote(m[1]); err == nil {
		return v
	}
	return m[1]
}

// linePhase is the phase a run is in once it has logged each message.
var linePhase = map[string]string{
	"resuming window":                                           phaseExtract,
	"entity staged":                                             phaseExtract,
	"extract committed":                                         phaseTransform,
	"extract already committed":                                 phaseTransform,
	"transform committed":                                       phaseTransform,
	"transform already committed":                               phaseTransform,
	"documents rejected: see the rejects output":                phaseTransform,
	"reject index built from every window":                      phaseTransform,
	"mapping changed: transforming a window with rejects again": phaseTransform,
	"load started":                                              phasePosting,
	"posting":                                                   phasePosting,
	"load finished":                                             phaseManifest,
	"window done":                                               phaseExtract, // the next window's, or the re-check when none is left
}

// recheckStarted is logged once the re-check has fetched the rejects: what the
// run does from there (staging, mapping and loading them) is the re-check's.
const recheckStarted = "outstanding rejects re-checked"

// simKind is a request the simulators saw from a child.
type simKind int

const (
	simQuery   simKind = iota // an Object Query of a window's data (or the account probe)
	simRecheck                // an Object Query by id (filter[]=id.IN:[…]): the re-check
	simPostIn                 // a post reached the ERP
	simPostOut                // the ERP answered it
	simMarkIn                 // a write-back call reached Zuora
	simMarkOut                // Zuora answered it
	simKinds
)

func (k simKind) String() string {
	return [...]string{"query", "re-check query", "post", "post answer", "mark", "mark answer"}[k]
}

// simEvent is one request as the simulators saw it, on the test's clock.
type simEvent struct {
	at   time.Time
	kind simKind
}

// classifyKill names the phase a SIGKILL at killAt hit, from every line the
// child logged before it died (its own order and times) and every request the
// simulators saw from it; windowsLeft says whether a window of the range was
// still unfinished after the child's last "window done".
func classifyKill(lines []logLine, sims []simEvent, killAt time.Time, windowsLeft bool) string {
	last := -1
	for i, l := range lines {
		if l.msg == recheckStarted {
			return phaseRecheck
		}
		if _, ok := linePhase[l.msg]; ok {
			last = i
		}
	}
	var since time.Time // requests from here on came after the line (its time has milliseconds only)
	phase := phaseStartup
	if last >= 0 {
		since, phase = lines[last].at.Truncate(time.Millisecond), linePhase[lines[last].msg]
	}
	var open [simKinds]int
	var after []simEvent
	for _, e := range sims {
		if e.at.After(killAt) {
			continue
		}
		switch e.kind {
		case simPostIn, simMarkIn:
			open[e.kind]++
		case simPostOut, simMarkOut:
			open[e.kind-1]--
		}
		if !e.at.Before(since) {
			after = append(after, e)
		}
	}
	lastOf := func(kinds ...simKind) (simEvent, bool) {
		for i := len(after) - 1; i >= 0; i-- {
			if slices.Contains(kinds, after[i].kind) {
				return after[i], true
			}
		}
		return simEvent{}, false
	}
	switch {
	case last < 0 || lines[last].msg == "window done":
		q, ok := lastOf(simQuery, simRecheck)
		switch {
		case ok && q.kind == simRecheck:
			return phaseRecheck
		case ok:
			return phaseExtract
		case last < 0:
			return phaseStartup
		case !windowsLeft:
			return phaseRecheck
		}
		return phaseExtract
	case phase == phasePosting:
		switch {
		case open[simPostIn] > 0:
			return phasePosting
		case open[simMarkIn] > 0:
			return phaseWriteBack
		}
		e, ok := lastOf(simPostOut, simMarkOut)
		switch {
		case !ok:
			return phasePosting // reading its documents and ledger
		case e.kind == simPostOut && (postsDone(lines[:last+1], sims, killAt) || killAt.Sub(e.at) >= settleGap):
			return phaseLedger
		case e.kind == simPostOut:
			return phasePosting
		case killAt.Sub(e.at) >= settleGap:
			return phaseManifest
		}
		return phaseWriteBack
	}
	return phase
}

// postsDone reports whether the load the lines end in had every post it was
// going to make answered by killAt: all of a first load's documents (its
// ledger was empty), or all those announced once the last document type was.
func postsDone(lines []logLine, sims []simEvent, killAt time.Time) bool {
	start := -1
	for i, l := range lines {
		if l.msg == "load started" {
			start = i
		}
	}
	if start < 0 {
		return false
	}
	announced, lastType := 0, ""
	for _, l := range lines[start+1:] {
		if l.msg == "posting" {
			n, _ := strconv.Atoi(l.attr("documents"))
			announced, lastType = announced+n, l.attr("doc_type")
		}
	}
	answered := 0
	from := lines[start].at.Truncate(time.Millisecond)
	for _, e := range sims {
		if e.kind == simPostOut && !e.at.Before(from) && !e.at.After(killAt) {
			answered++
		}
	}
	docs, _ := strconv.Atoi(lines[start].attr("documents"))
	first := lines[start].attr("ledger_rows") == "0"
	last := stage.DocType(lastType)
	return announced > 0 && answered >= announced && (first && announced == docs || last == stage.Documents()[len(stage.Documents())-1] || last.IsApplication())
}

// soakOutcome is what one seed left behind after its kills and resumes, beside
// what the same tenant gives when nothing is killed (the reference).
type soakOutcome struct {
	Want, Got              []erpsim.Document    // the ERP's document copies: reference, soak (those it held before the stage included)
	WantApps, GotApps      []erpsim.Application // the ERP's applications
	WantReversals, GotRevs []erpsim.Reversal    // the ERP's reversals
	Requests               []erpsim.Request     // every ERP request of the soak
	Confirmed              []ledgerPost         // every post the soak's ledger records as confirmed
	Marks                  map[string]int       // TransferredToAccounting=Yes sent to Zuora, per id, by the soak
	WantTransferred        map[string]string    // TransferredToAccounting of every document of the tenant: reference
	GotTransferred         map[string]string    // and soak
	WantRejects            map[string]string    // outstanding rejects, doc_type/id → reason code: reference
	GotRejects             map[string]string    // and soak
	Records                map[string]string    // every record of the tenant, documents and applications: id → doc type
	Skipped                map[string]string    // the soak's skipped records, id → reason code
	WantParity, GotParity  []string             // AR parity's differences over the customers without an outstanding reject: reference, soak
	ParityDocs             int                  // the documents the soak's parity compared
	WantCode               int                  // the reference's last exit status
	FinalCode              int                  // the soak's final run
	FinalReport            string               // and what it printed
	Status                 *pipeline.Report     // the soak's stage, every window, after the final run
	FurtherCode            int                  // a run after the final one
	FurtherRequests        int                  // ERP requests it made
	FurtherMarks           int                  // marks it sent
	ResumeFailures         []string             // resumed runs that failed (exit 1), first line
	BlockedPastTTL         []string             // kills after which the stage stayed held longer than the lease's time to live
	RefusedAfterBreak      []string             // runs refused (exit 4) right after lease break
}

// ledgerPost is one post the stage's ledger records as confirmed (created or
// duplicate): the line's doc type (reversal for a reversal), the Zuora id of
// the record it posts or ends, and its Idempotency-Key.
type ledgerPost struct{ DocType, ZuoraID, Key string }

// soakVerdict is what checkSoak found: figures, and every broken promise.
type soakVerdict struct {
	Duplicates  int // keys the ERP holds twice, or live copies beyond the first of one document or application
	Losses      int // documents, applications and reversals the reference posted that the soak did not
	Extras      int // those the soak posted that the reference did not
	Changed     int // those posted with another body than the reference's
	Disagree    int // confirmations in the ledger the ERP does not hold, or the reverse
	Unmarked    int // posted documents not TransferredToAccounting = Yes
	ExtraMarks  int // marks sent for documents the ERP does not hold, or a transfer state unlike the reference's
	Remarks     int // posted documents marked more than once (after a kill mid-write-back: harmless)
	NotReplayed int // posts answered as new after their document existed
	Unaccounted int // records of the tenant not in exactly one of posted, rejected, skipped
	Unbalanced  int // documents whose open balance differs between Zuora and the ERP (customers without an outstanding reject)
	Broken      []string
}

func (v *soakVerdict) broke(format string, args ...any) {
	v.Broken = append(v.Broken, fmt.Sprintf(format, args...))
}

// examples names at most three of keys, sorted.
func examples(keys []string) string {
	slices.Sort(keys)
	if len(keys) > 3 {
		return strings.Join(keys[:3], ", ") + ", …"
	}
	return strings.Join(keys, ", ")
}

// checkSoak checks every promise of the soak against one seed's outcome.
func checkSoak(o soakOutcome) soakVerdict {
	var v soakVerdict
	v.checkOnce(o)
	v.checkReference(o)
	v.checkLedger(o)
	v.checkFates(o)
	v.checkMarks(o)
	v.checkParity(o)
	v.checkRuns(o)
	return v
}

// erpKeys are the keys of what the ERP holds from the pipeline (not the
// documents it held before the stage), each with what it is: the kind and
// Zuora id it names, and its body.
type erpHeld struct {
	what, zuoraID string
	body          json.RawMessage
}

func erpKeys(docs []erpsim.Document, apps []erpsim.Application, revs []erpsim.Reversal) (map[string]erpHeld, []string) {
	out := map[string]erpHeld{}
	var twice []string
	put := func(key string, h erpHeld) {
		if _, ok := out[key]; ok {
			twice = append(twice, h.what+" "+key)
		}
		out[key] = h
	}
	for _, d := range docs {
		if !d.Preloaded {
			put(d.Key, erpHeld{d.Type, d.ZuoraID, d.Body})
		}
	}
	for _, a := range apps {
		put(a.Key, erpHeld{a.Kind + " application", a.ZuoraID, a.Body})
	}
	for _, r := range revs {
		put(r.Key, erpHeld{"reversal", r.ZuoraID, r.Body})
	}
	return out, twice
}

// checkOnce: one ERP record per key, and at most one live copy of each
// document (by Zuora id and by number) and of each application.
func (v *soakVerdict) checkOnce(o soakOutcome) {
	_, twice := erpKeys(o.Got, o.GotApps, o.GotRevs)
	live := map[string]int{}
	for _, d := range o.Got {
		number, zid := docIdentity(d)
		if d.Live {
			for _, k := range []string{zid, d.Type + "/" + number} {
				if live[k]++; live[k] == 2 {
					twice = append(twice, "live "+k)
				}
			}
		}
	}
	for _, a := range o.GotApps {
		if a.Live {
			if live[a.ZuoraID]++; live[a.ZuoraID] == 2 {
				twice = append(twice, "live application "+a.ZuoraID)
			}
		}
	}
	v.Duplicates = len(twice)
	if len(twice) > 0 {
		v.broke("the ERP holds %d records more than once (by key, or live copies by Zuora id or number): %s", len(twice), examples(twice))
	}
}

// checkReference: nothing lost, nothing extra, nothing changed against the
// reference's documents, applications and reversals; the same outstanding rejects.
func (v *soakVerdict) checkReference(o soakOutcome) {
	want, _ := erpKeys(o.Want, o.WantApps, o.WantReversals)
	got, _ := erpKeys(o.Got, o.GotApps, o.GotRevs)
	var lost, extra, changed []string
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			lost = append(lost, w.what+"/"+k)
		case !sameBody(w.body, g.body):
			changed = append(changed, w.what+"/"+k)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			extra = append(extra, g.what+"/"+k)
		}
	}
	v.Losses, v.Extras, v.Changed = len(lost), len(extra), len(changed)
	if len(lost) > 0 {
		v.broke("%d documents, applications or reversals the uninterrupted run posts never reached the ERP (losses): %s", len(lost), examples(lost))
	}
	if len(extra) > 0 {
		v.broke("%d documents, applications or reversals reached the ERP that the uninterrupted run does not post: %s", len(extra), examples(extra))
	}
	if len(changed) > 0 {
		v.broke("%d records reached the ERP with another body than the uninterrupted run's: %s", len(changed), examples(changed))
	}
	var missing, unexpected []string
	for k, r := range o.WantRejects {
		if o.GotRejects[k] != r {
			missing = append(missing, k+" "+r)
		}
	}
	for k, r := range o.GotRejects {
		if o.WantRejects[k] != r {
			unexpected = append(unexpected, k+" "+r)
		}
	}
	if len(missing)+len(unexpected) > 0 {
		v.broke("the outstanding rejects differ from the uninterrupted run's: %d there, %d here (missing: %s; unexpected: %s)",
			len(o.WantRejects), len(o.GotRejects), examples(missing), examples(unexpected))
	}
}

// checkLedger: the stage's ledger confirms exactly what the ERP holds, key
// for key: an answer the ledger lost was asked again and recorded.
func (v *soakVerdict) checkLedger(o soakOutcome) {
	held, _ := erpKeys(o.Got, o.GotApps, o.GotRevs)
	confirmed := map[string]bool{}
	var notHeld, notConfirmed []string
	for _, c := range o.Confirmed {
		confirmed[c.Key] = true
		if _, ok := held[c.Key]; !ok {
			notHeld = append(notHeld, c.DocType+"/"+c.Key)
		}
	}
	for k, h := range held {
		if !confirmed[k] {
			notConfirmed = append(notConfirmed, h.what+"/"+k)
		}
	}
	v.Disagree = len(notHeld) + len(notConfirmed)
	if v.Disagree > 0 {
		v.broke("the ledger and the ERP disagree: %d posts the ledger confirms that the ERP does not hold (%s), %d the ERP holds that the ledger does not confirm (%s)",
			len(notHeld), examples(notHeld), len(notConfirmed), examples(notConfirmed))
	}
}

// checkFates: every record of the tenant, document or application, ends in
// exactly one of posted (the ledger confirms a post of it), rejected with a
// reason (an outstanding reject) or skipped with a reason; a reversal of a
// posted record is no fate of its own.
func (v *soakVerdict) checkFates(o soakOutcome) {
	fates := map[string][]string{}
	for _, c := range o.Confirmed {
		if c.DocType != string(stage.Reversal) && !slices.Contains(fates[c.ZuoraID], "posted") {
			fates[c.ZuoraID] = append(fates[c.ZuoraID], "posted")
		}
	}
	for k, r := range o.GotRejects {
		_, id, _ := strings.Cut(k, "/")
		fates[id] = append(fates[id], "rejected "+r)
	}
	for id, r := range o.Skipped {
		fates[id] = append(fates[id], "skipped "+r)
	}
	var unaccounted []string
	for id, dt := range o.Records {
		f := fates[id]
		if len(f) != 1 || strings.HasSuffix(f[0], " ") {
			where := "nowhere"
			if len(f) > 0 {
				where = strings.Join(f, ", ")
			}
			unaccounted = append(unaccounted, fmt.Sprintf("%s %s (%s)", dt, id, where))
		}
	}
	for id, f := range fates {
		if _, ok := o.Records[id]; !ok {
			unaccounted = append(unaccounted, fmt.Sprintf("%s (not in the tenant: %s)", id, strings.Join(f, ", ")))
		}
	}
	v.Unaccounted = len(unaccounted)
	if len(unaccounted) > 0 {
		v.broke("%d records are not accounted for exactly once (posted, rejected with a reason, or skipped with a reason): %s", len(unaccounted), examples(unaccounted))
	}
}

// checkMarks: every document the ERP holds from the pipeline is marked in
// Zuora, nothing else; and the transfer states end as without kills.
func (v *soakVerdict) checkMarks(o soakOutcome) {
	posted := map[string]string{} // Zuora id → doc type
	for _, d := range o.Got {
		if !d.Preloaded {
			posted[d.ZuoraID] = d.Type
		}
	}
	var unmarked, extraMarks, remarks []string
	for id, dt := range posted {
		if o.GotTransferred[id] != "Yes" {
			unmarked = append(unmarked, dt+"/"+id)
		}
		if o.Marks[id] > 1 {
			remarks = append(remarks, id)
		}
	}
	for id := range o.Marks {
		if _, ok := posted[id]; !ok {
			extraMarks = append(extraMarks, id)
		}
	}
	for id, w := range o.WantTransferred {
		if g := o.GotTransferred[id]; g != w && !slices.Contains(extraMarks, id) {
			extraMarks = append(extraMarks, id+" ("+strconv.Quote(g)+", not "+strconv.Quote(w)+")")
		}
	}
	v.Unmarked, v.ExtraMarks, v.Remarks = len(unmarked), len(extraMarks), len(remarks)
	if len(unmarked) > 0 {
		v.broke("%d documents the ERP holds are not marked transferred in Zuora: %s", len(unmarked), examples(unmarked))
	}
	if len(extraMarks) > 0 {
		v.broke("%d records were marked in Zuora that the ERP does not hold, or ended in another transfer state than without kills: %s", len(extraMarks), examples(extraMarks))
	}
	// A post after its record was created is answered from the idempotency store.
	created := map[string]bool{}
	var notReplayed []string
	for _, r := range o.Requests {
		if r.Method != "POST" {
			continue
		}
		if created[r.Key] && !r.Replayed {
			notReplayed = append(notReplayed, fmt.Sprintf("%s (status %d)", r.Key, r.Status))
		}
		if r.Status >= 200 && r.Status < 300 {
			created[r.Key] = true
		}
	}
	v.NotReplayed = len(notReplayed)
	if len(notReplayed) > 0 {
		v.broke("%d posts came after their record was created and were not answered as replays: %s", len(notReplayed), examples(notReplayed))
	}
}

// checkParity: every document's open balance in the ERP equals Zuora's,
// over the customers without an outstanding reject, after the kills as without them.
func (v *soakVerdict) checkParity(o soakOutcome) {
	v.Unbalanced = len(o.GotParity)
	if len(o.GotParity) > 0 {
		v.broke("AR parity: %d documents' open balances differ between Zuora and the ERP: %s", len(o.GotParity), examples(slices.Clone(o.GotParity)))
	}
	if len(o.WantParity) > 0 {
		v.broke("AR parity does not hold without kills either: %d documents differ: %s", len(o.WantParity), examples(slices.Clone(o.WantParity)))
	}
	if o.ParityDocs == 0 {
		v.broke("AR parity compared no document")
	}
}

// checkRuns: the final run ends as the uninterrupted one, its report and the
// stage's status balance, a further run does nothing, every resume worked
// and the lease freed the stage in time.
func (v *soakVerdict) checkRuns(o soakOutcome) {
	if o.FinalCode != o.WantCode {
		v.broke("the final run exited %d; the uninterrupted run exits %d", o.FinalCode, o.WantCode)
	}
	for _, p := range reportProblems(o.FinalReport) {
		v.broke("the final run's report: %s", p)
	}
	v.checkStatus(o)
	if o.FurtherCode != o.WantCode || o.FurtherRequests != 0 || o.FurtherMarks != 0 {
		v.broke("a run after the final one exited %d (want %d), made %d ERP requests and sent %d marks (want none)", o.FurtherCode, o.WantCode, o.FurtherRequests, o.FurtherMarks)
	}
	for _, f := range o.ResumeFailures {
		v.broke("a resumed run failed: %s", f)
	}
	for _, b := range o.BlockedPastTTL {
		v.broke("the stage stayed held past the lease's time to live: %s", b)
	}
	for _, r := range o.RefusedAfterBreak {
		v.broke("a run was refused right after lease break: %s", r)
	}
}

// checkStatus: every window of the stage complete and balanced, nothing
// pending or waiting, every posted document marked, and as many document
// posts as the ERP holds copies.
func (v *soakVerdict) checkStatus(o soakOutcome) {
	if o.Status == nil {
		v.broke("no status of the stage")
		return
	}
	var posted int64
	for _, w := range o.Status.Windows {
		if !w.Complete {
			v.broke("status: window %s is not complete (extracted %t, transformed %t, loaded %t)", w.Window.ID(), w.Extracted, w.Transformed, w.Loaded)
		}
		for _, l := range w.Lines {
			doc := stage.DocType(l.DocType).IsDocument()
			if doc {
				posted += l.Posted.Count
			}
			if !l.Balanced() || l.Pending.Count != 0 || l.Waiting.Count != 0 || doc && !l.Marked.Equal(l.Posted) {
				v.broke("status: window %s %s %s: extracted %d = posted %d + rejected %d + erp-rejected %d + dep-rejected %d + skipped %d + pending %d + waiting %d, marked %d",
					w.Window.ID(), l.DocType, l.Currency, l.Extracted.Count, l.Posted.Count, l.Rejected.Count, l.ERPRejected.Count, l.DependencyRejected.Count,
					l.Skipped.Count, l.Pending.Count, l.Waiting.Count, l.Marked.Count)
			}
		}
	}
	copies := 0
	for _, d := range o.Got {
		if !d.Preloaded {
			copies++
		}
	}
	if posted != int64(copies) {
		v.broke("status: the stage counts %d documents posted; the ERP holds %d copies from the pipeline", posted, copies)
	}
}

// parityDifferences compares every document's open balance in Zuora and in
// the ERP (internal/archeck) over the customers without an outstanding
// reject (rejects: doc_type/id → reason; accountOf: the Zuora account of
// every document and application), as the demo does, leaving out, as
// reconcile does, the documents the ERP does not hold that Zuora shows
// transferred by another integration or Ignore (transferred: id → Zuora's
// TransferredToAccounting); it returns each difference and how many
// documents it compared.
func parityDifferences(zdocs []archeck.ZuoraDoc, edocs []archeck.ERPDoc, rejects, accountOf, transferred map[string]string) ([]string, int) {
	left := map[string]bool{}
	for k := range rejects {
		_, id, _ := strings.Cut(k, "/")
		left[accountOf[id]] = true
	}
	held := map[string]bool{}
	for _, d := range edocs {
		held[d.ZuoraID] = true
	}
	ours := func(id string) bool {
		a, ok := accountOf[id]
		return ok && !left[a] && (held[id] || transferred[id] != "Yes" && transferred[id] != "Ignore")
	}
	var zs []archeck.ZuoraDoc
	for _, d := range zdocs {
		if ours(d.ZuoraID) {
			zs = append(zs, d)
		}
	}
	var es []archeck.ERPDoc
	for _, d := range edocs {
		if ours(d.ZuoraID) {
			es = append(es, d)
		}
	}
	diffs, err := archeck.Compare(zs, es)
	if err != nil {
		return []string{err.Error()}, len(zs)
	}
	out := make([]string, 0, len(diffs))
	for _, d := range diffs {
		out = append(out, d.String())
	}
	return out, len(zs)
}

// docIdentity returns the document's number and Zuora id: the ERP's record
// of them, else what its body carries.
func docIdentity(d erpsim.Document) (number, zuoraID string) {
	if d.ZuoraID != "" && d.Number != "" {
		return d.Number, d.ZuoraID
	}
	var body map[string]struct {
		Number  string `json:"number"`
		ZuoraID string `json:"zuora_id"`
	}
	_ = json.Unmarshal(d.Body, &body)
	for _, h := range body {
		return h.Number, h.ZuoraID
	}
	return "", ""
}

// sameBody compares two JSON bodies as values, numbers by their text.
func sameBody(a, b json.RawMessage) bool {
	decode := func(raw json.RawMessage) any {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			return string(raw)
		}
		return v
	}
	return reflect.DeepEqual(decode(a), decode(b))
}

// reportProblems reads a run's printed report and says what does not hold:
// extracted = posted + rejected + erp-rejected + dep-rejected + skipped +
// pending + waiting on every record line, nothing pending or waiting, every
// posted document marked, and every amount line balanced. A run with no
// window due has nothing to balance.
func reportProblems(out string) []string {
	if strings.Contains(out, "no window was due") {
		return nil
	}
	var problems []string
	sc := bufio.NewScanner(strings.NewReader(out))
	section := ""
	lines := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 0:
			section = ""
			continue
		case f[0] == "records" || f[0] == "amounts":
			section = f[0]
			continue
		}
		switch section {
		case "records":
			lines++
			if len(f) != 11 {
				problems = append(problems, fmt.Sprintf("unreadable record line %q", sc.Text()))
				continue
			}
			// extracted ready rejected skipped posted erp-rejected dep-rejected pending waiting marked ("-": no flag)
			n := make([]int64, 10)
			for i := range n {
				v, err := strconv.ParseInt(f[i+1], 10, 64)
				if err != nil && !(i == 9 && f[i+1] == "-") {
					problems = append(problems, fmt.Sprintf("unreadable record line %q", sc.Text()))
					break
				}
				n[i] = v
			}
			if n[0] != n[4]+n[2]+n[5]+n[6]+n[3]+n[7]+n[8] {
				problems = append(problems, fmt.Sprintf("%s: extracted %d ≠ posted %d + rejected %d + erp-rejected %d + dep-rejected %d + skipped %d + pending %d + waiting %d",
					f[0], n[0], n[4], n[2], n[5], n[6], n[3], n[7], n[8]))
			}
			if n[7] != 0 || n[8] != 0 {
				problems = append(problems, fmt.Sprintf("%s: %d pending, %d waiting", f[0], n[7], n[8]))
			}
			if f[10] != "-" && n[9] != n[4] {
				problems = append(problems, fmt.Sprintf("%s: %d posted but %d marked", f[0], n[4], n[9]))
			}
		case "amounts":
			if f[len(f)-1] != "yes" {
				problems = append(problems, fmt.Sprintf("amounts of %s %s do not balance", f[0], f[1]))
			}
		}
	}
	if lines == 0 {
		problems = append(problems, "no record lines in the report")
	}
	return problems
}

// TestClassifyKill: the phase each kind of moment maps to.
func TestClassifyKill(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }
	line := func(ms float64, msg string, attrs ...string) logLine {
		return logLine{at: at(ms).Truncate(time.Millisecond), msg: msg, raw: "time=… msg=" + strconv.Quote(msg) + " " + strings.Join(attrs, " ")}
	}
	ev := func(ms float64, k simKind) simEvent { return simEvent{at: at(ms), kind: k} }
	staged := []logLine{line(1, "entity staged"), line(2, "extract committed"), line(5, "transform committed"),
		line(6, "load started", "documents=3", "ledger_rows=0"), line(6, "posting", "doc_type=invoice", "documents=2")}
	posted := func(more ...logLine) []logLine { return append(slices.Clone(staged), more...) }
	post := func(ms float64) []simEvent { return []simEvent{ev(ms, simPostIn), ev(ms+0.1, simPostOut)} }
	resumed := posted()
	resumed[3] = line(6, "load started", "documents=3", "ledger_rows=4")
	for _, c := range []struct {
		name        string
		lines       []logLine
		sims        []simEvent
		kill        float64
		windowsLeft bool
		want        string
	}{
		{"nothing logged or asked", nil, nil, 1, true, phaseStartup},
		{"a query before any line", nil, []simEvent{ev(1, simQuery)}, 2, true, phaseExtract},
		{"a run with nothing due re-checks", nil, []simEvent{ev(1, simRecheck)}, 2, false, phaseRecheck},
		{"an entity staged", staged[:1], []simEvent{ev(0.5, simQuery)}, 1.5, true, phaseExtract},
		{"after the extract manifest", staged[:2], nil, 3, true, phaseTransform},
		{"the load reads its ledger", staged[:4], nil, 6.5, true, phasePosting},
		{"a post in flight", staged, []simEvent{ev(6.2, simPostIn)}, 6.5, true, phasePosting},
		{"between two posts", staged, []simEvent{ev(6.2, simPostIn), ev(6.3, simPostOut)}, 6.4, true, phasePosting},
		{"every post answered, nothing since", staged, []simEvent{ev(6.2, simPostIn), ev(6.3, simPostOut)}, 9, true, phaseLedger},
		{"a first load's last post answered", posted(line(6, "posting", "doc_type=payment", "documents=1")), slices.Concat(post(6.2), post(6.4), post(6.6)), 6.8, true, phaseLedger},
		{"a first load between two types", posted(), slices.Concat(post(6.2), post(6.4)), 6.6, true, phasePosting},
		{"a resumed load after its last type", append(resumed, line(6, "posting", "doc_type=refund", "documents=1")), slices.Concat(post(6.2), post(6.4), post(6.6)), 6.8, true, phaseLedger},
		{"a resumed load before its last type", resumed, slices.Concat(post(6.2), post(6.4)), 6.6, true, phasePosting},
		{"a mark in flight", staged, []simEvent{ev(6.2, simPostIn), ev(6.3, simPostOut), ev(8, simMarkIn)}, 8.1, true, phaseWriteBack},
		{"between two marks", staged, []simEvent{ev(6.2, simPostIn), ev(6.3, simPostOut), ev(8, simMarkIn), ev(8.5, simMarkOut)}, 8.6, true, phaseWriteBack},
		{"marks answered, nothing since", staged, []simEvent{ev(6.2, simPostIn), ev(6.3, simPostOut), ev(8, simMarkIn), ev(8.5, simMarkOut)}, 12, true, phaseManifest},
		{"the previous window's marks do not count", staged, []simEvent{ev(0.1, simMarkIn), ev(0.2, simMarkOut)}, 30, true, phasePosting},
		{"a request after the kill does not count", staged, []simEvent{ev(6.2, simPostIn), ev(6.3, simPostOut), ev(9.5, simPostIn)}, 9, true, phaseLedger},
		{"load finished", append(staged[:5:5], line(13, "load finished")), nil, 14, true, phaseManifest},
		{"window done, windows left", append(staged[:5:5], line(13, "window done")), nil, 14, true, phaseExtract},
		{"window done, the next window's query", append(staged[:5:5], line(13, "window done")), []simEvent{ev(14, simQuery)}, 15, false, phaseExtract},
		{"window done, none left", append(staged[:5:5], line(13, "window done")), nil, 14, false, phaseRecheck},
		{"window done, a query by id", append(staged[:5:5], line(13, "window done")), []simEvent{ev(14, simRecheck)}, 15, true, phaseRecheck},
		{"the re-check maps and loads again", []logLine{line(1, recheckStarted), line(2, "transform committed"), line(3, "posting")}, []simEvent{ev(3.5, simPostIn)}, 4, false, phaseRecheck},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := classifyKill(c.lines, c.sims, at(c.kill), c.windowsLeft); got != c.want {
				t.Errorf("classifyKill = %q; want %q", got, c.want)
			}
		})
	}
}

func TestParseLogLine(t *testing.T) {
	l, ok := parseLogLine(`time=2026-12-02T00:51:35.582Z level=INFO msg="load started" window=20261120T000000Z-20261120T010000Z run_id=run-20261202T005135.177Z documents=33 ledger_rows=0`)
	if !ok || l.msg != "load started" || l.attr("documents") != "33" || l.attr("window") != "20261120T000000Z-20261120T010000Z" || l.at.Nanosecond() != 582e6 {
		t.Errorf("parsed %+v (ok %t), documents=%q", l, ok, l.attr("documents"))
	}
	if l, ok := parseLogLine(`time=2026-12-02T00:51:35.582Z level=INFO msg=posting doc_type=invoice documents=15`); !ok || l.msg != "posting" || l.attr("doc_type") != "invoice" {
		t.Errorf("unquoted msg: %+v (ok %t)", l, ok)
	}
	if _, ok := parseLogLine("zuora-erp-etl: some documents were rejected"); ok {
		t.Error("a message line parsed as a log line")
	}
}

// TestCheckSoakCatchesBrokenPromises runs the soak's oracle on a sound outcome
// and on one broken promise at a time; each must be named.
func TestCheckSoakCatchesBrokenPromises(t *testing.T) {
	doc := func(key, number string) erpsim.Document {
		return erpsim.Document{Type: "invoice", Key: key, ZuoraID: key, Live: true,
			Body: json.RawMessage(fmt.Sprintf(`{"invoice":{"zuora_id":%q,"number":%q,"amount":1.50}}`, key, number))}
	}
	app := func(key, id string) erpsim.Application {
		return erpsim.Application{Key: key, ZuoraID: id, Kind: "payment", Live: true,
			Body: json.RawMessage(fmt.Sprintf(`{"application":{"zuora_id":%q,"kind":"payment","amount":1.00}}`, id))}
	}
	// d was transferred by another integration: the ERP held it before the stage.
	preloaded := erpsim.Document{Type: "invoice", ZuoraID: "d", Number: "INV4", Live: true, Preloaded: true}
	w := stage.Window{Start: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 11, 20, 1, 0, 0, 0, time.UTC)}
	two := stage.Tally{Count: 2, Amount: decimal.RequireFromString("3")}
	sound := func() soakOutcome {
		return soakOutcome{
			Want:     []erpsim.Document{preloaded, doc("a", "INV1"), doc("b", "INV2")},
			Got:      []erpsim.Document{preloaded, doc("a", "INV1"), doc("b", "INV2")},
			WantApps: []erpsim.Application{app("p", "p")},
			GotApps:  []erpsim.Application{app("p", "p")},
			Requests: []erpsim.Request{
				{Method: "POST", Key: "a", Status: 201}, {Method: "POST", Key: "b", Status: 201}, {Method: "POST", Key: "b", Status: 200, Replayed: true},
				{Method: "POST", Key: "p", Status: 201},
			},
			Confirmed:       []ledgerPost{{"invoice", "a", "a"}, {"invoice", "b", "b"}, {"invoice", "b", "b"}, {"payment_application", "p", "p"}},
			Marks:           map[string]int{"a": 1, "b": 2},
			WantTransferred: map[string]string{"a": "Yes", "b": "Yes", "c": "", "d": "Yes", "e": ""},
			GotTransferred:  map[string]string{"a": "Yes", "b": "Yes", "c": "", "d": "Yes", "e": ""},
			WantRejects:     map[string]string{"invoice/c": "NO_ERP_ACCOUNT"},
			GotRejects:      map[string]string{"invoice/c": "NO_ERP_ACCOUNT"},
			Records:         map[string]string{"a": "invoice", "b": "invoice", "c": "invoice", "d": "invoice", "e": "invoice", "p": "payment_application"},
			Skipped:         map[string]string{"d": "ALREADY_TRANSFERRED", "e": "NOT_POSTED"},
			ParityDocs:      3,
			WantCode:        3, FinalCode: 3, FurtherCode: 3,
			FinalReport: "run-x: 1 window(s) attempted\n\n" +
				"      records  extracted  ready  rejected  skipped  posted  erp-rejected  dep-rejected  pending  waiting  marked\n" +
				"      invoice          5      2         1        2       2             0             0        0        0       2\n" +
				"  payment_application  1      1         0        0       1             0             0        0        0       -\n\n" +
				"      amounts  cur     extracted  ready  rejected  skipped  posted  erp-rejected  dep-rejected  pending  waiting  marked  balanced\n" +
				"      invoice  USD             6      3         2        1       3             -             -        -        -       3       yes\n",
			Status: &pipeline.Report{Windows: []pipeline.WindowReport{{Window: w, Extracted: true, Transformed: true, Loaded: true, Complete: true,
				Lines: []pipeline.Line{{DocType: "invoice", Currency: "USD", Extracted: two, Ready: two, Posted: two, Marked: two}}}}},
		}
	}
	if v := checkSoak(sound()); len(v.Broken) != 0 || v.Remarks != 1 {
		t.Fatalf("a sound outcome: broken %q, remarks %d (want none broken, 1 re-mark)", v.Broken, v.Remarks)
	}
	for _, c := range []struct {
		name   string
		break_ func(o *soakOutcome)
		want   string
		count  func(v soakVerdict) int
	}{
		{"a second live copy under another key", func(o *soakOutcome) {
			o.Got = append(o.Got, doc("a2", "INV1"))
			o.Want = append(o.Want, doc("a2", "INV1"))
		},
			"more than once", func(v soakVerdict) int { return v.Duplicates }},
		{"an application live twice", func(o *soakOutcome) {
			o.GotApps = append(o.GotApps, app("p2", "p"))
			o.WantApps = append(o.WantApps, app("p2", "p"))
		}, "more than once", func(v soakVerdict) int { return v.Duplicates }},
		{"a key held twice", func(o *soakOutcome) {
			r := erpsim.Reversal{Key: "a:reversal:1", ZuoraID: "a"}
			o.GotRevs, o.WantReversals = []erpsim.Reversal{r, r}, []erpsim.Reversal{r}
		}, "more than once", func(v soakVerdict) int { return v.Duplicates }},
		{"a loss", func(o *soakOutcome) { o.Got = o.Got[:2] }, "losses", func(v soakVerdict) int { return v.Losses }},
		{"a lost application", func(o *soakOutcome) { o.GotApps = nil }, "losses", func(v soakVerdict) int { return v.Losses }},
		{"an extra document", func(o *soakOutcome) { o.Got = append(o.Got, doc("z", "INV9")) }, "does not post", func(v soakVerdict) int { return v.Extras }},
		{"an extra reversal", func(o *soakOutcome) {
			o.GotRevs = []erpsim.Reversal{{Key: "a:reversal:1", ZuoraID: "a", Body: json.RawMessage(`{}`)}}
		}, "does not post", func(v soakVerdict) int { return v.Extras }},
		{"a changed body", func(o *soakOutcome) {
			o.Got[2].Body = json.RawMessage(`{"invoice":{"zuora_id":"b","number":"INV2","amount":2}}`)
		},
			"another body", func(v soakVerdict) int { return v.Changed }},
		{"an application with another amount", func(o *soakOutcome) {
			o.GotApps[0].Body = json.RawMessage(`{"application":{"zuora_id":"p","kind":"payment","amount":-1.00}}`)
		}, "another body", func(v soakVerdict) int { return v.Changed }},
		{"a confirmation the ERP does not hold", func(o *soakOutcome) {
			o.Confirmed = append(o.Confirmed, ledgerPost{"reversal", "a", "a:reversal:1"})
		}, "the ledger and the ERP disagree", func(v soakVerdict) int { return v.Disagree }},
		{"an ERP record the ledger does not confirm", func(o *soakOutcome) {
			o.Confirmed = o.Confirmed[:3]
			o.Skipped["p"] = "NOT_POSTED" // its fate elsewhere: only the ledger disagrees
		}, "the ledger and the ERP disagree", func(v soakVerdict) int { return v.Disagree }},
		{"an unmarked document", func(o *soakOutcome) { o.GotTransferred["b"] = "" }, "not marked", func(v soakVerdict) int { return v.Unmarked }},
		{"a mark of a reject", func(o *soakOutcome) { o.Marks["c"] = 1; o.GotTransferred["c"] = "Yes" }, "does not hold", func(v soakVerdict) int { return v.ExtraMarks }},
		{"a mark of a document the ERP held before", func(o *soakOutcome) { o.Marks["d"] = 1 }, "does not hold", func(v soakVerdict) int { return v.ExtraMarks }},
		{"a transfer state changed by another path", func(o *soakOutcome) { o.GotTransferred["d"] = "No" }, "transfer state", func(v soakVerdict) int { return v.ExtraMarks }},
		{"a post answered as new after its document existed", func(o *soakOutcome) {
			o.Requests = append(o.Requests, erpsim.Request{Method: "POST", Key: "a", Status: 409})
		}, "not answered as replays", func(v soakVerdict) int { return v.NotReplayed }},
		{"a lost reject", func(o *soakOutcome) { o.GotRejects = nil }, "outstanding rejects differ", nil},
		{"a reject with another reason", func(o *soakOutcome) { o.GotRejects["invoice/c"] = "UNKNOWN_CURRENCY" }, "outstanding rejects differ", nil},
		{"a record nowhere", func(o *soakOutcome) { o.Skipped = nil }, "not accounted for", func(v soakVerdict) int { return v.Unaccounted }},
		{"a record in two places", func(o *soakOutcome) { o.Skipped["a"] = "ALREADY_POSTED" }, "not accounted for", func(v soakVerdict) int { return v.Unaccounted }},
		{"an application waiting: nowhere", func(o *soakOutcome) {
			o.Confirmed, o.GotApps, o.WantApps = o.Confirmed[:3], nil, nil
		}, "not accounted for", func(v soakVerdict) int { return v.Unaccounted }},
		{"a reversal is no fate", func(o *soakOutcome) {
			o.Confirmed = append(o.Confirmed[:3], ledgerPost{"reversal", "p", "p:reversal:1"})
			o.GotApps, o.WantApps = nil, nil
			r := erpsim.Reversal{Key: "p:reversal:1", ZuoraID: "p"}
			o.GotRevs, o.WantReversals = []erpsim.Reversal{r}, []erpsim.Reversal{r}
		}, "not accounted for", func(v soakVerdict) int { return v.Unaccounted }},
		{"a skip without a reason", func(o *soakOutcome) { o.Skipped["d"] = "" }, "not accounted for", func(v soakVerdict) int { return v.Unaccounted }},
		{"a record the tenant does not have", func(o *soakOutcome) { o.Skipped["x"] = "ALREADY_POSTED" }, "not in the tenant", func(v soakVerdict) int { return v.Unaccounted }},
		{"a parity difference", func(o *soakOutcome) { o.GotParity = []string{"USD invoice a INV1: Zuora 1.50, ERP 0.50"} }, "AR parity", func(v soakVerdict) int { return v.Unbalanced }},
		{"parity broken without kills", func(o *soakOutcome) { o.WantParity = []string{"USD invoice a INV1: Zuora 1.50, ERP 0.50"} }, "without kills either", nil},
		{"parity over nothing", func(o *soakOutcome) { o.ParityDocs = 0 }, "compared no document", nil},
		{"another exit status", func(o *soakOutcome) { o.FinalCode = 1 }, "final run exited 1", nil},
		{"an unbalanced report", func(o *soakOutcome) {
			o.FinalReport = strings.Replace(o.FinalReport, "invoice          5", "invoice          6", 1)
		},
			"extracted 6", nil},
		{"a pending document in the report", func(o *soakOutcome) {
			o.FinalReport = strings.Replace(o.FinalReport, "2             0             0        0        0       2", "1             0             0        1        0       1", 1)
		}, "1 pending", nil},
		{"an application still waiting in the report", func(o *soakOutcome) {
			o.FinalReport = strings.Replace(o.FinalReport, "1             0             0        0        0       -", "0             0             0        0        1       -", 1)
		}, "1 waiting", nil},
		{"an unbalanced amount", func(o *soakOutcome) { o.FinalReport = strings.Replace(o.FinalReport, "yes", "NO", 1) }, "amounts of invoice USD", nil},
		{"a report without lines", func(o *soakOutcome) { o.FinalReport = "zuora-erp-etl: failed" }, "no record lines", nil},
		{"a pending window in the status", func(o *soakOutcome) {
			l := &o.Status.Windows[0].Lines[0]
			l.Posted, l.Marked, l.Pending = stage.Tally{Count: 1, Amount: decimal.RequireFromString("1.5")}, stage.Tally{Count: 1, Amount: decimal.RequireFromString("1.5")}, stage.Tally{Count: 1, Amount: decimal.RequireFromString("1.5")}
			o.Status.Windows[0].Complete = false
		}, "not complete", nil},
		{"a waiting application in the status", func(o *soakOutcome) {
			one := stage.Tally{Count: 1, Amount: decimal.RequireFromString("1")}
			o.Status.Windows[0].Lines = append(o.Status.Windows[0].Lines, pipeline.Line{DocType: "payment_application", Currency: "USD", Extracted: one, Ready: one, Waiting: one})
		}, "waiting 1", nil},
		{"a further run that posts", func(o *soakOutcome) { o.FurtherRequests = 1 }, "after the final one", nil},
		{"a failed resume", func(o *soakOutcome) { o.ResumeFailures = []string{"exit 1: load window …"} }, "resumed run failed", nil},
		{"a stage held past the TTL", func(o *soakOutcome) { o.BlockedPastTTL = []string{"kill 1: 9s"} }, "time to live", nil},
		{"a refusal after lease break", func(o *soakOutcome) { o.RefusedAfterBreak = []string{"kill 2"} }, "lease break", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := sound()
			c.break_(&o)
			v := checkSoak(o)
			if !slices.ContainsFunc(v.Broken, func(b string) bool { return strings.Contains(b, c.want) }) {
				t.Errorf("broken promises %q do not say %q", v.Broken, c.want)
			}
			if c.count != nil && c.count(v) == 0 {
				t.Errorf("the figure for %s stayed 0: %+v", c.name, v)
			}
		})
	}
}

// TestParityDifferencesLeaveOutCustomersWithRejects: parity speaks for the
// customers without an outstanding reject, and for every one of them.
func TestParityDifferencesLeaveOutCustomersWithRejects(t *testing.T) {
	five, four := decimal.RequireFromString("5"), decimal.RequireFromString("4")
	zdocs := []archeck.ZuoraDoc{
		{ZuoraID: "x", DocType: "invoice", Account: "A", Currency: "USD", Status: "Posted", Open: five},
		{ZuoraID: "y", DocType: "invoice", Account: "B", Currency: "USD", Status: "Posted", Open: five},
	}
	edocs := []archeck.ERPDoc{
		{ZuoraID: "x", DocType: "invoice", Currency: "USD", Live: true, Open: four},
		{ZuoraID: "y", DocType: "invoice", Currency: "USD", Live: true, Open: four},
	}
	accountOf := map[string]string{"x": "A", "y": "B", "z": "A", "r": "B"}
	transferred := map[string]string{"x": "Yes", "y": "Yes", "z": "Yes"}
	if diffs, n := parityDifferences(zdocs, edocs, nil, accountOf, transferred); len(diffs) != 2 || n != 2 {
		t.Errorf("without rejects: %d documents compared, differences %q; want 2 and 2", n, diffs)
	}
	diffs, n := parityDifferences(zdocs, edocs, map[string]string{"payment_application/r": "ERP_REJECTED"}, accountOf, transferred)
	if len(diffs) != 1 || !strings.Contains(diffs[0], " x ") || n != 1 {
		t.Errorf("customer B has a reject: %d documents compared, differences %q; want x's only", n, diffs)
	}
	// z: open in Zuora, not in the ERP: a difference, unless another integration transferred it.
	zdocs = append(zdocs, archeck.ZuoraDoc{ZuoraID: "z", DocType: "invoice", Account: "A", Currency: "USD", Status: "Posted", Open: five})
	if diffs, _ := parityDifferences(zdocs, edocs, nil, accountOf, transferred); len(diffs) != 2 {
		t.Errorf("z transferred by another integration, not in the ERP: differences %q; want x's and y's", diffs)
	}
	if diffs, _ := parityDifferences(zdocs, edocs, nil, accountOf, map[string]string{"z": ""}); len(diffs) != 3 {
		t.Errorf("z ours, not in the ERP: differences %q; want x's, y's and z's", diffs)
	}
}
