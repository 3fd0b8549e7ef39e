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
	raw := map[string][]warehouse.Source{}
	var lines []warehouse.Source
	add := func(into *[]warehouse.Source, win string, objs ...stage.ObjectInfo) error {
		for _, o := range objs {
			if o.Key == "" {
				continue
			}
			p, err := st.LocalPath(ctx, o.Key, o.SHA256)
			if err != nil {
				return err
			}
			*into = append(*into, warehouse.Source{Path: p, Window: win})
		}
		return nil
	}
	for _, other := range windows {
		em, found, err := st.ReadExtract(ctx, other)
		if err != nil {
			return err
		}
		if found {
			for _, table := range stage.HeaderTables() {
				t := raw[table]
				if err := add(&t, other.ID(), em.Tables[table].Files...); err != nil {
					return err
				}
				raw[table] = t
			}
		}
		if other.ID() == w.ID() {
			continue
		}
		tm, found, err := st.ReadTransform(ctx, other)
		if err != nil {
			return err
		}
		if found {
			if err := add(&lines, other.ID(), tm.DocumentsPq); err != nil {
				return err
			}
		}
	}
	for _, table := range stage.HeaderTables() {
		if err := db.ViewParquet(ctx, "hist_"+table, table, raw[table]); err != nil {
			return err
		}
	}
	if err := db.ViewParquet(ctx, "erp_lines", "documents", lines); err != nil {
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
