package web

import (
	"strconv"
	"strings"
	"time"

	"github.com/highway-compute/highway"
)

// Formatters shared by every page. Amounts arrive as integer micro-units
// (uhwy) and are shown with their HWY value; every conversion is integer
// arithmetic on decimal strings, so no amount is ever rounded by a float.

func formatCount(n int64) string { return strconv.FormatInt(n, 10) }

// FormatHWY shows a decimal string of uhwy as HWY (highway.FormatHWY).
func FormatHWY(uhwy string) string { return highway.FormatHWY(uhwy) }

// FormatHWYInt shows an int64 of uhwy as HWY.
func FormatHWYInt(uhwy int64) string { return highway.Amount(uhwy).HWY() }

// FormatMilli renders thousandths with three decimals (1500 → "1.500").
func FormatMilli(milli uint64) string {
	return strconv.FormatUint(milli/1000, 10) + "." + pad3(milli%1000)
}

// FormatBps renders basis points as a percentage with two decimals
// (9950 → "99.50 %").
func FormatBps(bps int64) string {
	sign := ""
	if bps < 0 {
		sign, bps = "-", -bps
	}
	frac := strconv.FormatInt(bps%100, 10)
	if len(frac) < 2 {
		frac = "0" + frac
	}
	return sign + strconv.FormatInt(bps/100, 10) + "." + frac + " %"
}

func pad3(n uint64) string {
	s := strconv.FormatUint(n, 10)
	return strings.Repeat("0", 3-len(s)) + s
}

func i64(n int64) string { return strconv.FormatInt(n, 10) }

// fmtDuration writes a whole duration plainly: "15 s", "10 min", "1 h 30 min".
func fmtDuration(d time.Duration) string {
	s := int64(d / time.Second)
	switch {
	case s < 120 && s%60 != 0:
		return strconv.FormatInt(s, 10) + " s"
	case s < 3600:
		if s%60 != 0 {
			return strconv.FormatInt(s/60, 10) + " min " + strconv.FormatInt(s%60, 10) + " s"
		}
		return strconv.FormatInt(s/60, 10) + " min"
	default:
		out := strconv.FormatInt(s/3600, 10) + " h"
		if m := s % 3600 / 60; m != 0 {
			out += " " + strconv.FormatInt(m, 10) + " min"
		}
		return out
	}
}

// permille writes part/whole as a percentage with one decimal, rounded
// up (a share shown to a buyer never understates).
func permille(part, whole time.Duration) string {
	if whole <= 0 {
		return "?"
	}
	pm := (int64(part)*1000 + int64(whole) - 1) / int64(whole)
	return strconv.FormatInt(pm/10, 10) + "." + strconv.FormatInt(pm%10, 10) + " %"
}
