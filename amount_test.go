package highway_test

import (
	"testing"

	"github.com/highway-compute/highway"
)

func TestParseHWY(t *testing.T) {
	cases := []struct {
		in   string
		want highway.Amount
		ok   bool
	}{
		{"2.49", 2_490_000, true},
		{"0.000001", 1, true},
		{"7", 7_000_000, true},
		{"0.1", 100_000, true},
		{"1000000", 1_000_000_000_000, true},
		{"0", 0, true},
		{"9223372036854.775807", 9_223_372_036_854_775_807, true}, // the largest int64
		{"9223372036854.775808", 0, false},                        // one more overflows
		{"9223372036854.999999", 0, false},
		{"9223372036855", 0, false},
		{"99999999999999999999", 0, false},
		{"1.2345678", 0, false},
		{"", 0, false},
		{"abc", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{".5", 0, false},
		{"5.", 0, false},
		{"1e3", 0, false},
		{"1,5", 0, false},
		{"1.2.3", 0, false},
		{" 1", 0, false},
	}
	for _, tc := range cases {
		got, ok := highway.ParseHWY(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("ParseHWY(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseUhwy(t *testing.T) {
	for in, want := range map[string]bool{
		"0": true, "1": true, "9223372036854775807": true,
		"9223372036854775808": false, "": false, "-1": false, "+1": false, "1.0": false, " 1": false, "0x10": false,
	} {
		if _, ok := highway.ParseUhwy(in); ok != want {
			t.Errorf("ParseUhwy(%q) ok = %v, want %v", in, ok, want)
		}
	}
}

func TestFormatHWY(t *testing.T) {
	for in, want := range map[string]string{
		"0":                     "0.000000",
		"1":                     "0.000001",
		"999999":                "0.999999",
		"1000000":               "1.000000",
		"1234567":               "1.234567",
		"000123":                "0.000123",
		"-2500000":              "-2.500000",
		"123456789012345678901": "123456789012345.678901",
		"":                      "",
		"12abc":                 "12abc",
	} {
		if got := highway.FormatHWY(in); got != want {
			t.Errorf("FormatHWY(%q) = %q, want %q", in, got, want)
		}
	}
	if got := highway.Amount(1_500_000).HWY(); got != "1.500000" {
		t.Errorf("Amount.HWY = %q", got)
	}
	// Parsing what is shown gives the amount back.
	for _, a := range []highway.Amount{0, 1, 999_999, 1_000_000, 2_490_000, 9_223_372_036_854_775_807} {
		if back, ok := highway.ParseHWY(a.HWY()); !ok || back != a {
			t.Errorf("ParseHWY(%q) = %d, %v; want %d", a.HWY(), back, ok, a)
		}
	}
}
