// Package money converts exact decimal amounts to and from the fixed-point
// form the stage's Parquet files use: DECIMAL(38,9) in a 16-byte big-endian
// two's complement FIXED_LEN_BYTE_ARRAY. No amount ever passes through a float.
package money

import (
	"fmt"
	"math/big"

	"github.com/shopspring/decimal"
)

const (
	// Scale is the number of decimal places the stage keeps.
	Scale = 9
	// Precision is the number of significant digits the stage keeps.
	Precision = 38
)

// Fixed is an amount as stored in Parquet: DECIMAL(38,9), big-endian.
type Fixed = [16]byte

var maxUnscaled = new(big.Int).Sub(new(big.Int).Exp(big.NewInt(10), big.NewInt(Precision), nil), big.NewInt(1))

// ToFixed encodes d as DECIMAL(38,9). It fails rather than round when d has more
// than 9 decimal places or more than 29 integer digits.
func ToFixed(d decimal.Decimal) (Fixed, error) {
	var out Fixed
	if !d.Equal(d.Truncate(Scale)) {
		return out, fmt.Errorf("amount %s has more than %d decimal places", d, Scale)
	}
	u := d.Shift(Scale).BigInt()
	if new(big.Int).Abs(u).Cmp(maxUnscaled) > 0 {
		return out, fmt.Errorf("amount %s exceeds %d digits", d, Precision)
	}
	// Two's complement in 128 bits.
	if u.Sign() < 0 {
		u = new(big.Int).Add(u, new(big.Int).Lsh(big.NewInt(1), 128))
	}
	u.FillBytes(out[:])
	return out, nil
}

// FromFixed decodes a DECIMAL(38,9) value.
func FromFixed(f Fixed) decimal.Decimal {
	u := new(big.Int).SetBytes(f[:])
	if f[0]&0x80 != 0 {
		u.Sub(u, new(big.Int).Lsh(big.NewInt(1), 128))
	}
	return decimal.NewFromBigInt(u, -Scale)
}

// Parse parses a decimal literal as Zuora sends it (a JSON number's text).
func Parse(s string) (decimal.Decimal, error) {
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Decimal{}, fmt.Errorf("amount %q is not a decimal number", s)
	}
	return d, nil
}
