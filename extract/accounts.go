package extract

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuora"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// addAccount records the account of an application the walk staged.
func (x *run) addAccount(id *string) {
	if id == nil || *id == "" {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.accounts == nil {
		x.accounts = map[string]bool{}
	}
	x.accounts[*id] = true
}

// stageAccounts fetches the accounts of the window's applications by id,
// RecheckBatch per query, and stages them as the accounts table: the ERP
// customer of an application is its account's (docs/zuora-api.md §7, fact 2).
func (x *run) stageAccounts(ctx context.Context) error {
	t, err := openTable[stage.AccountRow](ctx, x.st, stage.AccountsTable, stage.RawKey(stage.AccountsTable, x.w, 0), x.opts.RowGroupRows)
	if err != nil {
		return err
	}
	defer t.abort()
	ids := slices.Sorted(maps.Keys(x.accounts))
	res := accountFetch{erpField: x.opts.ERPAccountField, add: func(row stage.AccountRow) error {
		var updated time.Time
		if row.UpdatedDate != nil {
			updated = *row.UpdatedDate
		}
		return t.add(row, updated)
	}}
	if err := res.fetch(ctx, x.src, ids, x.opts.LookupConcurrency); err != nil {
		return err
	}
	snap, err := t.close()
	if err != nil {
		return err
	}
	snap.Query = params(accountQuery(x.opts.ERPAccountField, []string{"<the accountId of the window's applications>"}))
	x.mu.Lock()
	x.accountSnap = &snap
	x.mu.Unlock()
	x.warn(stage.AccountsTable, 0, res.warnings)
	x.log.Info("accounts of the applications staged", "accounts", snap.Rows, "asked", len(ids), "warnings", len(res.warnings))
	return nil
}

// accountQuery asks for the accounts ids, with their ERP customer field.
func accountQuery(erpField string, ids []string) zuora.Query {
	return zuora.Query{Object: stage.AccountsObject, Fields: []string{"id", "createddate", "updateddate", "accountnumber", erpField},
		Filters: []string{"id.IN:[" + strings.Join(ids, ",") + "]"}, Sort: "id.ASC", PageSize: pageSize}
}

// accountFetch fetches accounts by id and hands each to add, once.
type accountFetch struct {
	erpField string
	add      func(stage.AccountRow) error
	warnings []string
	missing  []string
}

// fetch asks for the accounts ids, RecheckBatch per query and up to
// concurrency queries at once, and hands them to add batch by batch in the
// order of ids.
func (a *accountFetch) fetch(ctx context.Context, src Source, ids []string, concurrency int) error {
	batches := slices.Collect(slices.Chunk(ids, RecheckBatch))
	err := inOrder(ctx, len(batches), concurrency,
		func(ctx context.Context, i int) ([]json.RawMessage, error) { return a.query(ctx, src, batches[i]) },
		func(i int, raws []json.RawMessage) error { return a.keep(batches[i], raws) })
	if err != nil {
		return err
	}
	if n := len(a.missing); n > 0 {
		a.warnings = append(a.warnings, fmt.Sprintf("accounts: Zuora returns no account for %d accountId of the applications (e.g. %s): their applications are rejected as %s",
			n, a.missing[0], stage.ReasonNoERPAccount))
	}
	return nil
}

// query returns what Zuora answers for the accounts of one batch.
func (a *accountFetch) query(ctx context.Context, src Source, batch []string) ([]json.RawMessage, error) {
	var out []json.RawMessage
	for raw, err := range src.Records(ctx, accountQuery(a.erpField, batch)) {
		if err != nil {
			return nil, fmt.Errorf("query accounts by id: %w", err)
		}
		out = append(out, raw)
	}
	return out, nil
}

// keep hands the accounts Zuora answered for batch to add, each once, and
// notes the ids it did not answer.
func (a *accountFetch) keep(batch []string, raws []json.RawMessage) error {
	asked := map[string]bool{}
	for _, id := range batch {
		asked[id] = true
	}
	seen := map[string]bool{}
	for _, raw := range raws {
		row, warning, err := accountRow(raw, a.erpField)
		if err != nil {
			return err
		}
		if !asked[row.ID] {
			return fmt.Errorf("zuora answered a query of accounts by id with account %s, which was not asked for", row.ID)
		}
		if seen[row.ID] {
			continue // listed twice (a page boundary moved): once is enough
		}
		seen[row.ID] = true
		if warning != "" {
			a.warnings = append(a.warnings, warning)
		}
		if err := a.add(row); err != nil {
			return err
		}
	}
	for _, id := range batch {
		if !seen[id] {
			a.missing = append(a.missing, id)
		}
	}
	return nil
}

// accountRow reads one account; a field that cannot be read keeps the
// account without its ERP customer and says why, so that its applications
// are rejected rather than the window failed.
func accountRow(raw json.RawMessage, erpField string) (stage.AccountRow, string, error) {
	fields, err := decodeFields(raw)
	if err != nil {
		return stage.AccountRow{}, "", fmt.Errorf("zuora answered a query of accounts by id with a record that is not a JSON object: %s", snippet(raw))
	}
	r := &record{entity: stage.AccountsTable, fields: fields}
	id := r.str("id")
	if id == nil || *id == "" || r.err != nil {
		return stage.AccountRow{}, "", fmt.Errorf("zuora answered a query of accounts by id with a record without an id: %s", snippet(raw))
	}
	r.id = *id
	row := stage.AccountRow{ID: r.id, CreatedDate: r.created(), UpdatedDate: r.timestamp("updatedDate"), UpdatedDateRaw: r.str("updatedDate"),
		AccountNumber: r.str("accountNumber"), ERPAccountID: r.str(erpField)}
	if r.err != nil {
		return stage.AccountRow{ID: r.id}, fmt.Sprintf("account %s: %v; staged without its ERP customer", r.id, r.err), nil
	}
	return row, "", nil
}
