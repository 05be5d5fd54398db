package highway

import (
	"math"
	"testing"
)

func TestTotal(t *testing.T) {
	var zero Total
	if zero.String() != "0" || zero.Sign() != 0 {
		t.Fatalf("zero total: %s %d", zero, zero.Sign())
	}
	// Beyond an int64: a price at the int64 ceiling for 10 epochs.
	big := TotalOf(math.MaxInt64).Mul(10)
	if big.String() != "92233720368547758070" {
		t.Fatalf("MaxInt64 × 10 = %s", big)
	}
	if _, ok := big.Amount(); ok {
		t.Fatal("a total beyond an int64 fitted an Amount")
	}
	if a, ok := big.Quo(10).Amount(); !ok || a != math.MaxInt64 {
		t.Fatalf("÷ 10 = %d %v", a, ok)
	}
	if got := TotalOf(7).Quo(2); got.String() != "3" {
		t.Fatalf("7 ÷ 2 = %s, want 3 (rounded down, as the chain does)", got)
	}
	// Immutability: operations leave their operands alone.
	a := TotalOf(100)
	_ = a.Add(TotalOf(1)).Mul(3)
	if a.String() != "100" {
		t.Fatalf("a changed to %s", a)
	}
	b := big.Mul(0)
	if a.String() != "100" || b.Sign() != 0 {
		t.Fatal("Mul changed its operand")
	}
	if TotalOf(2).Cmp(TotalOf(3)) != -1 || TotalOf(3).Cmp(TotalOf(3)) != 0 || TotalOf(4).Cmp(zero) != 1 {
		t.Fatal("Cmp")
	}
	if txt, _ := TotalOf(1_500_000).MarshalText(); string(txt) != "1500000" {
		t.Fatalf("MarshalText = %s", txt)
	}
}

func TestParseTotal(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"0", "0", true}, {"123456789012345678901234567890", "123456789012345678901234567890", true},
		{"-42", "-42", true}, {"", "", false}, {"-", "", false}, {"+1", "", false}, {"1e6", "", false},
		{" 1", "", false}, {"1.5", "", false}, {"0x10", "", false}, {"1_000", "", false},
	} {
		got, ok := ParseTotal(c.in)
		if ok != c.ok || (ok && got.String() != c.want) {
			t.Errorf("ParseTotal(%q) = %s, %v; want %s, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}
