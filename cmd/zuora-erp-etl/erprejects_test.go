package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/demo"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/erpsim"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
	mapping "github.com/zuora-erp-etl/zuora-erp-etl/sql"
)

// TestERPRejectionKeepsRunAtExit3UntilFixed: documents the ERP refused keep
// every later run at exit 3 (no window due) and are listed by rejects and by
// query; once their account's ERP id is fixed in Zuora, the next run posts
// them and exits 0.
func TestERPRejectionKeepsRunAtExit3UntilFixed(t *testing.T) {
	t.Parallel()
	volume := zuorasim.DefaultVolume()
	volume.NoERPPercent = 0 // the mapping rejects nothing: every reject is the ERP's
	srv, err := demo.Start(3, volume, demo.From, demo.To)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.PreloadTransferred(); err != nil { // what another integration transferred is in the ERP
		t.Fatal(err)
	}
	sqlDir := t.TempDir()
	csv, err := mapping.Files.ReadFile("currencies.csv")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sqlDir, "currencies.csv"), append(csv, []byte("KWD,Kuwaiti dinar\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	accounts := srv.Zuora.Snapshot("accounts")
	account, _ := accounts[0]["id"].(string)
	customer, _ := accounts[0]["ERPAccountId__c"].(string)
	srv.ERP.SetFaults(erpsim.Faults{RejectCustomers: map[string]string{customer: "customer is blocked in the ERP"}})
	environ := map[string]string{
		"ZUORA_BASE_URL": srv.ZuoraURL, "ZUORA_CLIENT_ID": demo.ClientID, "ZUORA_CLIENT_SECRET": demo.ClientSecret,
		"ERP_BASE_URL": srv.ERPURL, "ERP_TOKEN": demo.ERPToken, "ETL_STAGE": "file://" + t.TempDir(),
	}
	// --mark-refused=false: the refusals come back through the re-check in
	// their own window (marked Error, they would come back as the mark's echo
	// in a later window, which this test's clock never reaches).
	runArgs := []string{"run", "--since", demo.From.Format(time.RFC3339), "--until", demo.To.Format(time.RFC3339), "--sql-dir", sqlDir, "--mark-refused=false"}

	if code, stdout, stderr := runCLI(t, environ, runArgs...); code != exitRejected {
		t.Fatalf("first run: exit %d; want %d\nstdout:\n%s\nstderr:\n%s", code, exitRejected, stdout, stderr)
	}
	if code, stdout, _ := runCLI(t, environ, runArgs...); code != exitRejected || !strings.Contains(stdout, "no window was due") ||
		!strings.Contains(stdout, "outstanding rejects in every window:") {
		t.Fatalf("second run: exit %d; want %d although no window was due:\n%s", code, exitRejected, stdout)
	}
	code, stdout, stderr := runCLI(t, environ, "rejects")
	if code != exitRejected || !strings.Contains(stdout, "ERP_REJECTED") || !strings.Contains(stdout, "customer is blocked in the ERP") {
		t.Fatalf("rejects: exit %d; want %d listing the ERP's refusals\nstdout:\n%s\nstderr:\n%s", code, exitRejected, stdout, stderr)
	}
	code, stdout, _ = runCLI(t, environ, "query", "--format", "csv",
		`select count(*) from rejects where reason_code = 'ERP_REJECTED' and erp_status = 422 and first_seen is not null and last_seen is not null`)
	if n := strings.TrimSpace(strings.Split(stdout+"\n", "\n")[1]); code != exitOK || n == "" || n == "0" {
		t.Fatalf("query rejects: exit %d, %q ERP rejections with status, first and last seen; want some", code, stdout)
	}

	if err := srv.Zuora.SetFields(account, map[string]string{"ERPAccountId__c": "ERP-MOVED"}); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := runCLI(t, environ, runArgs...); code != exitOK || !strings.Contains(stdout, "outstanding rejects in every window: none") {
		t.Fatalf("run after the fix: exit %d; want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if code, stdout, _ := runCLI(t, environ, "rejects"); code != exitOK || !strings.Contains(stdout, "no outstanding rejects") {
		t.Errorf("rejects after the fix: exit %d:\n%s", code, stdout)
	}
	keys := map[string]bool{}
	for _, d := range srv.ERP.Documents() {
		if d.Preloaded {
			continue
		}
		if keys[d.Key] {
			t.Errorf("document %s is in the ERP twice", d.Key)
		}
		keys[d.Key] = true
	}
}
