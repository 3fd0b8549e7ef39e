package zuora

import (
	"testing"

	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

func TestMarkEndpointsCoverEveryDocType(t *testing.T) {
	for _, dt := range stage.Documents() {
		if _, ok := markEndpoints[dt.MarkObject()]; !ok {
			t.Errorf("no write-back endpoint for %s (object type %s)", dt, dt.MarkObject())
		}
	}
}
