package transform

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/warehouse"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// prepareHistory creates the tables the transform's own decisions read from
// the rest of the stage: hist_<table>, every version of every document and
// application that any committed window staged (this one included), with
// its window; erp_lines, the ready lines of every other window; and
// stage_info, the stage's start. The ledger of every other window is read in
// prepare. Only this window's own tables reach the mapping's document files.
func prepareHistory(ctx context.Context, st *stage.Stage, w stage.Window, db *warehouse.DB) error {
	windows, err := st.Windows(ctx)
	if err != nil {
		return fmt.Errorf("list committed windows: %w", err)
	}
	h := history{st: st, raw: map[string][]warehouse.Source{}}
	for _, other := range windows {
		if err := h.addWindow(ctx, other, other.ID() != w.ID()); err != nil {
			return err
		}
	}
	for _, table := range stage.HeaderTables() {
		if err := db.ViewParquet(ctx, "hist_"+table, table, h.raw[table]); err != nil {
			return err
		}
	}
	if err := db.ViewParquet(ctx, "erp_lines", "documents", h.lines); err != nil {
		return err
	}
	start, found, err := st.Start(ctx)
	if err != nil {
		return fmt.Errorf("read the stage's start: %w", err)
	}
	since := "NULL"
	if found {
		since = "TIMESTAMPTZ " + warehouse.Literal(start.Start.UTC().Format(time.RFC3339Nano))
	}
	return db.Exec(ctx, "CREATE TABLE stage_info AS SELECT CAST("+since+" AS TIMESTAMPTZ) AS start")
}

// history gathers the files of the committed windows the transform reads:
// raw, per header table, every window's snapshot; lines, the ready lines of
// the other windows.
type history struct {
	st    *stage.Stage
	raw   map[string][]warehouse.Source
	lines []warehouse.Source
}

// addWindow adds the snapshot of the committed window win and, when it is
// another window than the one transformed, its ready lines.
func (h *history) addWindow(ctx context.Context, win stage.Window, other bool) error {
	em, found, err := h.st.ReadExtract(ctx, win)
	if err != nil {
		return err
	}
	if found {
		for _, table := range stage.HeaderTables() {
			if h.raw[table], err = h.sources(ctx, h.raw[table], win.ID(), em.Tables[table].Files...); err != nil {
				return err
			}
		}
	}
	if !other {
		return nil
	}
	tm, found, err := h.st.ReadTransform(ctx, win)
	if err != nil || !found {
		return err
	}
	h.lines, err = h.sources(ctx, h.lines, win.ID(), tm.DocumentsPq)
	return err
}

// sources appends to into the local copies of objs, of window win; an
// object with no key is no file.
func (h *history) sources(ctx context.Context, into []warehouse.Source, win string, objs ...stage.ObjectInfo) ([]warehouse.Source, error) {
	for _, o := range objs {
		if o.Key == "" {
			continue
		}
		p, err := h.st.LocalPath(ctx, o.Key, o.SHA256)
		if err != nil {
			return into, err
		}
		into = append(into, warehouse.Source{Path: p, Window: win})
	}
	return into, nil
}

// histVersionsSQL lists every staged version of every record: per window the
// latest version of each id it holds, with the record's doc_type.
func histVersionsSQL() string {
	var parts []string
	for _, d := range stage.Streams() {
		parts = append(parts, fmt.Sprintf(`SELECT %s AS doc_type, id, "window", updated_date, created_date FROM %s`,
			warehouse.Literal(string(d)), warehouse.Ident("hist_"+d.HeaderTable())))
	}
	return `CREATE TABLE hist_versions AS
SELECT doc_type, id, "window", max(updated_date) AS updated_date, min(created_date) AS created_date
FROM (` + strings.Join(parts, "\nUNION ALL\n") + `)
GROUP BY ALL`
}
