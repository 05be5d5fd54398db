package poc

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestClassTable(t *testing.T) {
	rates := ClassRates()
	if !slices.IsSortedFunc(rates, func(a, b ClassRate) int { return strings.Compare(a.Class, b.Class) }) {
		t.Fatal("class table not sorted")
	}
	for _, c := range rates {
		// MilliH100 is round(1000 × MmaTOPS × share / (1297 × wgmma's share)).
		share, h100 := uint64(mmaShareBP), uint64(h100MmaTOPS*wgmmaShareBP)
		if c.Wgmma {
			share = wgmmaShareBP
		}
		if want := (uint64(c.MmaTOPS)*share*1000 + h100/2) / h100; c.MilliH100 != want {
			t.Errorf("%s: milli %d, want %d", c.Class, c.MilliH100, want)
		}
	}
	if _, err := LookupClass("h100"); err != nil {
		t.Fatal(err)
	}
	if _, err := LookupClass("Voodoo2"); !errors.Is(err, ErrUnknownClass) {
		t.Fatal(err)
	}
	if m, _ := H100Equivalents("A100", 8); m != 2424 {
		t.Fatalf("8×A100 = %d milli-H100", m)
	}
}

func TestEpochTarget(t *testing.T) {
	p := DefaultParams()
	cases := []struct {
		name    string
		p       Params
		class   string
		gpus    uint32
		window  uint64
		wantD   uint64
		wantR   uint64
		wantErr error
	}{
		// N = 1.35e9 × 60 = 8.1e10; D = 8.1e10/3000 = 27,000,000; R = 2730.
		{"1×H100 60s", p, "H100", 1, 60, 27_000_000, 2730, nil},
		// 8 × 701 milli × 1.35e9 /1000 × 600 = 4.54248e12 → D = 1,514,160,000.
		{"8×B200 600s", p, "B200", 8, 600, 1_514_160_000, 2730, nil},
		{"unknown", p, "Voodoo2", 1, 60, 0, 0, ErrUnknownClass},
		{"too short", p, "L4", 1, 0, 0, 0, ErrEpochTooSmall},
		{"overflow", p, "B200", 1 << 31, 1 << 40, 0, 0, ErrOverflow},
		// Dev: 50,000 nonces/s × 1 × 5 s = 250,000; D = 83; R = ⌊250,000·0.91/83⌋ = 2740.
		{"dev CPU-SIM 5s", DevParams(), "CPU-SIM", 1, 5, 83, 2740, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tg, err := EpochTarget(tc.p, tc.class, tc.gpus, tc.window)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if tg.Difficulty != tc.wantD || tg.Required != tc.wantR {
				t.Fatalf("got %+v, want D=%d R=%d", tg, tc.wantD, tc.wantR)
			}
			if err == nil {
				r, _ := RequiredCount(tc.p, tc.class, tc.gpus, tc.window)
				if r != tg.Required {
					t.Fatal("RequiredCount disagrees")
				}
			}
		})
	}
}

func TestParamsValidate(t *testing.T) {
	mod := func(f func(*Params)) Params { p := DefaultParams(); f(&p); return p }
	cases := []struct {
		name string
		p    Params
		want error
	}{
		{"default", DefaultParams(), nil},
		{"dev", DevParams(), nil},
		{"version", mod(func(p *Params) { p.Version = 3 }), ErrWrongVersion},
		{"version 0", mod(func(p *Params) { p.Version = 0 }), ErrWrongVersion},
		{"version 2", mod(func(p *Params) { p.Version = Version2 }), nil},
		{"dim", mod(func(p *Params) { p.Dim = 48 }), ErrBadParams},
		{"dim big", mod(func(p *Params) { p.Dim = MaxDim + 32 }), ErrBadParams},
		{"layers", mod(func(p *Params) { p.Layers = 0 }), ErrBadParams},
		{"k", mod(func(p *Params) { p.SampleSize = 0 }), ErrBadParams},
		{"max nonces", mod(func(p *Params) { p.MaxProofNonces = MaxProofNoncesCap + 1 }), ErrBadParams},
		{"expected", mod(func(p *Params) { p.ExpectedValid = 5000 }), ErrBadParams},
		{"slack", mod(func(p *Params) { p.SlackBP = BasisPoints }), ErrBadParams},
		{"nonce bits", mod(func(p *Params) { p.NonceBits = 8 }), ErrBadParams},
		{"min difficulty", mod(func(p *Params) { p.MinDifficulty = 0 }), ErrBadParams},
		{"rate", mod(func(p *Params) { p.H100NoncesPerSecond = 0 }), ErrBadParams},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.p.Validate(); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// TestMeasuredMilliH100: a proof at a class's epoch target that finds the
// expected count reads as the class's rate; twice as many as twice; and
// degenerate inputs neither panic nor overflow.
func TestMeasuredMilliH100(t *testing.T) {
	p := DefaultParams()
	tg, err := EpochTarget(p, "A100", 1, 5)
	if err != nil {
		t.Fatal(err)
	}
	// The expected count is N/D ≥ λ = 3000.
	if got := MeasuredMilliH100(p, tg, 3000, 5); got < 302 || got > 303 {
		t.Fatalf("an A100 at its expected count measures %d milli, want 303", got)
	}
	if got := MeasuredMilliH100(p, tg, 6000, 5); got < 605 || got > 606 {
		t.Fatalf("twice the count measures %d", got)
	}
	for _, c := range []struct {
		p     Params
		t     Target
		n     int
		w     uint64
		want  uint64
		label string
	}{
		{p, tg, 0, 5, 0, "no nonces"},
		{p, tg, 100, 0, 0, "no window"},
		{Params{}, tg, 100, 5, 0, "no rate"},
		{p, Target{Difficulty: ^uint64(0)}, 1 << 20, 5, ^uint64(0), "saturates"},
	} {
		if got := MeasuredMilliH100(c.p, c.t, c.n, c.w); got != c.want {
			t.Errorf("%s: %d, want %d", c.label, got, c.want)
		}
	}
}
