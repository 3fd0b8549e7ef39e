// Package testutil holds the helpers the tests of several packages share:
// registry coverage, fast retry policies, a log buffer safe for concurrent
// writers, and clocks.
package testutil

import (
	"testing"

	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// CoversDocTypes fails t unless m, a stage's behaviour per document type, has
// an entry for every type of the registry and none for anything else.
func CoversDocTypes[V any](t testing.TB, name string, m map[stage.DocType]V) {
	t.Helper()
	for _, dt := range stage.DocTypes() {
		if _, ok := m[dt]; !ok {
			t.Errorf("%s has nothing for document type %s", name, dt)
		}
	}
	for dt := range m {
		if !dt.Valid() {
			t.Errorf("%s has an entry for %q, which is not a document type", name, dt)
		}
	}
}
