package zuora

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
)

// TestPagesAreDecodedAsTheyArrive: a page costs the client about its
// records' own bytes, not the whole body held besides them (and its growing
// copies) as well. Pages of 99 records of some 8 KB each, gzipped, are walked
// and dropped; what the process allocated per page is compared with the
// page's size.
func TestPagesAreDecodedAsTheyArrive(t *testing.T) {
	const pages, perPage = 12, 99
	filler := strings.Repeat("x", 8000)
	bodies := make([][]byte, pages)
	plain := 0
	for n := range pages {
		var recs []string
		for i := range perPage {
			recs = append(recs, fmt.Sprintf(`{"id":"inv-%d-%d","amount":1234567890123.123456789,"description":"%s"}`, n, i, filler))
		}
		body := `{"data":[` + strings.Join(recs, ",") + `]`
		if n+1 < pages {
			body += fmt.Sprintf(`,"nextPage":"p%d"`, n+1)
		}
		body += "}"
		plain += len(body)
		var zb bytes.Buffer
		zw := gzip.NewWriter(&zb)
		zw.Write([]byte(body))
		zw.Close()
		bodies[n] = zb.Bytes()
	}
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		n := 0
		fmt.Sscanf(r.URL.Query().Get("cursor"), "p%d", &n)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(bodies[n])
	})
	c, _ := newClient(t, f, func(cfg *Config) { cfg.RequestLog, cfg.LogBodies = nil, false })
	walk := func() int {
		got := 0
		for _, err := range c.Records(context.Background(), Query{Object: "invoices", Fields: []string{"id"}}) {
			if err != nil {
				t.Fatal(err)
			}
			got++
		}
		return got
	}
	walk() // the token, the connection, the pools
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	got := walk()
	runtime.ReadMemStats(&after)
	if got != pages*perPage {
		t.Fatalf("walked %d records, want %d", got, pages*perPage)
	}
	perPageBytes := float64(after.TotalAlloc-before.TotalAlloc) / pages
	pageSize := float64(plain) / pages
	t.Logf("%.0f bytes allocated per page of %.0f bytes (%.2f times)", perPageBytes, pageSize, perPageBytes/pageSize)
	if perPageBytes > 1.6*pageSize {
		t.Errorf("a page of %.0f bytes cost %.0f bytes (%.1f times): the body is held whole besides its records", pageSize, perPageBytes, perPageBytes/pageSize)
	}
}
