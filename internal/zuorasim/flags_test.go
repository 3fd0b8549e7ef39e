package zuorasim

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestRegisterFlagsSetsEveryKnob(t *testing.T) {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var o Options
	o.RegisterFlags(fs)
	v := DefaultVolume()
	v.RegisterFlags(fs)
	err := fs.Parse(strings.Fields(`--client-id=a --client-secret=b --token-ttl=5m --tz=Europe/Berlin --no-updated-bump
		--default-sort=id.ASC --offset-cursor --no-legacy-errors-200 --action-accepts-no --fault-path=/v1/ --latency=1ms
		--rate-limit=9 --rate-window=2s --concurrency-limit=4 --retry-after=3s --fail-429-every=2 --fail-500-every=3
		--fail-502-every=4 --fail-503-every=5 --drop-every=6 --drop-after-every=7 --truncate-every=8 --malformed-every=9
		--expire-token-every=10 --lock-competition-every=11 --temporary-error-every=12 --touch-per-page=1 --insert-per-page=2
		--offset-cursor-objects=invoices,invoice-items --lower-camel-custom-fields --filter-times-in-tenant-zone
		--no-invoice-settlement --require-entity-id=e1 --action-refuses-credit-memo-refunds --numbers-as-doubles
		--conflict-409-every=13 --action-code=SERVER_UNAVAILABLE --action-code-every=14 --no-retry-after
		--hourly-limit=15 --daily-limit=16 --unapply-positive-amounts --cancel-adds-reversals --zuora-finance
		--reversal-memo-source-type=Standalone
		--accounts=1 --invoices=2 --payments=3 --refunds=4 --credit-memos=5 --debit-memos=6 --max-items=7
		--no-erp-percent=8 --draft-percent=9 --transferred-percent=10 --burst-percent=11
		--wide-payments=12 --ignore-percent=13`))
	if err != nil {
		t.Fatal(err)
	}
	f := o.Faults
	want := Options{ClientID: "a", ClientSecret: "b", TokenTTL: 5 * time.Minute, NoUpdatedBumpOnMark: true,
		DefaultSort: "id.ASC", OffsetCursor: true, NoLegacyErrors200: true, ActionAcceptsNo: true,
		Faults: Faults{Path: "/v1/", Latency: time.Millisecond, RateLimit: 9, RateWindow: 2 * time.Second, ConcurrencyLimit: 4,
			RetryAfter: 3 * time.Second, Status429Every: 2, Status500Every: 3, Status502Every: 4, Status503Every: 5,
			DropEvery: 6, DropAfterEvery: 7, TruncateEvery: 8, MalformedEvery: 9, ExpireTokenEvery: 10,
			LockCompetitionEvery: 11, TemporaryErrorEvery: 12, TouchPerPage: 1, InsertPerPage: 2,
			Conflict409Every: 13, ActionCode: "SERVER_UNAVAILABLE", ActionCodeEvery: 14, NoRetryAfter: true, HourlyLimit: 15, DailyLimit: 16}}
	if o.Location == nil || o.Location.String() != "Europe/Berlin" {
		t.Fatalf("location %v", o.Location)
	}
	o.Location = nil
	if o.ClientID != want.ClientID || f != want.Faults || o.TokenTTL != want.TokenTTL || !o.NoUpdatedBumpOnMark ||
		o.DefaultSort != want.DefaultSort || !o.OffsetCursor || !o.NoLegacyErrors200 || !o.ActionAcceptsNo || o.ClientSecret != "b" {
		t.Fatalf("options %+v", o)
	}
	if strings.Join(o.OffsetCursorObjects, ",") != "invoices,invoice-items" || !o.LowerCamelCustomFields || !o.FilterTimesInTenantZone ||
		!o.NoInvoiceSettlement || o.RequireEntityID != "e1" || !o.ActionRefusesCreditMemoRefunds || !o.NumbersAsDoubles ||
		!o.UnapplyPositiveAmounts || !o.CancelAddsReversals || !o.ZuoraFinance || o.ReversalMemoSourceType != "Standalone" {
		t.Fatalf("tenant switches %+v", o)
	}
	if err := fs.Parse([]string{"--offset-cursor-objects=nonsense"}); err == nil {
		t.Fatal("unknown object path accepted")
	}
	if (v != Volume{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}) {
		t.Fatalf("volume %+v", v)
	}
	if err := fs.Parse([]string{"--tz=Not/AZone"}); err == nil {
		t.Fatal("bad zone accepted")
	}
}
