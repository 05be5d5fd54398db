package gpuprover

import (
	"bytes"
	_ "embed"
	"fmt"
)

// HopperPTX is kernels/poc_v2_sm90a.cu compiled by `make ptx` (nvcc,
// compute_90a): the work function on wgmma, which only sm_90 cards (H100,
// H200) run. Elsewhere PTX's mma.sync kernels prove.
//
//go:embed kernels/poc_v2_sm90a.ptx
var HopperPTX []byte

// Kernels is what a backend loads: the generic module (sm_80 and newer)
// and the Hopper one, used on sm_90 when it holds a kernel.
type Kernels struct {
	PTX, Hopper []byte
}

// Embedded is this build's kernels.
func Embedded() Kernels { return Kernels{PTX: PTX, Hopper: HopperPTX} }

// hasEntry: the PTX holds a kernel (a placeholder, written where nvcc was
// not at hand, holds none).
func hasEntry(ptx []byte) bool { return bytes.Contains(ptx, []byte(".entry")) }

// onHopper: the card runs sm_90a code (compute capability 9.0 exactly;
// the "a" features do not carry to later architectures).
func onHopper(major, minor int) bool { return major == 9 && minor == 0 }

// hopperName names a wgmma entry point: warpgroups a CTA (G), weight
// chunks in flight (S), CTAs an SM (B).
func (v Variant) hopperName() string {
	return fmt.Sprintf("poc_v2h_d%d_g%d_s%d_b%d", v.Dim, v.WGS, v.Stages, v.MinBlocks)
}

// hopperChunk is one shared-memory weight chunk of the wgmma kernel: 128
// output columns × Dim inputs.
const hopperChunk = 128 * 256

// hopperFeature maps K position P (0–255) of a layer to the input feature
// the wgmma kernel's thread holding P has there (kernels/poc_v2_sm90a.cu
// explains why): P = 32s + 16h + 4t + b for K step s, half h, quad
// thread t and byte b.
func hopperFeature(layer, p int) int {
	s, h, t, b := p/32, p/16%2, p/4%4, p%4
	if layer == 0 {
		return 64*t + 8*s + 4*h + b
	}
	return 32*s + 16*h + 8*(b/2) + 2*t + b%2
}

// hopperLayout lays Dim-256 weights out for the wgmma kernel: chunk q =
// (layer l, column half c) holds, for K half k and column n of the half,
// 128 bytes at q·32768 + k·16384 + n·128, byte j being
// W_l[hopperFeature(l, 128k + j)][128c + n].
func hopperLayout(w []int8, layers int) []byte {
	const d = 256
	lay := make([]byte, layers*d*d)
	for l := 0; l < layers; l++ {
		wl := w[l*d*d : (l+1)*d*d]
		for p := 0; p < d; p++ {
			row := wl[hopperFeature(l, p)*d:][:d]
			k, j := p/128, p%128
			for n := 0; n < d; n++ {
				q := 2*l + n/128
				lay[q*hopperChunk+k*16384+(n%128)*128+j] = byte(row[n])
			}
		}
	}
	return lay
}
