package stage

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// TestDesignNamesEveryColumn checks docs/design.md, the human contract,
// against the row types that are the tables in code: every raw table, the
// quarantine, ready/documents, ready/rejects and ready/skipped, and the
// ledger, column for column with their types (and, for the raw tables, their
// nullability); and the ledger's action and outcome words.
func TestDesignNamesEveryColumn(t *testing.T) {
	data, err := os.ReadFile("../docs/design.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	flat := strings.Join(strings.Fields(doc), " ")
	rows := TableRows()

	raw := section(t, doc, "## Raw tables")
	common := regexp.MustCompile("`([a-z_]+) ([A-Z0-9]+)`").FindAllStringSubmatch(between(t, strings.Join(strings.Fields(raw), " "), "Every table has ", "(the string"), -1)
	var head []string
	for _, m := range common {
		head = append(head, m[1]+" "+m[2])
	}
	if len(head) != 4 {
		t.Fatalf("the common columns of the raw tables: %q", head)
	}
	tail := "rechecked_at TS"
	if !strings.Contains(raw, "`"+tail+"`") {
		t.Fatalf("the raw tables no longer end with %s", tail)
	}
	documented := map[string]bool{}
	for _, line := range strings.Split(raw, "\n") {
		m := regexp.MustCompile("^\\| `([a-z_]+)` \\| (.*) \\|$").FindStringSubmatch(line)
		if m == nil {
			continue
		}
		table := m[1]
		documented[table] = true
		want := append(append(append([]string{}, head...), columns(m[2])...), tail)
		checkColumns(t, table, rows[table], want, true)
	}
	for _, table := range Tables() {
		if !documented[table] {
			t.Errorf("docs/design.md has no row for raw table %s", table)
		}
	}
	checkColumns(t, QuarantineTable, rows[QuarantineTable], columns(between(t, flat, "Its columns: ", ". The window commits")), false)
	checkColumns(t, "documents", rows["documents"], columns(between(t, flat, "`ready/documents` (Parquet) columns: ", ". The NDJSON")), false)
	outcome := columns(between(t, flat, "`ready/rejects` and `ready/skipped` columns: ", ". Reject reasons"))
	checkColumns(t, "rejects", rows["rejects"], outcome, false)
	checkColumns(t, "skipped", rows["skipped"], outcome, false)

	paragraphs := strings.Split(section(t, doc, "## Ledger"), "\n\n") // the heading, then the columns
	if len(paragraphs) < 2 {
		t.Fatal("the ledger's section lists no columns")
	}
	ledger := strings.Join(strings.Fields(paragraphs[1]), " ")
	checkColumns(t, "ledger", rows["ledger"], columns(strings.TrimSuffix(ledger, ".")), false)
	for _, word := range []string{ActionPost, ActionMark, OutcomeCreated, OutcomeDuplicate, OutcomeRejected, OutcomeTransient,
		OutcomeWaiting, OutcomeDependencyRejected, OutcomeMarked, OutcomeMarkFailed} {
		if !strings.Contains(ledger, "`"+word+"`") {
			t.Errorf("the ledger's section does not name %q", word)
		}
	}
	for _, dt := range LoadOrder() {
		facts := []string{"`" + dt.Endpoint() + "`", "`" + string(dt) + "`"}
		if dt.HeaderTable() != "" {
			facts = append(facts, dt.HeaderTable()+"."+dt.AmountColumn())
		}
		for _, fact := range facts {
			if !strings.Contains(flat, fact) {
				t.Errorf("docs/design.md does not say %s of document type %s", fact, dt)
			}
		}
	}
	for _, event := range []string{EventPost, EventRepost, EventReversal, EventApply} {
		if !strings.Contains(doc, "`"+event+"`") {
			t.Errorf("docs/design.md does not name event %s", event)
		}
	}
	for _, code := range []string{ReasonMalformed, ReasonERPRejected, ReasonAlreadyPosted, ReasonAlreadyTransferred, ReasonAcknowledged,
		ReasonNotPosted, ReasonIgnoredInZuora, ReasonSuperseded, ReasonSignUndetermined, ReasonDependencyRejected, ReasonNoERPAccount, ReasonMissingField} {
		if !strings.Contains(doc, "`"+code+"`") {
			t.Errorf("docs/design.md does not name reason code %s", code)
		}
	}
}

// section returns the text from heading to the next heading of its level.
func section(t *testing.T, doc, heading string) string {
	t.Helper()
	i := strings.Index(doc, "\n"+heading)
	if i < 0 {
		t.Fatalf("docs/design.md has no %q", heading)
	}
	rest := doc[i+1:]
	if j := strings.Index(rest[len(heading):], "\n## "); j >= 0 {
		rest = rest[:len(heading)+j]
	}
	return rest
}

func between(t *testing.T, s, from, to string) string {
	t.Helper()
	i := strings.Index(s, from)
	if i < 0 {
		t.Fatalf("docs/design.md no longer says %q", from)
	}
	s = s[i+len(from):]
	j := strings.Index(s, to)
	if j < 0 {
		t.Fatalf("docs/design.md: nothing ends %q after %q", to, from)
	}
	return s[:j]
}

// columns reads a documented column list: "name[ TYPE] (comment), …", a
// name without a type being a VARCHAR.
func columns(list string) []string {
	var b strings.Builder
	depth := 0
	for _, r := range list {
		switch {
		case r == '(':
			depth++
		case r == ')':
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	var out []string
	for _, c := range strings.Split(b.String(), ",") {
		f := strings.Fields(strings.TrimSuffix(strings.TrimSpace(c), "."))
		switch len(f) {
		case 0:
		case 1:
			out = append(out, f[0]+" VARCHAR")
		default:
			out = append(out, f[0]+" "+f[1])
		}
	}
	return out
}

// checkColumns compares the Parquet schema of row's type with the
// documented columns; nullable says the table is a raw one, where every
// column but id is optional.
func checkColumns(t *testing.T, table string, row any, want []string, nullable bool) {
	t.Helper()
	if row == nil {
		t.Errorf("%s: no row type", table)
		return
	}
	var got []string
	for _, f := range parquet.SchemaOf(row).Fields() {
		got = append(got, f.Name()+" "+documentedNode(f))
		if nullable && f.Optional() == (f.Name() == "id") {
			t.Errorf("%s.%s: optional %t; every raw column but id is optional", table, f.Name(), f.Optional())
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s (%s) and docs/design.md differ:\n code %q\n docs %q", table, reflect.TypeOf(row).Name(), got, want)
	}
}

// documentedNode names a column's type as docs/design.md writes it; a list
// is its element's type followed by [].
func documentedNode(n parquet.Node) string {
	if lt := n.Type().LogicalType(); lt != nil && isList(lt) {
		return documentedNode(n.Fields()[0].Fields()[0]) + "[]"
	}
	return documentedType(n.Type())
}

// documentedType names a Parquet column's type as docs/design.md writes it.
func documentedType(typ parquet.Type) string {
	if lt := typ.LogicalType(); lt != nil {
		switch v := lt.Value.(type) {
		case *format.StringType:
			return "VARCHAR"
		case *format.DateType:
			return "DATE"
		case *format.TimestampType:
			if _, micros := v.Unit.Value.(*format.MicroSeconds); v.IsAdjustedToUTC && micros {
				return "TS"
			}
		case *format.DecimalType:
			if v.Precision == 38 && v.Scale == 9 && typ.Kind() == parquet.FixedLenByteArray && typ.Length() == 16 {
				return "DEC"
			}
		case *format.IntType:
			switch v.BitWidth {
			case 64:
				return "INT64"
			case 32:
				return "INT32"
			}
		}
		return lt.String()
	}
	switch typ.Kind() {
	case parquet.Boolean:
		return "BOOLEAN"
	case parquet.Int32:
		return "INT32"
	case parquet.Int64:
		return "INT64"
	}
	return typ.String()
}

// TestProjectionsReadTheirTables: the rows that read a few columns of a table
// read them with the table's own types.
func TestProjectionsReadTheirTables(t *testing.T) {
	rows := TableRows()
	check := func(projection any, tables ...string) {
		for _, table := range tables {
			full := map[string]string{}
			for _, f := range parquet.SchemaOf(rows[table]).Fields() {
				full[f.Name()] = f.Type().String()
			}
			for _, f := range parquet.SchemaOf(projection).Fields() {
				if full[f.Name()] != f.Type().String() {
					t.Errorf("%T reads %s.%s as %s; the table has %q", projection, table, f.Name(), f.Type(), full[f.Name()])
				}
			}
		}
	}
	check(KeyRow{}, Tables()...)
	check(QuarantineKeyRow{}, QuarantineTable)
}

func isList(lt *format.LogicalType) bool { _, ok := lt.Value.(*format.ListType); return ok }
