package money

import (
	"testing"

	"github.com/shopspring/decimal"
)

func TestFixedRoundTrip(t *testing.T) {
	for _, s := range []string{"0", "0.1", "0.2", "-0.3", "1234.56", "-1234.567891234", "99999999999999999999999999999.999999999", "-99999999999999999999999999999.999999999", "0.000000001"} {
		d := decimal.RequireFromString(s)
		f, err := ToFixed(d)
		if err != nil {
			t.Fatalf("ToFixed(%s): %v", s, err)
		}
		if got := FromFixed(f); !got.Equal(d) {
			t.Errorf("round trip %s = %s", s, got)
		}
	}
}

func TestFixedRefusesWhatItCannotHold(t *testing.T) {
	for _, s := range []string{"0.0000000001", "100000000000000000000000000000"} {
		if _, err := ToFixed(decimal.RequireFromString(s)); err == nil {
			t.Errorf("ToFixed(%s) succeeded; want an error rather than rounding", s)
		}
	}
}
