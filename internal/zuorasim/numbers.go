package zuorasim

import (
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"
)

// doubleForm writes the decimal text v in another valid JSON form of the same
// value, as an API that types amounts as double may: an exponent (1.0E7,
// 1.2345E3), a trailing zero (100.10) or a signed zero (-0.0, 0.0). The form is
// a function of the record and field, so answers are repeatable.
func doubleForm(v, id string, field int) string {
	d, err := decimal.NewFromString(v)
	if err != nil {
		return v
	}
	h := fnv.New32a()
	h.Write([]byte(id))
	salt := h.Sum32() + uint32(field)
	if d.IsZero() {
		if salt%2 == 0 {
			return "-0.0"
		}
		return "0.0"
	}
	if salt%2 == 0 {
		return exponentForm(d)
	}
	s := d.String()
	if strings.Contains(s, ".") {
		return s + "0"
	}
	return s + ".0"
}

// exponentForm writes d as one digit, a point, the other digits and E<n>, exactly.
func exponentForm(d decimal.Decimal) string {
	coef, exp := d.Coefficient(), int(d.Exponent())
	sign := ""
	if coef.Sign() < 0 {
		sign = "-"
		coef.Neg(coef)
	}
	digits := coef.String()
	for len(digits) > 1 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
		exp++
	}
	frac := digits[1:]
	if frac == "" {
		frac = "0"
	}
	return sign + digits[:1] + "." + frac + "E" + strconv.Itoa(exp+len(digits)-1)
}
