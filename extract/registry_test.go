package extract

import (
	"testing"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/testutil"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

func TestEntitiesCoverEveryDocType(t *testing.T) {
	testutil.CoversTypes(t, "extract.entities", entities, stage.Streams())
	for dt, e := range entities {
		if e.kind() != dt {
			t.Errorf("entities[%s] walks %s", dt, e.kind())
		}
	}
}
