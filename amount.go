package highway

import (
	"math"
	"strconv"
	"strings"
)

// Amount is money in the chain's base unit, micro-HWY (uhwy): 1 HWY is
// 10^6 uhwy. Every amount the marketplace parses, prices or escrows is an
// Amount; nothing about money is ever a float, so "0.1" HWY is exactly
// 100000 uhwy. Totals read from the chain are decimal strings of uhwy
// (the chain's integers have no fixed width) and are shown by FormatHWY.
//
// On the wire (the JSON API, the agent protocol, the chain) an amount is
// a decimal string of uhwy; people read and the provider console types
// HWY with up to six decimals.
type Amount int64

// UhwyPerHWY is how many base units make one HWY.
const UhwyPerHWY Amount = 1_000_000

// hwyDecimals is the number of decimals of HWY (log10 of UhwyPerHWY).
const hwyDecimals = 6

// ParseUhwy reads a decimal string of uhwy: digits only, no sign or
// separators, and small enough for an int64.
func ParseUhwy(s string) (Amount, bool) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false
	}
	return Amount(v), true
}

// ParseHWY reads a non-negative HWY amount with at most six decimals
// ("2.49", "0.000001", "7"), digit by digit. Signs, exponents, separators
// and a seventh decimal are refused rather than rounded: an amount is
// what the person typed or nothing.
func ParseHWY(s string) (Amount, bool) {
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || len(frac) > hwyDecimals || (hasDot && frac == "") {
		return 0, false
	}
	// The whole part is bounded so whole·10^6 + fraction fits an int64.
	const maxWhole = math.MaxInt64 / int64(UhwyPerHWY)
	var w int64
	for _, r := range whole {
		if r < '0' || r > '9' {
			return 0, false
		}
		w = w*10 + int64(r-'0')
		if w > maxWhole {
			return 0, false
		}
	}
	var f int64
	for i := range hwyDecimals {
		f *= 10
		if i < len(frac) {
			r := frac[i]
			if r < '0' || r > '9' {
				return 0, false
			}
			f += int64(r - '0')
		}
	}
	total := w*int64(UhwyPerHWY) + f
	if total < 0 { // the last whole step overflowed by the fraction
		return 0, false
	}
	return Amount(total), true
}

// String is the amount in uhwy, as the wire carries it.
func (a Amount) String() string { return strconv.FormatInt(int64(a), 10) }

// HWY is the amount in HWY with six decimals ("1.234567").
func (a Amount) HWY() string { return FormatHWY(a.String()) }

// FormatHWY renders a decimal string of uhwy, of any size, as HWY with six
// decimals ("1234567" → "1.234567"). A string that is not an integer is
// returned as is: amounts copied from the chain are shown, never hidden.
func FormatHWY(uhwy string) string {
	neg := strings.HasPrefix(uhwy, "-")
	digits := strings.TrimPrefix(uhwy, "-")
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return uhwy
	}
	digits = strings.TrimLeft(digits, "0")
	if len(digits) <= hwyDecimals {
		digits = strings.Repeat("0", hwyDecimals-len(digits)+1) + digits
	}
	cut := len(digits) - hwyDecimals
	out := digits[:cut] + "." + digits[cut:]
	if neg && strings.Trim(digits, "0") != "" {
		return "-" + out
	}
	return out
}
