package gpuprover

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"
	"testing"

	"github.com/highway-compute/highway/poc"
)

// TestHopperFeaturePermutes: each layer's K order is a permutation of the
// 256 features, so the wgmma kernel's products are the same sums.
func TestHopperFeaturePermutes(t *testing.T) {
	for l := 0; l < 2; l++ {
		seen := make([]bool, 256)
		for p := 0; p < 256; p++ {
			f := hopperFeature(l, p)
			if f < 0 || f >= 256 || seen[f] {
				t.Fatalf("layer %d: position %d maps to %d twice or out of range", l, p, f)
			}
			seen[f] = true
		}
	}
}

// TestHopperKernelDataFlow runs the wgmma kernel's register data flow
// (kernels/poc_v2_sm90a.cu) on the CPU over hopperLayout's weights, one
// quad of threads per row, and checks its digests against
// poc.Model.Compute. It pins the permutations, the requantisation's
// packing and the fold's shuffles without a GPU; the GPU tests pin the
// hardware's fragment layouts and the descriptors.
func TestHopperKernelDataFlow(t *testing.T) {
	p := v2(poc.DefaultParams())
	m, err := poc.NewModel(p, poc.Seed{0x90, 0xa})
	if err != nil {
		t.Fatal(err)
	}
	in := m.AccelInputs()
	if in.Dim != 256 {
		t.Fatalf("production Dim %d: the wgmma kernel is Dim 256", in.Dim)
	}
	lay := hopperLayout(in.Weights, int(in.Layers))
	for _, nonce := range []uint64{0, 1, 1<<32 - 1, 1 << 32, 0xdead_beef_cafe, 1<<64 - 1} {
		got := emulateHopper(in, lay, nonce)
		if want := m.Compute(nonce); got != want {
			t.Fatalf("nonce %#x: kernel data flow %x, model %x", nonce, got[:8], want[:8])
		}
	}
}

// emulateHopper is one row of the kernel: reg[t][s][h] is quad thread t's
// A register for K step s, half h (a0/a2 of the row).
func emulateHopper(in poc.AccelInputs, lay []byte, nonce uint64) [32]byte {
	var reg [4][8][2]uint32
	for t := 0; t < 4; t++ {
		for bb := 0; bb < 4; bb++ {
			v := testPhilox([4]uint32{uint32(nonce), uint32(nonce >> 32), uint32(4*t + bb), 0x68777632}, in.PhiloxKey)
			reg[t][2*bb][0], reg[t][2*bb][1] = v[0], v[1]
			reg[t][2*bb+1][0], reg[t][2*bb+1][1] = v[2], v[3]
		}
	}
	for l := 0; l < int(in.Layers); l++ {
		// The products: column n sums A[P]·B[n][P] over the K positions.
		var y [256]int32
		for n := 0; n < 256; n++ {
			chunk := lay[(2*l+n/128)*hopperChunk:]
			for pos := 0; pos < 256; pos++ {
				s, h, t, b := pos/32, pos/16%2, pos/4%4, pos%4
				a := int8(reg[t][s][h] >> (8 * b))
				w := int8(chunk[pos/128*16384+n%128*128+pos%128])
				y[n] += int32(a) * int32(w)
			}
		}
		// The requantisation: thread t's accumulator register i (rows g:
		// i%4 < 2) is column 128nh + 8(i/4) + 2t + i%2.
		var nx [4][8][2]uint32
		for t := 0; t < 4; t++ {
			acc := func(nh, i int) int32 { return y[128*nh+8*(i/4)+2*t+i%2] }
			for nh := 0; nh < 2; nh++ {
				for sl := 0; sl < 4; sl++ {
					i := 16 * sl
					nx[t][4*nh+sl][0] = pack4(acc(nh, i), acc(nh, i+1), acc(nh, i+4), acc(nh, i+5))
					nx[t][4*nh+sl][1] = pack4(acc(nh, i+8), acc(nh, i+9), acc(nh, i+12), acc(nh, i+13))
				}
			}
		}
		reg = nx
	}
	var w [4]uint32
	for t := 0; t < 4; t++ {
		for s := 0; s < 8; s++ {
			w[t] ^= reg[t][s][0] ^ reg[t][s][1]
		}
	}
	var msg [48]byte
	copy(msg[:], in.OutputKey[:])
	binary.BigEndian.PutUint64(msg[24:], nonce)
	for i, f := range []uint32{bytePerm(w[0], w[1], 0x5410), bytePerm(w[2], w[3], 0x5410), bytePerm(w[0], w[1], 0x7632), bytePerm(w[2], w[3], 0x7632)} {
		binary.LittleEndian.PutUint32(msg[32+4*i:], f)
	}
	return sha256.Sum256(msg[:])
}

// pack4 and bytePerm are the kernel's pack4 and CUDA's __byte_perm.
func pack4(y0, y1, y2, y3 int32) uint32 {
	p := bytePerm(uint32(y0), uint32(y1), 0x6251)
	q := bytePerm(uint32(y2), uint32(y3), 0x6251)
	return bytePerm(p, q, 0x5410) ^ bytePerm(p, q, 0x7632)
}

func bytePerm(x, y, s uint32) uint32 {
	v := uint64(y)<<32 | uint64(x)
	var r uint32
	for i := 0; i < 4; i++ {
		r |= uint32(v>>(8*(s>>(4*i)&7))&0xff) << (8 * i)
	}
	return r
}

// testPhilox is Philox4x32-10, written out again (poc's is unexported) so
// this test checks the kernel's use of the generator, not poc's.
func testPhilox(c [4]uint32, k [2]uint32) [4]uint32 {
	for r := 0; r < 10; r++ {
		if r > 0 {
			k[0] += 0x9E3779B9
			k[1] += 0xBB67AE85
		}
		hi0, lo0 := bits.Mul32(0xD2511F53, c[0])
		hi1, lo1 := bits.Mul32(0xCD9E8D57, c[2])
		c = [4]uint32{hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0}
	}
	return c
}

// TestEmbeddedEntryPoints: every variant's kernel is in the module it is
// loaded from, taking the Args block encodeArgs writes, so a PTX rebuilt
// from changed sources cannot ship without an entry point New looks up.
// Without a GPU this is the check that the committed PTX and Variants agree.
func TestEmbeddedEntryPoints(t *testing.T) {
	ks := Embedded()
	for _, v := range Variants {
		ptx := ks.PTX
		if v.Hopper() {
			ptx = ks.Hopper
		}
		entry := fmt.Sprintf(".visible .entry %s(\n\t.param .align 8 .b8 %s_param_0[%d]\n)", v.Name(), v.Name(), argsSize)
		if !bytes.Contains(ptx, []byte(entry)) {
			t.Errorf("%s: no entry point taking %d bytes of Args in its PTX", v.Name(), argsSize)
		}
	}
}
