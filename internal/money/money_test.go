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

func TestParseReadsDoubleFormsExactly(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"1.0E7", "10000000"}, {"1.2345E3", "1234.5"}, {"100.10", "100.1"}, {"-0.0", "0"}, {"0.0", "0"},
		{"-1.5e-3", "-0.0015"}, {"1E-9", "0.000000001"}, {"12345678901234567890.123456789", "12345678901234567890.123456789"},
	} {
		d, err := Parse(c.in)
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		f, err := ToFixed(d)
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		if got := FromFixed(f).String(); got != c.want {
			t.Errorf("%s reached the stage as %s, want %s", c.in, got, c.want)
		}
	}
	if f, _ := ToFixed(decimal.RequireFromString("-0.0")); f != (Fixed{}) {
		t.Errorf("-0.0 encodes as %x, want all zero bytes", f)
	}
	if d, _ := Parse("1.0E-10"); func() error { _, err := ToFixed(d); return err }() == nil {
		t.Error("1.0E-10 has ten decimal places and was not refused")
	}
}
