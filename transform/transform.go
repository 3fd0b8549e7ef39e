// Package transform maps a window's committed raw snapshot to ERP-ready
// documents with the SQL in package sql, and accounts for every extracted
// document as ready, rejected or skipped before it commits the window.
package transform

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/warehouse"
	mapping "github.com/zuora-erp-etl/zuora-erp-etl/sql"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// Options configure a transform run.
type Options struct {
	// SQLDir is a folder whose .sql and .csv files replace the embedded mapping
	// files of the same name (and add new CSV tables); empty uses the embedded ones.
	SQLDir      string
	RunID       string
	CodeVersion string
	// Force re-runs a window whose transform is already committed.
	Force  bool
	Logger *slog.Logger
	// DocTypes are the types moved (documents and application kinds, as
	// stage.Moved completes them); nil means every one. A type not moved has
	// no mapping SQL run and no output rows.
	DocTypes []stage.DocType
	// UnapplyAmounts is how the tenant writes an unapply's amount:
	// UnapplyNegative (the default, "") or UnapplyPositive, whose signs the
	// transform decides per application group (docs/design.md "AR pipeline").
	UnapplyAmounts string
}

// moved returns the types of opts in load order, checked.
func (o Options) moved() ([]stage.DocType, error) {
	ds := o.DocTypes
	if ds == nil {
		ds = stage.LoadOrder()
	}
	return stage.Moved(ds)
}

// UnapplyError is an unapply convention the transform does not know.
type UnapplyError struct{ Value string }

func (e *UnapplyError) Error() string {
	return fmt.Sprintf("unapply amounts %q: want %s or %s", e.Value, UnapplyNegative, UnapplyPositive)
}

// ParseUnapplyAmounts checks an unapply convention; "" is UnapplyNegative.
func ParseUnapplyAmounts(v string) (string, error) {
	switch v {
	case "", UnapplyNegative:
		return UnapplyNegative, nil
	case UnapplyPositive:
		return v, nil
	}
	return "", &UnapplyError{Value: v}
}

// Run transforms window w: it reads the files of w's extract manifest, maps
// them with the SQL, writes documents (NDJSON and Parquet), rejects and
// skipped, and commits them with the transform manifest. A window already
// committed returns its manifest unless opts.Force is set.
func Run(ctx context.Context, st *stage.Stage, w stage.Window, opts Options) (*stage.TransformManifest, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("window", w.ID(), "run_id", opts.RunID)
	if opts.Force {
		// The outputs are about to be rewritten in place: the old manifest would
		// no longer describe them, so it goes first and a failed re-run leaves none.
		if err := st.DeleteTransform(ctx, w); err != nil {
			return nil, fmt.Errorf("transform window %s: %w", w.ID(), err)
		}
	} else {
		m, found, err := st.ReadTransform(ctx, w)
		if err != nil {
			return nil, fmt.Errorf("transform window %s: %w", w.ID(), err)
		}
		if found {
			log.Info("transform already committed", "run_id_committed", m.RunID)
			return &m, nil
		}
	}
	m, err := run(ctx, st, w, opts, log)
	if err != nil {
		return nil, fmt.Errorf("transform window %s: %w", w.ID(), err)
	}
	return m, nil
}

func run(ctx context.Context, st *stage.Stage, w stage.Window, opts Options, log *slog.Logger) (*stage.TransformManifest, error) {
	em, found, err := st.ReadExtract(ctx, w)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("the window has no committed extract")
	}
	files, digest, err := loadMapping(opts.SQLDir)
	if err != nil {
		return nil, err
	}
	types, err := opts.moved()
	if err != nil {
		return nil, err
	}
	convention, err := ParseUnapplyAmounts(opts.UnapplyAmounts)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if f.Source != "embedded" {
			log.Info("mapping file from SQLDir", "file", f.Name, "path", f.Source)
		}
	}
	tmp, err := os.MkdirTemp("", "zuora-erp-etl-transform-*")
	if err != nil {
		return nil, fmt.Errorf("temporary folder: %w", err)
	}
	defer os.RemoveAll(tmp)
	db, err := warehouse.Open(ctx)
	if err != nil {
		return nil, err
	}
	defer db.Close()

	if err := prepare(ctx, st, w, db, em, files, tmp); err != nil {
		return nil, err
	}
	if err := decide(ctx, db, files, types, convention); err != nil {
		return nil, err
	}
	totals, err := reconcile(ctx, db)
	if err != nil {
		return nil, err
	}
	m := &stage.TransformManifest{
		Window:      w.ID(),
		RunID:       opts.RunID,
		CodeVersion: opts.CodeVersion,
		SQLDigest:   digest,
		Totals:      totals,
	}
	if err := writeOutputs(ctx, st, db, w, m, tmp); err != nil {
		return nil, err
	}
	m.CommittedAt = time.Now().UTC()
	if err := st.WriteManifest(ctx, w, m); err != nil {
		return nil, err
	}
	logCommitted(log, m)
	return m, nil
}

// writeOutputs writes the window's outputs, the ready documents as NDJSON
// and ready, rejects and skipped as Parquet, each sorted (sortTable), and
// names them in m.
func writeOutputs(ctx context.Context, st *stage.Stage, db *warehouse.DB, w stage.Window, m *stage.TransformManifest, tmp string) error {
	outputs := []struct {
		table, kind, order string
		info               *stage.ObjectInfo
	}{
		{"ready", "documents", readyOrder, &m.DocumentsPq},
		{"rejects", "rejects", outputOrder, &m.Rejects},
		{"skipped", "skipped", outputOrder, &m.Skipped},
	}
	for _, o := range outputs {
		sorted, err := sortTable(ctx, db, o.table, o.order)
		if err != nil {
			return err
		}
		if o.table == "ready" {
			if m.Documents, err = writeNDJSON(ctx, st, db, sorted, stage.ReadyKey("documents", w, "ndjson")); err != nil {
				return err
			}
		}
		if *o.info, err = writeParquet(ctx, st, db, sorted, stage.ReadyKey(o.kind, w, "parquet"), tmp); err != nil {
			return err
		}
	}
	return nil
}

// logCommitted logs what the committed transform m decided, and warns of
// its rejects.
func logCommitted(log *slog.Logger, m *stage.TransformManifest) {
	var ready, rejected, skipped int64
	for _, t := range m.Totals {
		ready += t.Ready.Count
		rejected += t.Rejected.Count
		skipped += t.Skipped.Count
	}
	log.Info("transform committed", "ready", ready, "rejected", rejected, "skipped", skipped, "sql_digest", m.SQLDigest)
	if rejected > 0 {
		log.Warn("documents rejected: see the rejects output", "rejected", rejected, "key", m.Rejects.Key)
	}
}

// prepare creates the tables the mapping SQL reads: the window's raw files
// (latest version of each id), the value-mapping CSVs and the documents that
// the ledger of another window confirms posted; and the tables the transform
// itself reads: the window's quarantined records and the acknowledged rejects.
func prepare(ctx context.Context, st *stage.Stage, w stage.Window, db *warehouse.DB, em stage.ExtractManifest, files []mappingFile, tmp string) error {
	// One thread keeps every output byte-identical from run to run, and the
	// order of insertion is what the sorted outputs are written in
	// (sortTable). The memory limit and the spill folder stay the warehouse's.
	settings := "SET threads = 1; SET preserve_insertion_order = true; SET TimeZone = 'UTC'"
	if err := db.Exec(ctx, settings); err != nil {
		return err
	}
	if err := prepareRaw(ctx, st, w, db, em); err != nil {
		return err
	}
	if err := prepareQuarantine(ctx, st, w, db, em); err != nil {
		return err
	}
	if err := prepareAcks(ctx, st, db); err != nil {
		return err
	}
	if err := prepareValueMappings(ctx, db, files, tmp); err != nil {
		return err
	}
	if err := prepareLedger(ctx, st, w, db); err != nil {
		return err
	}
	if err := prepareHistory(ctx, st, w, db); err != nil {
		return err
	}
	for _, q := range []string{arMacros(w), histVersionsSQL(), erpStateSQL, docHistSQL()} {
		if err := db.Exec(ctx, q); err != nil {
			return fmt.Errorf("read the ERP state and the stage's history: %w", err)
		}
	}
	return nil
}

// prepareRaw creates raw_<table> over the window's snapshot files of every
// raw table, and the table of each one's latest versions.
func prepareRaw(ctx context.Context, st *stage.Stage, w stage.Window, db *warehouse.DB, em stage.ExtractManifest) error {
	for _, table := range stage.Tables() {
		var srcs []warehouse.Source
		for _, f := range em.Tables[table].Files {
			p, err := st.LocalPath(ctx, f.Key, f.SHA256)
			if err != nil {
				return err
			}
			srcs = append(srcs, warehouse.Source{Path: p, Window: w.ID()})
		}
		if err := db.ViewParquet(ctx, "raw_"+table, table, srcs); err != nil {
			return err
		}
		for _, q := range latestSQL(table) {
			if err := db.Exec(ctx, q); err != nil {
				return fmt.Errorf("latest versions of %s: %w", table, err)
			}
		}
	}
	return nil
}

// prepareValueMappings loads each CSV of the mapping as a table of text
// columns named for its file.
func prepareValueMappings(ctx context.Context, db *warehouse.DB, files []mappingFile, tmp string) error {
	for _, f := range files {
		if !strings.HasSuffix(f.Name, ".csv") {
			continue
		}
		path := filepath.Join(tmp, f.Name)
		if err := os.WriteFile(path, f.Data, 0o600); err != nil {
			return fmt.Errorf("value mapping %s: %w", f.Name, err)
		}
		q := fmt.Sprintf("CREATE TABLE %s AS SELECT * FROM read_csv(%s, header = true, all_varchar = true, buffer_size = 1048576, max_line_size = 1048576)",
			warehouse.Ident(tableName(f.Name)), warehouse.Literal(path))
		if err := db.Exec(ctx, q); err != nil {
			return fmt.Errorf("value mapping %s (%s): %w", f.Name, f.Source, err)
		}
	}
	return nil
}

// prepareLedger creates ledger, the ledger of every other window, and
// own_ledger with own_posted, this window's and what it confirmed.
func prepareLedger(ctx context.Context, st *stage.Stage, w stage.Window, db *warehouse.DB) error {
	all, err := warehouse.LedgerSources(ctx, st)
	if err != nil {
		return err
	}
	var others, own []warehouse.Source
	for _, s := range all {
		if s.Window != w.ID() {
			others = append(others, s)
		} else {
			own = append(own, s)
		}
	}
	if err := db.ViewParquet(ctx, "ledger", "ledger", others); err != nil {
		return err
	}
	if err := db.ViewParquet(ctx, "own_ledger", "ledger", own); err != nil {
		return err
	}
	if err := db.Exec(ctx, ledgerMacros+`;
CREATE TABLE own_posted AS SELECT DISTINCT doc_type, zuora_id FROM own_ledger WHERE confirmed(action, outcome)`); err != nil {
		return fmt.Errorf("read ledger: %w", err)
	}
	return nil
}

// decide runs the transform's decisions and the mapping in their order
// (docs/design.md "AR pipeline"): the applications' facts and signs; the
// documents' mapping, whose payloads the ERP state is compared with; what
// each record calls for; the applications' mapping over what is to be
// posted; the reversals' mapping; then ready, rejects and skipped.
func decide(ctx context.Context, db *warehouse.DB, files []mappingFile, types []stage.DocType, convention string) error {
	docs, apps := stage.Only(types, stage.KindDocument), stage.Only(types, stage.KindApplication)
	if err := applyMacros(ctx, db, files); err != nil {
		return err
	}
	if err := db.Exec(ctx, applicationsSQL(apps)); err != nil {
		return fmt.Errorf("classify applications: %w", err)
	}
	if err := decideSigns(ctx, db, convention); err != nil {
		return err
	}
	steps := []struct {
		what string
		sql  string
		maps []stage.DocType // the mapping files run after the step
	}{
		{"applications", appFactsSQL(convention) + ";\n" + recordsSQL(docs), docs},
		{"decisions", decisionsSQL(docs) + ";\n" + arApplicationsSQL, apps},
		{"reversals", arReversalsSQL, stage.Only(types, stage.KindReversal)},
		{"outputs", eventsSQL + ";\n" + mappedLinesSQL(mappedTypes(types)) + ";\n" + outputsSQL, nil},
	}
	for _, s := range steps {
		if err := db.Exec(ctx, s.sql); err != nil {
			return fmt.Errorf("classify %s: %w", s.what, err)
		}
		if err := applyMapping(ctx, db, files, s.maps); err != nil {
			return err
		}
	}
	return nil
}

// applyMacros runs the macro files ("_*.sql", in name order).
func applyMacros(ctx context.Context, db *warehouse.DB, files []mappingFile) error {
	for _, f := range files {
		if strings.HasPrefix(f.Name, "_") && strings.HasSuffix(f.Name, ".sql") {
			if err := db.Exec(ctx, string(f.Data)); err != nil {
				return fmt.Errorf("mapping %s (%s): %w", f.Name, f.Source, err)
			}
		}
	}
	return nil
}

// applyMapping runs the SELECT of each of types into a table mapped_<doc_type>,
// a document type's one bucket of its documents at a time (buckets.go).
func applyMapping(ctx context.Context, db *warehouse.DB, files []mappingFile, types []stage.DocType) error {
	byName := map[string]mappingFile{}
	for _, f := range files {
		byName[f.Name] = f
	}
	for _, dt := range types {
		f, ok := byName[mapping.DocFile(string(dt))]
		if !ok {
			return fmt.Errorf("mapping has no %s", mapping.DocFile(string(dt)))
		}
		q := strings.TrimRight(strings.TrimSpace(string(f.Data)), ";")
		if err := mapInBuckets(ctx, db, dt, q); err != nil {
			return fmt.Errorf("mapping %s (%s): %w", f.Name, f.Source, err)
		}
	}
	return nil
}

// parquetRowGroup is the rows of one row group of an output's Parquet file,
// which DuckDB's writer holds in memory until the group is whole: some 12MB
// of ready lines. A constant, so that the files are the same bytes whatever
// the memory limit.
const parquetRowGroup = 10_000

// writeParquet copies table sorted, in its insertion order (sortTable's), to
// a local Parquet file and uploads it to key.
func writeParquet(ctx context.Context, st *stage.Stage, db *warehouse.DB, sorted, key, tmp string) (stage.ObjectInfo, error) {
	path := filepath.Join(tmp, sorted+".parquet")
	q := fmt.Sprintf("COPY (SELECT * FROM %s) TO %s (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE %d)",
		warehouse.Ident(sorted), warehouse.Literal(path), parquetRowGroup)
	if err := db.Exec(ctx, q); err != nil {
		return stage.ObjectInfo{}, fmt.Errorf("write %s: %w", sorted, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return stage.ObjectInfo{}, err
	}
	defer f.Close()
	w, err := st.NewWriter(ctx, key)
	if err != nil {
		return stage.ObjectInfo{}, err
	}
	defer w.Abort()
	if _, err := io.Copy(w, f); err != nil {
		return stage.ObjectInfo{}, fmt.Errorf("write %s: %w", key, err)
	}
	if err := w.Close(); err != nil {
		return stage.ObjectInfo{}, err
	}
	return w.Info(), nil
}
