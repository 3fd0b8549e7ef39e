package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/demo"
	"github.com/zuora-erp-etl/zuora-erp-etl/internal/zuorasim"
)

// TestRealisticDemoExitsZero runs the demo against a tenant that behaves as
// Zuora's documentation says real ones do.
func TestRealisticDemoExitsZero(t *testing.T) {
	t.Parallel()
	stageURL := "file://" + filepath.Join(t.TempDir(), "demo-stage")
	code, stdout, stderr := runCLI(t, nil, "demo", "--realistic", "--stage", stageURL)
	if code != exitOK {
		t.Fatalf("demo --realistic: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "tenant:          realistic") || strings.Contains(stdout, "FAIL") {
		t.Fatalf("demo --realistic output:\n%s", stdout)
	}
}

// tenantEnv serves a demo tenant with the given switches and returns the settings to reach it.
func tenantEnv(t *testing.T, opts zuorasim.Options) map[string]string {
	t.Helper()
	srv, err := demo.StartTenant(opts, 3, zuorasim.DefaultVolume(), demo.From, demo.To)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return map[string]string{
		"ZUORA_BASE_URL": srv.ZuoraURL, "ZUORA_CLIENT_ID": demo.ClientID, "ZUORA_CLIENT_SECRET": demo.ClientSecret,
		"ERP_BASE_URL": srv.ERPURL, "ERP_TOKEN": demo.ERPToken, "ETL_STAGE": "file://" + t.TempDir(),
	}
}

var demoRange = []string{"--since", demo.From.Format(time.RFC3339), "--until", demo.To.Format(time.RFC3339)}

func TestTenantSettingsAreConfigurationErrorsNamingTheSetting(t *testing.T) {
	t.Parallel()
	t.Run("no Invoice Settlement", func(t *testing.T) {
		environ := tenantEnv(t, zuorasim.Options{NoInvoiceSettlement: true})
		code, _, stderr := runCLI(t, environ, append([]string{"run"}, demoRange...)...)
		if code != exitUsage || !strings.Contains(stderr, "--doc-types") || !strings.Contains(stderr, "ETL_DOC_TYPES") || strings.Contains(stderr, "resume with") {
			t.Fatalf("all five types on a tenant without memos: exit %d, stderr %q; want status 2 naming --doc-types", code, stderr)
		}
		environ["ETL_DOC_TYPES"] = "invoice,payment,refund"
		code, stdout, stderr := runCLI(t, environ, append([]string{"run"}, demoRange...)...)
		if code != exitRejected || !strings.Contains(stdout, "credit_memos: not extracted") {
			t.Fatalf("without the memo types: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
	})
	t.Run("ERP account field", func(t *testing.T) {
		environ := tenantEnv(t, zuorasim.Options{LowerCamelCustomFields: true})
		code, _, stderr := runCLI(t, environ, append([]string{"run", "--erp-account-field", "ErpCustomer__c"}, demoRange...)...)
		if code != exitUsage || !strings.Contains(stderr, "--erp-account-field") || !strings.Contains(stderr, "ETL_ERP_ACCOUNT_FIELD") {
			t.Fatalf("a field Zuora does not know: exit %d, stderr %q; want status 2 naming --erp-account-field", code, stderr)
		}
		code, stdout, stderr := runCLI(t, environ, append([]string{"run"}, demoRange...)...)
		if code != exitRejected || !strings.Contains(stdout, "balanced") {
			t.Fatalf("the default field on a lower-camel tenant: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
	})
	t.Run("entity id", func(t *testing.T) {
		environ := tenantEnv(t, zuorasim.Options{RequireEntityID: "ent-42"})
		if code, _, stderr := runCLI(t, environ, append([]string{"run"}, demoRange...)...); code == exitOK || code == exitRejected {
			t.Fatalf("without the entity id: exit %d, stderr %q", code, stderr)
		}
		environ["ZUORA_ENTITY_ID"] = "ent-42"
		environ["ETL_STAGE"] = "file://" + t.TempDir()
		if code, _, stderr := runCLI(t, environ, append([]string{"run"}, demoRange...)...); code != exitRejected {
			t.Fatalf("with ZUORA_ENTITY_ID: exit %d, stderr %q", code, stderr)
		}
	})
	for _, bad := range [][]string{{"--doc-types", "invoice,memo"}, {"--doc-types", ","}, {"--erp-account-field", "ERP Account"}, {"--zuora-rate", "-1"}, {"--zuora-entity-id", "a,b"},
		{"--unapply-amounts", "signed"}, {"--doc-types", "invoice,payment_application"}} {
		environ := map[string]string{"ETL_STAGE": "file://" + t.TempDir()}
		code, _, stderr := runCLI(t, environ, append([]string{"run"}, bad...)...)
		if code != exitUsage || !strings.Contains(stderr, bad[0]) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q; want one line naming %s, status 2", bad, code, stderr, bad[0])
		}
	}
	environ := map[string]string{"ETL_STAGE": "file://" + t.TempDir(), "ETL_UNAPPLY_AMOUNTS": "unsigned"}
	if code, _, stderr := runCLI(t, environ, "run"); code != exitUsage || !strings.Contains(stderr, "ETL_UNAPPLY_AMOUNTS") || !strings.Contains(stderr, "positive") {
		t.Errorf("ETL_UNAPPLY_AMOUNTS=unsigned: exit %d, stderr %q; want status 2 naming the variable and what it accepts", code, stderr)
	}
}
