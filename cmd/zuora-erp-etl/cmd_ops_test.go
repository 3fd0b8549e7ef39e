package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/demo"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/erpsim"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/testutil"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// multiStage is a stage of four hourly windows: three complete with the
// tenant's rejects, and a fourth holding the echoes of the first three's
// write-back whose load stopped on an ERP outage, so it is unfinished.
type multiStage struct {
	srv      *demo.Servers
	dir      string
	environ  map[string]string
	clock    *testutil.Clock
	c        *cli
	first    string // the stdout of the first run
	windows  []string
	echoes   string // the fourth window
	erpPosts int
}

func newMultiStage(t *testing.T) *multiStage {
	t.Helper()
	clock := testutil.NewClock(demo.From.Add(3*time.Hour + 5*time.Minute)) // three windows are due
	// The tenant's activity fills the three windows; the fourth holds only the echoes of their write-back.
	srv, err := demo.StartTenant(zuorasim.Options{Now: clock.Now}, 1, zuorasim.DefaultVolume(), demo.From, demo.To)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	m := &multiStage{srv: srv, dir: t.TempDir(), clock: clock}
	m.environ = map[string]string{
		"ZUORA_BASE_URL": srv.ZuoraURL, "ZUORA_CLIENT_ID": demo.ClientID, "ZUORA_CLIENT_SECRET": demo.ClientSecret,
		"ERP_BASE_URL": srv.ERPURL, "ERP_TOKEN": demo.ERPToken, "ETL_STAGE": "file://" + m.dir,
	}
	m.c = &cli{t: t, environ: m.environ, now: clock.Now}
	code, stdout, _ := m.c.run("run", "--since", demo.From.Format(time.RFC3339), "--erp-concurrency", "2")
	if code != exitRejected {
		t.Fatalf("first run: exit %d; want 3 (the tenant's rejects)", code)
	}
	m.first = stdout
	m.erpPosts = len(srv.ERP.Documents())
	// New activity in the fourth hour: an invoice of a customer the ERP knows.
	known := map[any]bool{}
	for _, a := range srv.Zuora.Snapshot("accounts") {
		if id, _ := a["ERPAccountId__c"].(string); id != "" {
			known[a["id"]] = true
		}
	}
	clock.Set(demo.To.Add(30 * time.Minute))
	for _, inv := range srv.Zuora.Snapshot("invoices") {
		if inv["status"] == "Posted" && inv["currency"] == "USD" && known[inv["accountId"]] {
			id, err := srv.Zuora.CloneDocument(inv["id"].(string))
			if err != nil {
				t.Fatal(err)
			}
			if err := srv.Zuora.SetTransferred(id, ""); err != nil { // a new invoice: not transferred yet
				t.Fatal(err)
			}
			break
		}
	}
	clock.Set(demo.To.Add(time.Hour + 5*time.Minute))
	srv.ERP.SetFaults(erpsim.Faults{Outage: true})
	code, _, _ = m.c.run("run", "--breaker", "2")
	if code != exitFailed {
		t.Fatalf("second run with the ERP down: exit %d; want 1", code)
	}
	srv.ERP.SetFaults(erpsim.Faults{})
	for i := range 4 {
		m.windows = append(m.windows, stage.Window{Start: demo.From.Add(time.Duration(i) * time.Hour), End: demo.From.Add(time.Duration(i+1) * time.Hour)}.ID())
	}
	m.echoes = m.windows[3]
	return m
}

// strictDecode decodes data into v, refusing any field v does not have.
func strictDecode(t *testing.T, data string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode strictly: %v\n%s", err, data)
	}
}

// TestStatusAndRunsJSONKeepTheirShape decodes status --json and runs --json
// strictly into their documented types, and checks docs/design.md names every
// field of them and no other; status's filters and exit statuses on the way.
func TestStatusAndRunsJSONKeepTheirShape(t *testing.T) {
	t.Parallel()
	m := newMultiStage(t)
	code, stdout, _ := m.c.run("status", "--json")
	if code != exitFailed {
		t.Fatalf("status with an unfinished window: exit %d; want 1", code)
	}
	var st statusJSON
	strictDecode(t, stdout, &st)
	if len(st.Windows) != 4 || !slices.Equal(st.UnfinishedWindows, []string{m.echoes}) || st.ExitStatus != 1 || st.OutstandingRejects == 0 ||
		st.HighWater == nil || !st.HighWater.Equal(demo.From.Add(4*time.Hour)) {
		t.Fatalf("status --json: %+v", st)
	}
	last := st.Windows[3]
	if last.Complete || last.Pending == 0 || !strings.HasPrefix(last.Next, "zuora-erp-etl load --window "+m.echoes) {
		t.Errorf("the unfinished window: %+v", last)
	}
	for _, w := range st.Windows[:3] {
		if !w.Complete || w.Posted == 0 || w.OutstandingRejects == 0 || w.Next != "" || len(w.Lines) == 0 {
			t.Errorf("window %s: %+v", w.Window, w)
		}
	}
	// --pending, --window and --last narrow the windows, not the exit status.
	_, stdout, _ = m.c.run("status", "--json", "--last", "2")
	strictDecode(t, stdout, &st)
	if len(st.Windows) != 2 || st.Windows[1].Window != m.echoes {
		t.Errorf("--last 2: %v", st.Windows)
	}
	code, stdout, _ = m.c.run("status", "--json", "--window", m.windows[1])
	strictDecode(t, stdout, &st)
	if code != exitFailed || len(st.Windows) != 1 || st.Windows[0].Window != m.windows[1] {
		t.Errorf("--window: exit %d, %v", code, st.Windows)
	}
	code, _, stderr := m.c.run("status", "--window", "20301124T000000Z-20301124T010000Z")
	if code != exitUsage || !strings.Contains(stderr, "not in the stage") {
		t.Errorf("--window of no window: exit %d, %q", code, stderr)
	}
	_, stdout, _ = m.c.run("status", "--pending")
	if !strings.Contains(stdout, m.echoes) || !strings.Contains(stdout, "1 unfinished window") {
		t.Errorf("--pending:\n%s", stdout)
	}

	code, stdout, _ = m.c.run("runs", "--json")
	var runs []pipeline.RunRecord
	strictDecode(t, stdout, &runs)
	if code != exitOK || len(runs) != 2 || runs[0].ExitStatus != 3 || runs[1].ExitStatus != 1 || runs[1].Error == "" {
		t.Fatalf("runs --json: exit %d, %d runs %+v", code, len(runs), runs)
	}
	if r := runs[0]; r.Settings["erp-concurrency"] != "2" || r.Settings["since"] != demo.From.Format(time.RFC3339) ||
		r.Settings["stage"] == "" || len(r.Windows) != 3 || r.Windows[0].StartedAt.IsZero() || r.Windows[0].DurationSeconds < 0 ||
		r.Zuora == nil || r.Zuora.Requests == 0 || r.ERP == nil || r.ERP.Requests < int64(m.erpPosts) || r.Rejects == nil || r.Rejects.Documents == 0 {
		t.Errorf("the first run's record: %+v", r)
	}
	if _, ok := runs[1].Settings["erp-token"]; ok {
		t.Error("a run record names the ERP token")
	}
	// The record holds the printed report's figures.
	var posted int64
	for _, l := range runs[0].Totals {
		if stage.DocType(l.DocType).IsDocument() { // the ERP's documents; applications and reversals are its own records
			posted += l.Posted.Count
		}
		if !l.Balanced {
			t.Errorf("line %s %s not balanced", l.DocType, l.Currency)
		}
	}
	if posted != int64(m.erpPosts) {
		t.Errorf("the record says %d posted; the ERP holds %d", posted, m.erpPosts)
	}
	_, stdout, _ = m.c.run("runs", "--last", "1")
	if !strings.Contains(stdout, runs[1].RunID) || strings.Contains(stdout, runs[0].RunID) {
		t.Errorf("runs --last 1:\n%s", stdout)
	}

	design := readDesign(t)
	checkDocumented(t, design, "status --json", statusJSON{}, statusWindowJSON{})
	checkDocumented(t, design, "Run history", pipeline.RunRecord{}, pipeline.RunWindow{}, pipeline.RunLine{}, pipeline.RunBacklog{},
		pipeline.BacklogJSON{}, pipeline.RunRequests{}, pipeline.RunClamp{})

	// Secrets never reach the stage: not the run records, not anything else.
	filepath.WalkDir(m.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, _ := os.ReadFile(p)
		for _, secret := range []string{demo.ClientSecret, demo.ERPToken} {
			if bytes.Contains(data, []byte(secret)) {
				t.Errorf("%s holds the secret %q", p, secret)
			}
		}
		return nil
	})
}

func readDesign(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "design.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// checkDocumented checks that the section of design.md titled title lists, in
// its field tables, exactly the JSON fields of the given types.
func checkDocumented(t *testing.T, design, title string, types ...any) {
	t.Helper()
	start := strings.Index(design, "## "+title)
	if start < 0 {
		t.Fatalf("docs/design.md has no section %q", title)
	}
	section := design[start+3:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|").FindAllStringSubmatch(section, -1) {
		documented[m[1]] = true
	}
	want := map[string]bool{}
	for _, v := range types {
		for _, f := range jsonFields(v) {
			want[f] = true
		}
	}
	for f := range want {
		if !documented[f] {
			t.Errorf("design.md %q does not document the field %s", title, f)
		}
	}
	for f := range documented {
		if !want[f] {
			t.Errorf("design.md %q documents %s, which the output does not have", title, f)
		}
	}
}

// TestSavedAuditsOnAMultiWindowStage runs every saved query on a stage of
// four windows and checks each answers what it claims.
func TestSavedAuditsOnAMultiWindowStage(t *testing.T) {
	t.Parallel()
	m := newMultiStage(t)
	code, stdout, _ := m.c.run("query", "--saved")
	for _, name := range []string{"pending_over_a_day", "rejects_by_reason", "reconcile_totals", "extracted_more_than_once", "posted_twice"} {
		if code != exitOK || !strings.Contains(stdout, name) {
			t.Errorf("query --saved lacks %s (exit %d):\n%s", name, code, stdout)
		}
	}
	rows := func(name string) []map[string]any {
		t.Helper()
		code, stdout, stderr := m.c.run("query", "--format", "json", "--saved", name)
		if code != exitOK {
			t.Fatalf("query --saved %s: exit %d: %s", name, code, stderr)
		}
		var out []map[string]any
		sc := bufio.NewScanner(strings.NewReader(stdout))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var r map[string]any
			d := json.NewDecoder(strings.NewReader(sc.Text()))
			d.UseNumber()
			if err := d.Decode(&r); err != nil {
				t.Fatalf("%s: line %q is not JSON: %v", name, sc.Text(), err)
			}
			out = append(out, r)
		}
		return out
	}
	count := func(sql string) int {
		t.Helper()
		_, stdout, _ := m.c.run("query", "--format", "csv", sql)
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		n := 0
		if len(lines) == 2 {
			json.Unmarshal([]byte(lines[1]), &n)
		}
		return n
	}

	pending := rows("pending_over_a_day")
	if len(pending) == 0 {
		t.Fatal("pending_over_a_day: none; the fourth window's load stopped with documents pending")
	}
	for _, r := range pending {
		if r["window"] != m.echoes || r["state"] != "not posted" {
			t.Errorf("pending_over_a_day: %v; want only the fourth window's unposted documents", r)
		}
	}
	if want := count(`select count(*) from documents d where "window" = '` + m.echoes + `' and zuora_id not in (select zuora_id from ledger where outcome in ('created','duplicate'))`); len(pending) != want {
		t.Errorf("pending_over_a_day: %d rows; %d documents of the window are unposted", len(pending), want)
	}

	var byReason int64
	for _, r := range rows("rejects_by_reason") {
		n, _ := r["documents"].(json.Number).Int64()
		byReason += n
		if ws, ok := r["windows"].([]any); !ok || len(ws) == 0 {
			t.Errorf("rejects_by_reason: windows %v is not a JSON list", r["windows"])
		}
	}
	if want := count("select count(*) from rejects"); byReason != int64(want) || want == 0 {
		t.Errorf("rejects_by_reason: %d documents; rejects holds %d", byReason, want)
	}

	totals := rows("reconcile_totals")
	var posted int64
	for _, r := range totals {
		if r["balanced"] != true {
			t.Errorf("reconcile_totals: not balanced: %v", r)
		}
		if n, _ := r["posted"].(json.Number).Int64(); stage.DocType(fmt.Sprint(r["doc_type"])).IsDocument() {
			posted += n
		}
	}
	if len(totals) == 0 || posted != int64(len(m.srv.ERP.Documents())) {
		t.Errorf("reconcile_totals: %d posted over %d lines; the ERP holds %d", posted, len(totals), len(m.srv.ERP.Documents()))
	}

	twice := rows("extracted_more_than_once")
	if len(twice) == 0 {
		t.Fatal("extracted_more_than_once: none; the fourth window holds the write-back's echoes")
	}
	for _, r := range twice {
		latest, ok := r["latest"].(map[string]any)
		if !ok || latest["window"] != m.echoes {
			t.Errorf("extracted_more_than_once: latest %v; want a JSON object naming the echo's window", r["latest"])
		}
		if ws, ok := r["windows"].([]any); !ok || len(ws) < 2 {
			t.Errorf("extracted_more_than_once: windows %v", r["windows"])
		}
	}
	// latest_* counts each document once: the echoes do not double the invoices.
	if all, latest := count("select count(*) from invoices"), count("select count(*) from latest_invoices"); latest >= all || latest != count("select count(distinct id) from invoices") {
		t.Errorf("invoices %d rows, latest_invoices %d", all, latest)
	}

	if got := rows("posted_twice"); len(got) != 0 {
		t.Fatalf("posted_twice: %v; want none", got)
	}
	// The oracle catches a document confirmed under a second ERP id.
	_, stdout, _ = m.c.run("query", "--format", "csv", "select doc_type, zuora_id, idempotency_key, currency from ledger where outcome = 'created' limit 1")
	f := strings.Split(strings.Split(strings.TrimSpace(stdout), "\n")[1], ",")
	now := time.Now().UTC()
	part := filepath.Join(m.dir, "ledger", "window="+m.windows[0], "part-99999999T000000.000000000Z-run-forged-000001.parquet")
	if err := parquet.WriteFile(part, []stage.LedgerRow{{RunID: "run-forged", DocType: f[0], ZuoraID: f[1], IdempotencyKey: f[2], Action: stage.ActionPost,
		Outcome: stage.OutcomeCreated, HTTPStatus: 201, ERPID: "ERP-FORGED-1", Currency: f[3], StartedAt: now, FinishedAt: now}}); err != nil {
		t.Fatal(err)
	}
	if got := rows("posted_twice"); len(got) != 1 || got[0]["zuora_id"] != f[1] {
		t.Fatalf("posted_twice after a forged second post: %v; want the document", got)
	}
}

// TestQueryRendersNestedValuesAsJSON: lists, structs, maps and decimals come
// out as JSON (not Go syntax) in --format json, and as JSON text in a table.
func TestQueryRendersNestedValuesAsJSON(t *testing.T) {
	_, environ := demoEnviron(t)
	c := &cli{t: t, environ: environ}
	if code, _, _ := c.run("run", "--since", demo.From.Format(time.RFC3339), "--until", demo.From.Add(time.Hour).Format(time.RFC3339)); code != exitRejected {
		t.Fatalf("run: exit %d", code)
	}
	sql := `select [1, 2, 3] as l, {'amount': 12.345::decimal(38,9), 'name': 'x', 'when': date '2026-11-24'} as s, map {'k': [1.5::decimal(10,2)]} as m, [{'a': 1}] as ls`
	code, stdout, _ := c.run("query", "--format", "json", sql)
	var row struct {
		L []int `json:"l"`
		S struct {
			Amount json.Number `json:"amount"`
			Name   string      `json:"name"`
			When   string      `json:"when"`
		} `json:"s"`
		M  map[string][]json.Number `json:"m"`
		LS []map[string]int         `json:"ls"`
	}
	if code != exitOK {
		t.Fatalf("query: exit %d", code)
	}
	if err := json.Unmarshal([]byte(stdout), &row); err != nil {
		t.Fatalf("json output %q: %v", stdout, err)
	}
	if !slices.Equal(row.L, []int{1, 2, 3}) || row.S.Amount != "12.345" || row.S.Name != "x" || !strings.HasPrefix(row.S.When, "2026-11-24") ||
		len(row.M["k"]) != 1 || row.M["k"][0] != "1.5" || len(row.LS) != 1 || row.LS[0]["a"] != 1 {
		t.Fatalf("nested values: %+v from %q", row, stdout)
	}
	_, stdout, _ = c.run("query", "select [1, 2] as l, {'a': 1} as s")
	if !strings.Contains(stdout, "[1,2]") || !strings.Contains(stdout, `{"a":1}`) {
		t.Errorf("table output:\n%s\nwant the values as JSON", stdout)
	}
}

// jsonFields returns the JSON names of v's struct fields.
func jsonFields(v any) []string {
	var out []string
	rt := reflect.TypeOf(v)
	for i := range rt.NumField() {
		tag := rt.Field(i).Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}
