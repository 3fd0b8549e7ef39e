package warehouse

import (
	"context"
	"fmt"
	"strings"

	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// Source is one local Parquet file and the window it belongs to.
type Source struct {
	Path   string
	Window string
}

// ViewParquet creates (or replaces) view name over the given Parquet files,
// adding a "window" column from each Source. When Schemas knows table, the
// view has at least its columns, with its types, even with no files.
func (db *DB) ViewParquet(ctx context.Context, name, table string, srcs []Source) error {
	schema, known := Schemas[table]
	if !known && len(srcs) == 0 {
		return fmt.Errorf("view %s: no files and no known schema for table %q", name, table)
	}
	var parts []string
	if known {
		// The typed empty relation first fixes the column order and types, and
		// gives columns that older files lack as NULLs.
		var sel []string
		for _, c := range schema {
			sel = append(sel, fmt.Sprintf("CAST(NULL AS %s) AS %s", c.Type, Ident(c.Name)))
		}
		sel = append(sel, `CAST(NULL AS VARCHAR) AS "window"`)
		parts = append(parts, "SELECT "+strings.Join(sel, ", ")+" WHERE false")
	}
	if len(srcs) > 0 {
		paths := make([]string, len(srcs))
		pairs := make([]string, len(srcs))
		for i, s := range srcs {
			paths[i] = Literal(s.Path)
			pairs[i] = "(" + Literal(s.Path) + ", " + Literal(s.Window) + ")"
		}
		// The window comes from the Source, not from Hive-style path detection,
		// so that cached copies of remote objects (flat names) work the same way.
		parts = append(parts, fmt.Sprintf(`SELECT p.* EXCLUDE (__file), f."window"
FROM read_parquet([%s], filename = '__file', hive_partitioning = false, union_by_name = true) AS p
JOIN (VALUES %s) AS f(__path, "window") ON p.__file = f.__path`,
			strings.Join(paths, ", "), strings.Join(pairs, ", ")))
	}
	q := strings.Join(parts, "\nUNION ALL BY NAME\n")
	if err := db.Exec(ctx, "CREATE OR REPLACE VIEW "+Ident(name)+" AS "+q); err != nil {
		return fmt.Errorf("view %s: %w", name, err)
	}
	return nil
}

// AttachStage creates one view per stage table over every committed window: the
// raw tables and the quarantine from extract manifests, documents, skipped and
// reject_history (every window's rejects as its last transform left them) from
// transform manifests, ledger from every ledger part, and rejects: only the
// outstanding ones, from the stage's reject index; then latest_<table> and
// extracted, which count each document once (latest.go). Each row carries its window;
// a table with no files yet is an empty view with the right columns.
// WINDOW is an SQL keyword: queries quote the column, as in select "window".
func (db *DB) AttachStage(ctx context.Context, st *stage.Stage) error {
	srcs, err := committedSources(ctx, st)
	if err != nil {
		return fmt.Errorf("attach stage: %w", err)
	}
	names := append(stage.Tables(), stage.QuarantineTable, "ledger")
	for _, table := range names {
		if err := db.ViewParquet(ctx, table, table, srcs[table]); err != nil {
			return fmt.Errorf("attach stage: %w", err)
		}
	}
	for view, table := range decisionTables {
		if err := db.ViewParquet(ctx, view, table, srcs[view]); err != nil {
			return fmt.Errorf("attach stage: %w", err)
		}
	}
	if err := db.attachOutstanding(ctx, st); err != nil {
		return fmt.Errorf("attach stage: %w", err)
	}
	if err := db.attachLatest(ctx); err != nil {
		return fmt.Errorf("attach stage: %w", err)
	}
	return nil
}

// committedSources returns, per view, the local files of every committed
// window: the raw tables and the quarantine from the extract manifests,
// documents, skipped and reject_history from the transform manifests, and
// ledger from every ledger part.
func committedSources(ctx context.Context, st *stage.Stage) (map[string][]Source, error) {
	windows, err := st.Windows(ctx)
	if err != nil {
		return nil, err
	}
	srcs := map[string][]Source{}
	add := func(table string, w stage.Window, objs ...stage.ObjectInfo) error {
		var err error
		srcs[table], err = appendLocal(ctx, st, srcs[table], w, objs...)
		return err
	}
	for _, w := range windows {
		em, _, err := st.ReadExtract(ctx, w) // a window without a snapshot lists nothing
		if err != nil {
			return nil, err
		}
		for _, table := range append(stage.Tables(), stage.QuarantineTable) {
			if err := add(table, w, em.Tables[table].Files...); err != nil {
				return nil, err
			}
		}
		if err := addDecisions(ctx, st, w, srcs); err != nil {
			return nil, err
		}
	}
	if srcs["ledger"], err = LedgerSources(ctx, st); err != nil {
		return nil, err
	}
	return srcs, nil
}

// decisionTables are the views over a transform's outputs, each with the
// stage table whose schema it has.
var decisionTables = map[string]string{"documents": "documents", "reject_history": "rejects", "skipped": "skipped"}

// addDecisions adds to srcs the outputs of w's committed transform, if any:
// documents, reject_history and skipped.
func addDecisions(ctx context.Context, st *stage.Stage, w stage.Window, srcs map[string][]Source) error {
	tm, _, err := st.ReadTransform(ctx, w)
	if err != nil {
		return err
	}
	for view, o := range map[string]stage.ObjectInfo{"documents": tm.DocumentsPq, "reject_history": tm.Rejects, "skipped": tm.Skipped} {
		if srcs[view], err = appendLocal(ctx, st, srcs[view], w, o); err != nil {
			return err
		}
	}
	return nil
}

// AttachDecisions creates only the views documents, reject_history and
// skipped (as AttachStage does), over what every committed window's last
// transform decided: for a question about decisions, without the raw tables.
func (db *DB) AttachDecisions(ctx context.Context, st *stage.Stage) error {
	windows, err := st.Windows(ctx)
	if err != nil {
		return fmt.Errorf("attach decisions: %w", err)
	}
	srcs := map[string][]Source{}
	for _, w := range windows {
		if err := addDecisions(ctx, st, w, srcs); err != nil {
			return fmt.Errorf("attach decisions: %w", err)
		}
	}
	for view, table := range decisionTables {
		if err := db.ViewParquet(ctx, view, table, srcs[view]); err != nil {
			return fmt.Errorf("attach decisions: %w", err)
		}
	}
	return nil
}

// appendLocal appends to into the local copies of objs, of window w; an
// object with no key is no file.
func appendLocal(ctx context.Context, st *stage.Stage, into []Source, w stage.Window, objs ...stage.ObjectInfo) ([]Source, error) {
	for _, o := range objs {
		if o.Key == "" {
			continue
		}
		p, err := st.LocalPath(ctx, o.Key, o.SHA256)
		if err != nil {
			return into, err
		}
		into = append(into, Source{Path: p, Window: w.ID()})
	}
	return into, nil
}

// LedgerSources returns every ledger part of the stage as a local file, with
// its window. No ledger yet is not an error.
func LedgerSources(ctx context.Context, st *stage.Stage) ([]Source, error) {
	parts, err := st.AllLedgerParts(ctx)
	if err != nil {
		return nil, fmt.Errorf("list ledger: %w", err)
	}
	out := make([]Source, 0, len(parts))
	for _, part := range parts {
		p, err := st.LocalPath(ctx, part.Key, "")
		if err != nil {
			return nil, fmt.Errorf("ledger part: %w", err)
		}
		out = append(out, Source{Path: p, Window: part.Window})
	}
	return out, nil
}
