// Package gpuprover evaluates Proof-of-Compute work function v2 on an
// NVIDIA GPU: the CUDA kernel in kernels/poc_v2.cu, shipped as PTX that
// the driver compiles for the card it finds, loaded without cgo through
// package cuda. Results are bit-identical to poc.CPUBackend (integer
// arithmetic end to end); models the kernel does not cover (work function
// v1, a Dim without an entry point) go to the CPU backend, so callers never
// change.
package gpuprover

import (
	"context"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/highway-compute/highway/poc"
	"github.com/highway-compute/highway/provider-agent/cuda"
)

// PTX is kernels/poc_v2.cu compiled by `make ptx` (nvcc, compute_80).
//
//go:embed kernels/poc_v2.ptx
var PTX []byte

// ErrNoKernel: the embedded PTX holds no kernel (a build without nvcc that
// never ran `make ptx`), so there is nothing to run on the GPU.
var ErrNoKernel = errors.New("gpuprover: no GPU kernel in this build")

var errClosed = errors.New("gpuprover: backend closed")

// Variant is one compiled shape of the kernel. An mma.sync kernel
// (poc_v2.cu) has rows per warp (RM) and warps along the tile's rows (WM);
// a CTA takes 16·RM·WM nonces. A wgmma kernel (poc_v2_sm90a.cu, Hopper)
// has WGS warpgroups of 64 nonces each, Stages weight chunks in flight
// and MinBlocks CTAs an SM.
type Variant struct {
	Dim, RM, WM            int
	WGS, Stages, MinBlocks int
}

// Hopper reports a wgmma kernel.
func (v Variant) Hopper() bool { return v.WGS > 0 }

// Name is the entry point's name in the PTX.
func (v Variant) Name() string {
	if v.Hopper() {
		return v.hopperName()
	}
	return fmt.Sprintf("poc_v2_d%d_r%d_w%d", v.Dim, v.RM, v.WM)
}

// The shape's sizes, as the source computes them: TILE_M, THREADS, and
// the dynamic shared memory. mma.sync: two activation buffers of TILE_M
// rows and STAGES = 3 weight chunks of Dim rows, every row padded by PAD
// = 16; wgmma: Stages chunks and 1 KB to align them for the swizzle.
func (v Variant) tile() int {
	if v.Hopper() {
		return 64 * v.WGS
	}
	return 16 * v.RM * v.WM
}

func (v Variant) threads() int {
	if v.Hopper() {
		return 128 * v.WGS
	}
	return 32 * v.WM * v.Dim / 64
}

func (v Variant) shared() int {
	if v.Hopper() {
		return 1024 + v.Stages*hopperChunk
	}
	return 2*v.tile()*(v.Dim+16) + 3*v.Dim*(v.kc()+16)
}

// kc is the kernel's weight chunk (KC in the source): input rows of W per
// shared-memory window, and the inner size of the host's weight layout.
func (v Variant) kc() int { return min(v.Dim, 128) }

// Variants lists every entry point the PTX files have, the default for
// each Dim first: on Hopper the wgmma kernels, fastest first as measured
// on an H200 (2026-12-05: 1.51, 1.50, 1.49, 1.41 and 1.32e9 nonces/s),
// elsewhere the fastest measured mma.sync one (docs/poc.md §14).
var Variants = []Variant{
	{Dim: 256, WGS: 2, Stages: 3, MinBlocks: 2},
	{Dim: 256, WGS: 3, Stages: 3, MinBlocks: 1},
	{Dim: 256, WGS: 2, Stages: 2, MinBlocks: 2},
	{Dim: 256, WGS: 4, Stages: 3, MinBlocks: 1},
	{Dim: 256, WGS: 2, Stages: 3, MinBlocks: 1},
	{Dim: 64, RM: 2, WM: 4}, {Dim: 128, RM: 2, WM: 4}, {Dim: 256, RM: 2, WM: 4}, {Dim: 256, RM: 4, WM: 2},
}

// launchNonces bounds one launch, so a cancelled context is seen within a
// few milliseconds and the found-nonce buffer stays small.
const launchNonces = 1 << 22

// Backend is a poc.Backend on one GPU. It is safe for concurrent use;
// launches are serialised.
type Backend struct {
	Device cuda.Device
	// CPU evaluates what the kernel does not cover.
	CPU poc.CPUBackend

	mu   sync.Mutex
	ctx  *cuda.Context
	mod  *cuda.Module
	hmod *cuda.Module // the wgmma kernels, on Hopper
	// hopperErr says why the wgmma kernels are not in use on a Hopper
	// card that was given them, for Describe.
	hopperErr error
	kernels   map[int]*kernel // by Dim
	model     *poc.Model      // whose weights are on the device
	weights   *cuda.Buffer
	bufs      map[string]*cuda.Buffer
}

type kernel struct {
	v  Variant
	fn *cuda.Function
}

// New opens dev (one of d.Devices()) and loads the kernels. prefer
// overrides the default variant per Dim (benchmarks); nil keeps it.
func New(d *cuda.Driver, dev cuda.Device, ks Kernels, prefer map[int]Variant) (*Backend, error) {
	if !hasEntry(ks.PTX) {
		return nil, ErrNoKernel
	}
	if dev.Major < 8 {
		return nil, fmt.Errorf("gpuprover: %s is sm_%d%d; the kernel needs int8 mma.sync (sm_80 or newer)", dev.Name, dev.Major, dev.Minor)
	}
	c, err := d.Open(dev.Ordinal)
	if err != nil {
		return nil, err
	}
	b := &Backend{Device: dev, ctx: c, kernels: map[int]*kernel{}, bufs: map[string]*cuda.Buffer{}}
	if b.mod, err = c.LoadPTX(ks.PTX); err != nil {
		_ = c.Close()
		return nil, err
	}
	if onHopper(dev.Major, dev.Minor) && hasEntry(ks.Hopper) {
		// A Hopper module the driver refuses (an old driver, a bad
		// build) costs the wgmma kernels only: the mma.sync ones prove.
		if b.hmod, err = c.LoadPTX(ks.Hopper); err != nil {
			b.hopperErr, b.hmod = err, nil
		}
	}
	for _, v := range Variants {
		if p, ok := prefer[v.Dim]; ok && p != v {
			continue
		}
		if b.kernels[v.Dim] != nil || v.Hopper() && b.hmod == nil {
			continue
		}
		mod := b.mod
		if v.Hopper() {
			mod = b.hmod
		}
		fn, err := mod.Function(v.Name())
		if err == nil {
			err = fn.SetMaxDynamicShared(v.shared())
		}
		if err != nil && v.Hopper() {
			b.hopperErr = fmt.Errorf("%s: %w", v.Name(), err)
			continue
		}
		if err != nil {
			b.Close()
			return nil, err
		}
		b.kernels[v.Dim] = &kernel{v: v, fn: fn}
	}
	return b, nil
}

// Close frees the device memory and the context; later calls do nothing.
func (b *Backend) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ctx == nil {
		return
	}
	for _, x := range b.bufs {
		_ = x.Free()
	}
	if b.weights != nil {
		_ = b.weights.Free()
	}
	for _, m := range []*cuda.Module{b.mod, b.hmod} {
		if m != nil {
			_ = m.Unload()
		}
	}
	_ = b.ctx.Close()
	b.ctx, b.mod, b.hmod, b.weights, b.model, b.bufs = nil, nil, nil, nil, nil, nil
}

// OnGPUs implements prover.GPUBackend.
func (b *Backend) OnGPUs() bool { return true }

// Covers reports whether the kernel evaluates m (else the CPU does).
func (b *Backend) Covers(m *poc.Model) bool {
	in := m.AccelInputs()
	return in.Version == poc.Version2 && b.kernels[int(in.Dim)] != nil
}

// Describe names the card and the kernels, for the agent's log.
func (b *Backend) Describe() string {
	dims := make([]int, 0, len(b.kernels))
	for d := range b.kernels {
		dims = append(dims, d)
	}
	slices.Sort(dims)
	names := make([]string, len(dims))
	for i, d := range dims {
		names[i] = b.kernels[d].v.Name()
	}
	why := ""
	if b.hopperErr != nil {
		// The chain's rates assume wgmma on Hopper (docs/poc.md §6): the
		// provider must learn here, not from missed epochs, that this card
		// will fall short of its class.
		why = fmt.Sprintf(" (wgmma kernels not loaded: %v; on mma.sync this card proves about 0.7 of the rate the chain's targets assume for its class, so its epochs will miss; the wgmma PTX needs a driver of CUDA 12.0 or newer)", b.hopperErr)
	}
	return fmt.Sprintf("gpu: %s (sm_%d%d, %d SMs), work function v%d kernels for Dim %v (%s)%s; other models prove on the CPU",
		b.Device.Name, b.Device.Major, b.Device.Minor, b.Device.SMs, poc.Version2, dims, strings.Join(names, ", "), why)
}

// Evaluate implements poc.Backend.
func (b *Backend) Evaluate(ctx context.Context, m *poc.Model, nonces []uint64, out [][32]byte) error {
	if len(out) < len(nonces) {
		return poc.ErrMalformed
	}
	if !b.Covers(m) {
		return b.CPU.Evaluate(ctx, m, nonces, out)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	k, err := b.prepare(m)
	if err != nil {
		return err
	}
	for lo := 0; lo < len(nonces); lo += launchNonces {
		if err := ctx.Err(); err != nil {
			return err
		}
		part := nonces[lo:min(lo+launchNonces, len(nonces))]
		raw := make([]byte, 8*len(part))
		for i, n := range part {
			binary.LittleEndian.PutUint64(raw[8*i:], n)
		}
		nb, err := b.buffer("nonces", len(raw))
		if err != nil {
			return err
		}
		db, err := b.buffer("digests", 32*len(part))
		if err != nil {
			return err
		}
		if err := nb.Write(raw); err != nil {
			return err
		}
		if _, err := b.launch(k, m, 0, uint32(len(part)), nb.Addr(), 0, db.Addr(), 0); err != nil {
			return err
		}
		dig := make([]byte, 32*len(part))
		if err := db.Read(dig); err != nil {
			return err
		}
		for i := range part {
			copy(out[lo+i][:], dig[32*i:])
		}
	}
	return nil
}

// Scan implements poc.Backend.
func (b *Backend) Scan(ctx context.Context, m *poc.Model, difficulty, start, count uint64, dst []uint64) ([]uint64, error) {
	if difficulty == 0 || start+count < start {
		return dst, poc.ErrBadTarget
	}
	if !b.Covers(m) {
		return b.CPU.Scan(ctx, m, difficulty, start, count, dst)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	k, err := b.prepare(m)
	if err != nil {
		return dst, err
	}
	th := poc.Threshold(difficulty)
	from := len(dst)
	for done := uint64(0); done < count; {
		if err := ctx.Err(); err != nil {
			slices.Sort(dst[from:])
			return dst, err
		}
		n := min(count-done, launchNonces)
		found, err := b.launch(k, m, start+done, uint32(n), 0, th, 0, int(n/difficulty)*2+64)
		if err != nil {
			return dst, err
		}
		dst = append(dst, found...)
		done += n
	}
	// The kernel appends in completion order; sorting makes the result
	// the CPU backend's.
	slices.Sort(dst[from:])
	return dst, nil
}

// prepare uploads m's weights in the kernel's layout, once per model.
func (b *Backend) prepare(m *poc.Model) (*kernel, error) {
	if b.ctx == nil {
		return nil, errClosed
	}
	in := m.AccelInputs()
	k := b.kernels[int(in.Dim)]
	if b.model == m {
		return k, nil
	}
	var lay []byte
	if k.v.Hopper() {
		lay = hopperLayout(in.Weights, int(in.Layers))
	} else {
		lay = mmaLayout(in, k.v.kc())
	}
	if b.weights != nil {
		_ = b.weights.Free()
		b.weights, b.model = nil, nil
	}
	buf, err := b.ctx.Alloc(len(lay))
	if err != nil {
		return nil, err
	}
	if err := buf.Write(lay); err != nil {
		_ = buf.Free()
		return nil, err
	}
	b.weights, b.model = buf, m
	return k, nil
}

// buffer returns a device buffer of at least n bytes under name, grown by
// reallocation.
func (b *Backend) buffer(name string, n int) (*cuda.Buffer, error) {
	if x := b.bufs[name]; x != nil && x.Size() >= n {
		return x, nil
	} else if x != nil {
		_ = x.Free()
		delete(b.bufs, name)
	}
	x, err := b.ctx.Alloc(max(n, 64))
	if err != nil {
		return nil, err
	}
	b.bufs[name] = x
	return x, nil
}

// mmaLayout lays the weights out for the mma.sync kernel:
// W[l][kc·c+i][n] → ((l·D/kc + c)·D + n)·kc + i: each chunk of kc input
// rows is one contiguous copy, column-major so a B fragment (4
// consecutive inputs of one column) is a single 32-bit load.
func mmaLayout(in poc.AccelInputs, kc int) []byte {
	d, L := int(in.Dim), int(in.Layers)
	lay := make([]byte, L*d*d)
	for l := 0; l < L; l++ {
		w := in.Weights[l*d*d : (l+1)*d*d]
		for i := 0; i < d; i++ {
			c, r := i/kc, i%kc
			for n := 0; n < d; n++ {
				lay[((l*(d/kc)+c)*d+n)*kc+r] = byte(w[i*d+n])
			}
		}
	}
	return lay
}
