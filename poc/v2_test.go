package poc

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"
)

// specV2 is work function v2 written from docs/poc.md section 4 alone,
// sharing nothing with Model but the KAT-checked Philox: Philox weights
// and inputs under keys from the v2 tags, the plain triple loop, the 16-byte
// fold, one 48-byte digest message.
func specV2(p Params, seed Seed, nonce uint64) [32]byte {
	d, L := int(p.Dim), int(p.Layers)
	wk := sha256.Sum256(append([]byte("highway/poc/v2/weights"), seed[:]...))
	wkey := [2]uint32{binary.LittleEndian.Uint32(wk[0:]), binary.LittleEndian.Uint32(wk[4:])}
	w := make([]int8, L*d*d)
	for l := 0; l < L; l++ {
		for b := 0; b < d*d/16; b++ {
			out := philox4x32([4]uint32{uint32(b), uint32(l), 0, 0x68777757}, wkey)
			var bytes [16]byte
			for k := 0; k < 4; k++ {
				binary.LittleEndian.PutUint32(bytes[4*k:], out[k])
			}
			for t := 0; t < 16; t++ {
				w[l*d*d+16*b+t] = int8(bytes[t])
			}
		}
	}
	ik := sha256.Sum256(append([]byte("highway/poc/v2/input"), seed[:]...))
	key := [2]uint32{binary.LittleEndian.Uint32(ik[0:]), binary.LittleEndian.Uint32(ik[4:])}
	x := make([]int8, d)
	for b := 0; b < d/16; b++ {
		out := philox4x32([4]uint32{uint32(nonce), uint32(nonce >> 32), uint32(b), 0x68777632}, key)
		var bytes [16]byte
		for k := 0; k < 4; k++ {
			binary.LittleEndian.PutUint32(bytes[4*k:], out[k])
		}
		for t := 0; t < 16; t++ {
			x[16*b+t] = int8(bytes[t])
		}
	}
	for l := 0; l < L; l++ {
		y := make([]int8, d)
		for j := 0; j < d; j++ {
			var acc int32
			for i := 0; i < d; i++ {
				acc += int32(x[i]) * int32(w[l*d*d+i*d+j])
			}
			q := acc >> 8
			y[j] = int8(q ^ q>>8)
		}
		x = y
	}
	ok := sha256.Sum256(append([]byte("highway/poc/v2/output"), seed[:]...))
	var fold [16]byte
	for i, v := range x {
		fold[i%16] ^= byte(v)
	}
	msg := append(append(append([]byte{}, ok[:24]...), binary.BigEndian.AppendUint64(nil, nonce)...), fold[:]...)
	if len(msg) != 48 {
		panic("v2 digest message must be 48 bytes")
	}
	return sha256.Sum256(msg)
}

// TestV2MatchesSpec: the model and the fast kernel compute v2 as the
// specification reads, over shapes and nonces.
func TestV2MatchesSpec(t *testing.T) {
	for _, p := range []Params{v2(DevParams()), v2(smallParams(96, 3)), v2(DefaultParams())} {
		m, err := NewModel(p, testSeed(3))
		if err != nil {
			t.Fatal(err)
		}
		nonces := []uint64{0, 1, 1 << 32, 1<<64 - 1, 777}
		out := make([][32]byte, len(nonces))
		if err := (CPUBackend{}).Evaluate(t.Context(), m, nonces, out); err != nil {
			t.Fatal(err)
		}
		for i, n := range nonces {
			want := specV2(p, testSeed(3), n)
			if got := m.Compute(n); got != want {
				t.Fatalf("dim %d: Compute(%d) = %x, spec %x", p.Dim, n, got, want)
			}
			if out[i] != want {
				t.Fatalf("dim %d: kernel(%d) = %x, spec %x", p.Dim, n, out[i], want)
			}
		}
	}
}

// TestV1AndV2Differ: the same seed and nonce give unrelated digests, and a
// v1 proof is refused under v2 params.
func TestV1AndV2Differ(t *testing.T) {
	s := testSeed(4)
	a, _ := Compute(v1(DevParams()), s, 5)
	b, _ := Compute(v2(DevParams()), s, 5)
	if a == b {
		t.Fatal("v1 and v2 agree")
	}
}

// TestV2InputsStayUniform: Philox inputs and the activations after every
// layer spread over the whole int8 range, as v1's do (no collapse a
// shortcut could use).
func TestV2InputsStayUniform(t *testing.T) {
	p := v2(DefaultParams())
	m, err := NewModel(p, testSeed(5))
	if err != nil {
		t.Fatal(err)
	}
	d := int(p.Dim)
	const nonces = 2000
	var counts [257][256]int // [layer][byte value], layer 0 the input
	x := make([]int8, d)
	y := make([]int8, d)
	for n := uint64(0); n < nonces; n++ {
		m.input(n, x)
		for _, v := range x {
			counts[0][uint8(v)]++
		}
		for l := 0; l < m.layers; l++ {
			m.layerRef(l, x, y)
			x, y = y, x
			for _, v := range x {
				counts[l+1][uint8(v)]++
			}
		}
	}
	exp := float64(nonces*d) / 256 // test-only arithmetic
	for l := 0; l <= m.layers; l++ {
		for v, c := range counts[l] {
			if r := float64(c) / exp; r < 0.5 || r > 1.6 {
				t.Fatalf("layer %d: byte %d at %.2f× uniform", l, v, r)
			}
		}
	}
}
