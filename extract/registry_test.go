package extract

import (
	"testing"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/testutil"
)

func TestEntitiesCoverEveryDocType(t *testing.T) {
	testutil.CoversDocTypes(t, "extract.entities", entities)
	for dt, e := range entities {
		if e.kind() != dt {
			t.Errorf("entities[%s] walks %s", dt, e.kind())
		}
	}
}
