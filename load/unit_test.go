package load

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

func TestParseDocuments(t *testing.T) {
	good := makeSpecs(1)[0]
	tests := []struct {
		name    string
		ndjson  string
		wantErr string
	}{
		{"ok", good.line() + "\n\n", ""},
		{"unknown type", strings.Replace(good.line(), `"doc_type":"invoice"`, `"doc_type":"quote"`, 1), `unknown doc_type "quote"`},
		{"wrong endpoint", strings.Replace(good.line(), `"endpoint":"/api/invoices"`, `"endpoint":"/api/payments"`, 1), "endpoint"},
		{"no key", strings.Replace(good.line(), `"idempotency_key":"`+good.id+`"`, `"idempotency_key":""`, 1), "idempotency_key"},
		{"too many decimals", strings.Replace(good.line(), `"amount":`+good.amount+`,"endpoint"`, `"amount":1.0000000001,"endpoint"`, 1), "more than 9 decimal places"},
		{"payload not an object", `{"doc_type":"invoice","zuora_id":"z","idempotency_key":"z","currency":"USD","amount":1,"endpoint":"/api/invoices","payload":[1]}`, "payload is not a JSON object"},
		{"twice", good.line() + "\n" + good.line(), "appears twice"},
		{"broken json", `{"doc_type":`, "line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, err := parseDocuments("docs.ndjson", strings.NewReader(tt.ndjson))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v; want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(docs) != 1 {
				t.Fatalf("parse = %d docs, %v", len(docs), err)
			}
			d := docs[0]
			if sum := sha256.Sum256([]byte(good.payload())); d.sha.String() != hex.EncodeToString(sum[:]) {
				t.Fatalf("payload digest = %s; want the digest of the line's payload bytes", d.sha)
			}
			if !d.amount().Equal(decimal.RequireFromString(good.amount)) ||
				d.IdempotencyKey != good.id || d.ZuoraID != good.id || d.DocType != "invoice" || d.Currency != good.currency {
				t.Fatalf("document = %+v", d)
			}
			p := good.posting(t)
			if string(p.payload) != good.payload() || !p.same(d) {
				t.Fatalf("posting payload = %s; want the bytes of the line", p.payload)
			}
		})
	}
}

func TestStates(t *testing.T) {
	hexA := strings.Repeat("a", 64)
	post := func(outcome, sha string) stage.LedgerRow {
		sha = strings.Repeat(sha, 64)
		return stage.LedgerRow{ZuoraID: "z", IdempotencyKey: "z", Action: stage.ActionPost, Outcome: outcome, Attempts: 1, ERPID: map[bool]string{true: "E1"}[outcome == stage.OutcomeCreated || outcome == stage.OutcomeDuplicate], PayloadSHA256: sha}
	}
	mark := func(outcome string) stage.LedgerRow {
		return stage.LedgerRow{ZuoraID: "z", IdempotencyKey: "z", Action: stage.ActionMark, Outcome: outcome}
	}
	tests := []struct {
		name string
		rows []stage.LedgerRow
		want docState
	}{
		{"transient only", []stage.LedgerRow{post(stage.OutcomeTransient, "a")}, docState{}},
		{"created", []stage.LedgerRow{post(stage.OutcomeTransient, "a"), post(stage.OutcomeCreated, "a")}, docState{confirmed: true, erpID: "E1"}},
		{"duplicate then marked", []stage.LedgerRow{post(stage.OutcomeDuplicate, "a"), mark(stage.OutcomeMarkFailed), mark(stage.OutcomeMarked)}, docState{confirmed: true, erpID: "E1", marked: true}},
		{"mark failed", []stage.LedgerRow{post(stage.OutcomeCreated, "a"), mark(stage.OutcomeMarkFailed)}, docState{confirmed: true, erpID: "E1"}},
		{"rejected", []stage.LedgerRow{post(stage.OutcomeRejected, "a")}, docState{rejected: true, refused: &refusal{sha: sumOf(hexA)}}},
		{"rejected then transient retry", []stage.LedgerRow{post(stage.OutcomeRejected, "a"), post(stage.OutcomeTransient, "b")}, docState{refused: &refusal{sha: sumOf(hexA)}}},
		{"rejected then created", []stage.LedgerRow{post(stage.OutcomeRejected, "a"), post(stage.OutcomeCreated, "b")}, docState{confirmed: true, erpID: "E1", refused: &refusal{sha: sumOf(hexA)}}},
		{"confirmation is final", []stage.LedgerRow{post(stage.OutcomeCreated, "a"), post(stage.OutcomeRejected, "b")}, docState{confirmed: true, erpID: "E1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := states(tt.rows)["z"]
			tt.want.zuoraID = "z"
			if got == nil || !reflect.DeepEqual(*got, tt.want) {
				t.Fatalf("state = %+v; want %+v", got, tt.want)
			}
		})
	}
}

func TestLedgerSchema(t *testing.T) {
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[stage.LedgerRow](&buf)
	at := time.Date(2026, 11, 25, 22, 30, 0, 123456789, time.UTC)
	amt := makeSpecs(1)[0]
	docs, err := parseDocuments("x", strings.NewReader(amt.line()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]stage.LedgerRow{{ZuoraID: "z", Amount: docs[0].fixed, StartedAt: at, FinishedAt: at}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	cols := map[string]parquet.Field{}
	for _, fld := range f.Schema().Fields() {
		cols[fld.Name()] = fld
	}
	want := []string{"run_id", "doc_type", "zuora_id", "idempotency_key", "action", "outcome", "http_status", "erp_id", "message",
		"attempts", "ambiguous", "currency", "amount", "payload_sha256", "started_at", "finished_at"}
	if len(cols) != len(want) {
		t.Fatalf("ledger has %d columns; want %d", len(cols), len(want))
	}
	for _, name := range want {
		if _, ok := cols[name]; !ok {
			t.Fatalf("ledger lacks column %s", name)
		}
	}
	dec, ok := cols["amount"].Type().LogicalType().Value.(*format.DecimalType)
	if !ok || dec.Scale != 9 || dec.Precision != 38 || cols["amount"].Type().Kind() != parquet.FixedLenByteArray || cols["amount"].Type().Length() != 16 {
		t.Fatalf("amount type = %v; want DECIMAL(38,9) in 16 bytes", cols["amount"].Type())
	}
	for _, name := range []string{"started_at", "finished_at"} {
		ts, ok := cols[name].Type().LogicalType().Value.(*format.TimestampType)
		if !ok || !ts.IsAdjustedToUTC || ts.Unit.String() != "MICROS" {
			t.Fatalf("%s type = %v; want TIMESTAMP(microsecond, UTC)", name, cols[name].Type())
		}
	}
	if cols["http_status"].Type().Kind() != parquet.Int32 || cols["attempts"].Type().Kind() != parquet.Int32 || cols["ambiguous"].Type().Kind() != parquet.Boolean {
		t.Fatal("http_status/attempts must be INT32 and ambiguous BOOLEAN")
	}
	rows, err := parquet.Read[stage.LedgerRow](bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if !amountOf(rows[0]).Equal(docs[0].amount()) || !rows[0].StartedAt.Equal(at.Truncate(time.Microsecond)) {
		t.Fatalf("read back amount %s at %v; want %s at %v", amountOf(rows[0]), rows[0].StartedAt, docs[0].amount(), at.Truncate(time.Microsecond))
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := Options{}.withDefaults()
	if o.Concurrency != 4 || o.BreakerThreshold != 5 || o.LedgerFlush != 500 || o.RunID == "" {
		t.Fatalf("defaults = %+v", o)
	}
	if _, err := Run(context.Background(), nil, testWindow, nil, newMarker(), o); err == nil {
		t.Fatal("a load without an ERP client was accepted")
	}
}

func TestPlanPasses(t *testing.T) {
	type want struct {
		types []string
		last  int
	}
	tests := []struct {
		name  string
		types []string // doc_type of each line
		skip  map[int]bool
		want  []want
	}{
		{"sorted as the transform writes", []string{"invoice", "invoice", "debit_memo", "credit_memo", "payment", "refund"}, nil,
			[]want{{[]string{"invoice", "debit_memo", "credit_memo", "payment", "refund"}, 5}}},
		{"interleaved", []string{"invoice", "payment", "invoice", "payment"}, nil,
			[]want{{[]string{"invoice"}, 2}, {[]string{"payment"}, 3}}},
		{"one type goes backwards", []string{"invoice", "invoice", "payment", "debit_memo", "refund"}, nil,
			[]want{{[]string{"invoice", "debit_memo"}, 3}, {[]string{"payment", "refund"}, 4}}},
		{"reverse order", []string{"refund", "payment", "invoice"}, nil,
			[]want{{[]string{"invoice"}, 2}, {[]string{"payment"}, 1}, {[]string{"refund"}, 0}}},
		{"only lines to post count", []string{"payment", "invoice", "invoice", "payment"}, map[int]bool{0: true},
			[]want{{[]string{"invoice", "payment"}, 3}}},
		{"nothing to post", []string{"invoice", "payment"}, map[int]bool{0: true, 1: true}, nil},
		{"a window of receivables as the transform writes it", []string{"reversal>payment_application", "reversal>credit_memo",
			"invoice", "credit_memo", "payment", "payment_application", "payment_application", "credit_memo_application", "refund_application"}, nil,
			[]want{{[]string{"reversal of applications", "reversal of documents", "invoice", "credit_memo", "payment",
				"payment_application", "credit_memo_application", "refund_application"}, 8}}},
		{"reversals of documents before those of applications", []string{"reversal>invoice", "reversal>payment_application", "payment", "payment_application"}, nil,
			[]want{{[]string{"reversal of applications"}, 1}, {[]string{"reversal of documents", "payment", "payment_application"}, 3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs := make([]document, len(tt.types))
			todo := make([]bool, len(tt.types))
			for i, dt := range tt.types {
				kind, reverses, _ := strings.Cut(dt, ">")
				docs[i], todo[i] = document{ZuoraID: strconv.Itoa(i), DocType: stage.DocType(kind), reverses: stage.DocType(reverses)}, !tt.skip[i]
			}
			got, err := planPasses(indexOf(t, docs), func(d *document) bool {
				i, _ := strconv.Atoi(d.ZuoraID)
				return todo[i]
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("passes = %+v; want %+v", got, tt.want)
			}
			for i := range got {
				var names []string
				for _, ph := range got[i].phases {
					names = append(names, phaseName(ph))
				}
				if fmt.Sprint(names) != fmt.Sprint(tt.want[i].types) || got[i].last != tt.want[i].last {
					t.Fatalf("pass %d = %+v; want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestBreakerTripsAfterThresholdFailuresInARow(t *testing.T) {
	b := &breaker{threshold: 3}
	b.failed("a")
	b.failed("b")
	b.settled() // an answer in between starts the count again
	for i, msg := range []string{"c", "d", "e"} {
		n, tripped := b.failed(msg)
		if n != i+1 || tripped != (i == 2) {
			t.Fatalf("failure %d: %d in a row, tripped %v", i+1, n, tripped)
		}
	}
	if b.lastFailure() != "e" {
		t.Fatalf("last failure %q", b.lastFailure())
	}
}

func TestALineMarkGivesThePayloadOfTheVeryLineOnly(t *testing.T) {
	line := []byte(`{"doc_type":"invoice","zuora_id":"i1","number":"{}","idempotency_key":"i1","currency":"USD","amount":"10.00","endpoint":"/api/invoices","payload":{"invoice":{"zuora_id":"i1","amount":10.00}}}`)
	var env stage.Envelope
	d, err := parseDocument(line, &env)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := d.line.payloadOf(line)
	if !ok || string(got) != string(env.Payload) {
		t.Fatalf("payloadOf(the same line) = %s, %v; want %s", got, ok, env.Payload)
	}
	changed := bytes.Replace(line, []byte(`"amount":"10.00"`), []byte(`"amount":"10.01"`), 1)
	if _, ok := d.line.payloadOf(changed); ok {
		t.Fatal("payloadOf took the payload of a line whose envelope changed")
	}
	if _, ok := d.line.payloadOf(line[:len(line)-1]); ok {
		t.Fatal("payloadOf took the payload of a cut line")
	}
	if _, ok := (lineMark{}).payloadOf(line); ok {
		t.Fatal("an empty mark gave a payload")
	}
	if p, err := verified("ready", 1, changed, d); err == nil {
		t.Fatalf("verified a changed line: %s", p.payload)
	}
}

// TestALineIsReadAsEncodingJSONReadsIt: the fast decoding of a ready line
// gives the envelope encoding/json gives, payload bytes (and so their
// digest) included, for the transform's own lines and for lines it never
// writes; a line encoding/json refuses is refused with its error.
func TestALineIsReadAsEncodingJSONReadsIt(t *testing.T) {
	golden, err := os.ReadFile(filepath.Join("..", "testdata", "transform", "golden", "documents.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(golden)), "\n")
	lines = append(lines,
		`{"doc_type":"invoice","zuora_id":"i1","idempotency_key":"i1","currency":"USD","amount":"10.00","endpoint":"/api/invoices","payload":{"invoice":{"zuora_id":"i1","amount":10.00}}}`,
		"{ \"doc_type\" : \"invoice\", \"zuora_id\":\"i2\",\"idempotency_key\":\"i2\",\"currency\":\"EUR\",\"amount\":12345678901234567890.123456789,\"endpoint\":\"/api/invoices\",\n\"payload\": { \"b\" : [1, 2.50] ,\"a\":\"\\u00e9\\n\"} , \"AMOUNT\": 7, \"depends_on\": [], \"extra\": {\"x\": null}}",
		`{"doc_type":"payment_application","zuora_id":"pa1","idempotency_key":"pa1","currency":"USD","amount":5,"endpoint":"/api/applications","payload":{"a":1},"event":"apply","depends_on":["p1","i1"]}`,
	)
	for _, line := range lines {
		var env stage.Envelope
		_, err := parseDocument([]byte(line), &env)
		var want stage.Envelope
		if werr := json.Unmarshal([]byte(line), &want); werr != nil {
			t.Fatalf("encoding/json refused %s: %v", line, werr)
		}
		if err != nil && !strings.Contains(err.Error(), "required") && !strings.Contains(err.Error(), "event") {
			t.Errorf("parseDocument(%s): %v", line, err)
		}
		if !reflect.DeepEqual(env, want) {
			t.Errorf("parseDocument read %s\nas %+v\nencoding/json reads %+v", line, env, want)
		}
	}
	var env stage.Envelope
	bad := `{"doc_type":"invoice","amount":1,}`
	_, err = parseDocument([]byte(bad), &env)
	werr := json.Unmarshal([]byte(bad), &stage.Envelope{})
	if err == nil || werr == nil || !strings.Contains(err.Error(), werr.Error()) {
		t.Errorf("parseDocument(%s) = %v; want encoding/json's error %v", bad, err, werr)
	}
}
