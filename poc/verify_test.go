package poc

import (
	"context"
	"errors"
	"sync"
	"testing"
)

// devFixture is an honest DevParams proof shared by the tests: difficulty
// 16 over 4096 nonces gives ≈ 256 valid nonces.
type devFixture struct {
	p      Params
	seed   Seed
	t      Target
	proof  Proof
	sample []byte
}

var (
	fixOnce sync.Once
	fix     devFixture
)

func devProof(t testing.TB) devFixture {
	fixOnce.Do(func() {
		p := DevParams()
		seed := DeriveSeed([]byte("block-hash"), 11, 3, []byte("provider-addr"))
		tg := Target{Difficulty: 16, Required: 200}
		proof, err := Prove(context.Background(), CPUBackend{}, p, seed, tg, ProveOptions{Limit: 4096})
		if err != nil {
			panic(err)
		}
		fix = devFixture{p: p, seed: seed, t: tg, proof: proof, sample: []byte("next-block-hash")}
	})
	if len(fix.proof.Nonces) < 200 {
		t.Fatalf("fixture found only %d nonces", len(fix.proof.Nonces))
	}
	return fix
}

func withNonces(pr Proof, nonces []uint64) Proof {
	return Proof{Version: pr.Version, Nonces: nonces}
}

func TestVerifyHonest(t *testing.T) {
	f := devProof(t)
	if err := Verify(f.p, f.seed, f.t, f.proof, f.sample); err != nil {
		t.Fatal(err)
	}
	data, err := f.proof.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyBytes(f.p, f.seed, f.t, data, f.sample); err != nil {
		t.Fatal(err)
	}
	// Every nonce, not only the sample, is valid: the prover is exact.
	m, _ := NewModel(f.p, f.seed)
	for _, n := range f.proof.Nonces {
		if !f.t.Valid(m.Compute(n)) {
			t.Fatalf("nonce %d invalid", n)
		}
	}
}

// TestVerifyRejects covers every named rejection.
func TestVerifyRejects(t *testing.T) {
	f := devProof(t)
	ns := f.proof.Nonces
	clone := func() []uint64 { return append([]uint64(nil), ns...) }
	dup := clone()
	dup[5] = dup[4]
	unsorted := clone()
	unsorted[4], unsorted[5] = unsorted[5], unsorted[4]
	oor := clone()
	oor[len(oor)-1] = 1 << 48
	fabricated := clone()
	for i := range fabricated {
		fabricated[i] = uint64(i) * 3 // mostly invalid
	}
	big := make([]uint64, f.p.MaxProofNonces+1)
	for i := range big {
		big[i] = uint64(i)
	}
	badParams := f.p
	badParams.Dim = 33
	other := func(bh string, lease, epoch uint64, prov string) Seed {
		return DeriveSeed([]byte(bh), lease, epoch, []byte(prov))
	}
	cases := []struct {
		name   string
		p      Params
		seed   Seed
		t      Target
		proof  Proof
		sample []byte
		want   error
	}{
		{"empty", f.p, f.seed, f.t, withNonces(f.proof, nil), f.sample, ErrEmptyProof},
		{"too large", f.p, f.seed, f.t, withNonces(f.proof, big), f.sample, ErrProofTooLarge},
		{"duplicate", f.p, f.seed, f.t, withNonces(f.proof, dup), f.sample, ErrDuplicateNonce},
		{"unsorted", f.p, f.seed, f.t, withNonces(f.proof, unsorted), f.sample, ErrUnsortedNonces},
		{"out of range", f.p, f.seed, f.t, withNonces(f.proof, oor), f.sample, ErrNonceOutOfRange},
		{"wrong version", f.p, f.seed, f.t, Proof{Version: f.p.Version ^ 3, Nonces: ns}, f.sample, ErrWrongVersion},
		{"params version", func() Params { p := f.p; p.Version = 9; return p }(), f.seed, f.t, f.proof, f.sample, ErrWrongVersion},
		{"insufficient", f.p, f.seed, Target{Difficulty: 16, Required: uint64(len(ns)) + 1}, f.proof, f.sample, ErrInsufficientWork},
		{"fabricated", f.p, f.seed, f.t, withNonces(f.proof, fabricated), f.sample, ErrInvalidNonce},
		{"harder target", f.p, f.seed, Target{Difficulty: 1 << 20, Required: 200}, f.proof, f.sample, ErrInvalidNonce},
		{"other lease", f.p, other("block-hash", 12, 3, "provider-addr"), f.t, f.proof, f.sample, ErrInvalidNonce},
		{"other epoch", f.p, other("block-hash", 11, 4, "provider-addr"), f.t, f.proof, f.sample, ErrInvalidNonce},
		{"other provider", f.p, other("block-hash", 11, 3, "provider-adds"), f.t, f.proof, f.sample, ErrInvalidNonce},
		{"other block hash", f.p, other("block-hasH", 11, 3, "provider-addr"), f.t, f.proof, f.sample, ErrInvalidNonce},
		{"other shape", func() Params { p := f.p; p.Layers = 3; return p }(), f.seed, f.t, f.proof, f.sample, ErrInvalidNonce},
		{"bad params", badParams, f.seed, f.t, f.proof, f.sample, ErrBadParams},
		{"zero difficulty", f.p, f.seed, Target{Required: 1}, f.proof, f.sample, ErrBadTarget},
		{"zero required", f.p, f.seed, Target{Difficulty: 16}, f.proof, f.sample, ErrBadTarget},
		{"no sample seed", f.p, f.seed, f.t, f.proof, nil, ErrBadSampleSeed},
		{"huge sample seed", f.p, f.seed, f.t, f.proof, make([]byte, MaxSampleSeedLen+1), ErrBadSampleSeed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(tc.p, tc.seed, tc.t, tc.proof, tc.sample)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// TestDecodeRejects covers the encoding's named rejections.
func TestDecodeRejects(t *testing.T) {
	p := DevParams()
	good, err := Proof{Version: 1, Nonces: []uint64{3, 9, 400}}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeProof(p, good); err != nil || len(got.Nonces) != 3 || got.Nonces[2] != 400 {
		t.Fatalf("round trip: %v %v", got, err)
	}
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"nil", nil, ErrMalformed},
		{"zero count", []byte{1, 0}, ErrEmptyProof},
		{"count over limit", []byte{1, 0x81, 0x40}, ErrProofTooLarge},       // 8193
		{"count over bytes", []byte{1, 5, 1}, ErrMalformed},                 // 5 nonces in 1 byte
		{"oversized", make([]byte, MaxEncodedSize(p)+1), ErrProofTooLarge},  // before parsing
		{"duplicate gap", []byte{1, 2, 7, 0}, ErrDuplicateNonce},            // gap 0
		{"overlong varint", []byte{1, 1, 0x87, 0x00}, ErrMalformed},         // 7 in two bytes
		{"trailing", append(append([]byte(nil), good...), 0), ErrMalformed}, // extra byte
		{"truncated", good[:len(good)-1], ErrMalformed},                     //
		{"gap overflow", append([]byte{1, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 0x02), ErrNonceOutOfRange},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeProof(p, tc.data); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("marshal unsorted", func(t *testing.T) {
		if _, err := (Proof{Version: 1, Nonces: []uint64{2, 1}}).MarshalBinary(); !errors.Is(err, ErrUnsortedNonces) {
			t.Fatal(err)
		}
		if _, err := (Proof{Version: 1, Nonces: []uint64{2, 2}}).MarshalBinary(); !errors.Is(err, ErrDuplicateNonce) {
			t.Fatal(err)
		}
	})
	t.Run("version", func(t *testing.T) {
		data, _ := Proof{Version: p.Version ^ 3, Nonces: []uint64{1}}.MarshalBinary() // 1 ↔ 2: the other version
		if err := VerifyBytes(p, Seed{}, Target{Difficulty: 16, Required: 1}, data, []byte{1}); !errors.Is(err, ErrWrongVersion) {
			t.Fatal(err)
		}
	})
}

// TestSampleIndices checks the sampler: distinct, ascending, in range,
// deterministic, and dependent on the sample seed.
func TestSampleIndices(t *testing.T) {
	for _, tc := range []struct{ n, k int }{{1, 40}, {40, 40}, {41, 40}, {1200, 40}, {65536, 256}} {
		a := Sample([]byte("s"), Seed{1}, tc.n, tc.k)
		if len(a) != min(tc.n, tc.k) {
			t.Fatalf("n %d k %d: %d picks", tc.n, tc.k, len(a))
		}
		for i, v := range a {
			if v < 0 || v >= tc.n || (i > 0 && v <= a[i-1]) {
				t.Fatalf("n %d k %d: bad picks %v", tc.n, tc.k, a)
			}
		}
		if b := Sample([]byte("s"), Seed{1}, tc.n, tc.k); !slicesEqual(a, b) {
			t.Fatal("not deterministic")
		}
		if tc.n > 2*tc.k && slicesEqual(a, Sample([]byte("t"), Seed{1}, tc.n, tc.k)) {
			t.Fatal("sample seed ignored")
		}
	}
}

func slicesEqual(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestProveStops checks the prover's stopping rules: a cancelled context
// returns promptly without error, the cap on nonces holds, and progress is
// reported.
func TestProveStops(t *testing.T) {
	p := DevParams()
	seed := testSeed(5)
	ctx, cancel := context.WithCancel(context.Background())
	var last uint64
	calls := 0
	proof, err := Prove(ctx, CPUBackend{}, p, seed, Target{Difficulty: 16}, ProveOptions{
		Chunk: 512,
		Progress: func(done uint64) {
			calls++
			last = done
			if done >= 4096 {
				cancel()
			}
		},
	})
	if err != nil || calls < 8 || last < 4096 || len(proof.Nonces) == 0 {
		t.Fatalf("err %v calls %d last %d nonces %d", err, calls, last, len(proof.Nonces))
	}
	capped := p
	capped.MaxProofNonces = 50
	capped.ExpectedValid = 50
	proof, err = Prove(context.Background(), CPUBackend{}, capped, seed, Target{Difficulty: 2}, ProveOptions{})
	if err != nil || len(proof.Nonces) != 50 {
		t.Fatalf("cap: err %v nonces %d", err, len(proof.Nonces))
	}
	if _, err := Prove(context.Background(), CPUBackend{}, p, seed, Target{}, ProveOptions{}); !errors.Is(err, ErrBadTarget) {
		t.Fatalf("zero difficulty: %v", err)
	}
}

// FuzzVerify feeds arbitrary bytes to the decoder and verifier: it must
// never panic, and anything it accepts must re-encode to the same bytes.
func FuzzVerify(f *testing.F) {
	fx := devProof(f)
	good, _ := fx.proof.MarshalBinary()
	f.Add(good, fx.sample, uint64(16), uint64(200))
	f.Add([]byte{1, 1, 0}, []byte{0}, uint64(16), uint64(1))
	f.Add([]byte{1, 2, 5, 0}, []byte{0}, uint64(1), uint64(0))
	f.Fuzz(func(t *testing.T, data, sample []byte, difficulty, required uint64) {
		tg := Target{Difficulty: difficulty, Required: required}
		err := VerifyBytes(fx.p, fx.seed, tg, data, sample)
		if err != nil {
			return
		}
		pr, derr := DecodeProof(fx.p, data)
		if derr != nil {
			t.Fatalf("verified but does not decode: %v", derr)
		}
		again, merr := pr.MarshalBinary()
		if merr != nil || string(again) != string(data) {
			t.Fatalf("accepted a non-canonical encoding")
		}
	})
}
