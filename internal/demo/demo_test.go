package demo

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
)

// TestARChecksFailWhenTheERPDisagrees: the demo's AR checks fail (so the
// demo exits non-zero) when the ERP does not hold what Zuora holds: here,
// nothing was ever posted.
func TestARChecksFailWhenTheERPDisagrees(t *testing.T) {
	srv, err := Start(1, zuorasim.DefaultVolume(), From, To)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cfg := srv.Config(fmt.Sprintf("mem://demo-ar-checks-%d", time.Now().UnixNano()), nil)
	checks := arChecks(context.Background(), srv, cfg, io.Discard)
	var parity *Check
	for i, c := range checks {
		if strings.HasPrefix(c.What, "AR parity") {
			parity = &checks[i]
		}
	}
	if parity == nil || parity.OK || !strings.Contains(parity.Why, "open in Zuora, not held by the ERP") {
		t.Fatalf("AR parity check with an empty ERP = %+v; want it failed, naming documents the ERP lacks", parity)
	}
	if r := (&Result{Checks: checks}); r.OK() {
		t.Fatal("the demo's result is OK with AR parity broken")
	}
}
