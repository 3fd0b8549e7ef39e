package load

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/money"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuora"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// docTypeInfo is what the load knows about each ERP document type.
var docTypeInfo = map[string]struct{ endpoint, object string }{
	"invoice":     {"/api/invoices", zuora.Invoice},
	"payment":     {"/api/payments", zuora.Payment},
	"refund":      {"/api/refunds", zuora.Refund},
	"credit_memo": {"/api/credit-memos", zuora.CreditMemo},
	"debit_memo":  {"/api/debit-memos", zuora.DebitMemo},
}

// envelope is one NDJSON line of the transform's ready documents.
type envelope struct {
	DocType        string          `json:"doc_type"`
	ZuoraID        string          `json:"zuora_id"`
	Number         string          `json:"number"`
	IdempotencyKey string          `json:"idempotency_key"`
	Customer       string          `json:"customer"`
	Currency       string          `json:"currency"`
	Amount         json.Number     `json:"amount"`
	Endpoint       string          `json:"endpoint"`
	Payload        json.RawMessage `json:"payload"`
}

// document is an envelope checked and ready to post.
type document struct {
	envelope
	amount decimal.Decimal
	fixed  money.Fixed
	sha    string // sha256 of the payload bytes
}

// readDocuments reads the window's transform manifest and the NDJSON it commits.
func readDocuments(ctx context.Context, st *stage.Stage, w stage.Window) ([]document, error) {
	var m stage.TransformManifest
	found, err := st.ReadManifest(ctx, "transform", w, &m)
	if err != nil {
		return nil, fmt.Errorf("read transform manifest: %w", err)
	}
	if !found {
		return nil, fmt.Errorf("window %s has no transform manifest: run the transform first", w.ID())
	}
	if m.Documents.Key == "" {
		return nil, fmt.Errorf("transform manifest of window %s lists no documents object", w.ID())
	}
	data, err := st.Read(ctx, m.Documents.Key)
	if err != nil {
		return nil, fmt.Errorf("read ready documents: %w", err)
	}
	if m.Documents.SHA256 != "" {
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != m.Documents.SHA256 {
			return nil, fmt.Errorf("ready documents %s: checksum %s, manifest says %s", m.Documents.Key, got, m.Documents.SHA256)
		}
	}
	return parseDocuments(m.Documents.Key, data)
}

// parseDocuments decodes NDJSON envelopes, keeping amounts exact and payloads byte for byte.
func parseDocuments(key string, data []byte) ([]document, error) {
	var docs []document
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		d, err := parseDocument(line)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", key, n, err)
		}
		if seen[d.ZuoraID] {
			return nil, fmt.Errorf("%s line %d: document %s appears twice", key, n, d.ZuoraID)
		}
		seen[d.ZuoraID] = true
		docs = append(docs, d)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return docs, nil
}

func parseDocument(line []byte) (document, error) {
	var d document
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&d.envelope); err != nil {
		return d, fmt.Errorf("decode envelope: %w", err)
	}
	info, ok := docTypeInfo[d.DocType]
	if !ok {
		return d, fmt.Errorf("unknown doc_type %q", d.DocType)
	}
	if d.Endpoint != info.endpoint {
		return d, fmt.Errorf("%s %s: endpoint %q, want %q", d.DocType, d.ZuoraID, d.Endpoint, info.endpoint)
	}
	if d.ZuoraID == "" || d.IdempotencyKey == "" || d.Currency == "" {
		return d, fmt.Errorf("%s %q: zuora_id, idempotency_key and currency are required", d.DocType, d.ZuoraID)
	}
	if len(d.Payload) == 0 || d.Payload[0] != '{' {
		return d, fmt.Errorf("%s %s: payload is not a JSON object", d.DocType, d.ZuoraID)
	}
	amount, err := money.Parse(string(d.Amount))
	if err != nil {
		return d, fmt.Errorf("%s %s: %w", d.DocType, d.ZuoraID, err)
	}
	if d.fixed, err = money.ToFixed(amount); err != nil {
		return d, fmt.Errorf("%s %s: %w", d.DocType, d.ZuoraID, err)
	}
	d.amount = amount
	sum := sha256.Sum256(d.Payload)
	d.sha = hex.EncodeToString(sum[:])
	return d, nil
}
