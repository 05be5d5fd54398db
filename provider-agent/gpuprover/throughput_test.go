package gpuprover

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/highway-compute/highway/poc"
	"github.com/highway-compute/highway/provider-agent/cuda"
)

// datasheetINT8 is the dense INT8 tensor rate (ops/s, 2 per MAC) of the
// cards the issue measures against: H100 and H200 SXM share 1,979 TOPS.
var datasheetINT8 = map[string]float64{"H100": 1979e12, "H200": 1979e12}

// TestGPUThroughput measures every production-Dim variant scanning the
// production v2 network and prints BENCH lines: nonces per second, the
// fraction of the card's dense INT8 peak, and mma.sync's own ceiling.
// HIGHWAY_GPU_SECONDS (default 2) sets each measurement's length;
// HIGHWAY_GPU_VARIANTS, a part of the names, picks which are measured.
func TestGPUThroughput(t *testing.T) {
	secs := 2.0
	if s := os.Getenv("HIGHWAY_GPU_SECONDS"); s != "" {
		_, _ = fmt.Sscan(s, &secs)
	}
	p := v2(poc.DefaultParams())
	m, err := poc.NewModel(p, poc.Seed{7})
	if err != nil {
		t.Fatal(err)
	}
	macs := float64(p.Layers) * float64(p.Dim) * float64(p.Dim)
	best, bestName := 0.0, ""
	var card string
	only := os.Getenv("HIGHWAY_GPU_VARIANTS") // a substring of the names to measure
	for _, v := range Variants {
		if v.Dim != int(p.Dim) || !strings.Contains(v.Name(), only) {
			continue
		}
		b := open(t, map[int]Variant{v.Dim: v})
		card = b.Device.Name
		if k := b.kernels[v.Dim]; k == nil || k.v != v {
			t.Logf("%s: not on this card", v.Name())
			b.Close()
			continue
		}
		ctx := context.Background()
		// Warm up (JIT, clocks), then size a run to the requested length.
		if _, err := b.Scan(ctx, m, 1<<30, 0, 1<<22, nil); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		if _, err := b.Scan(ctx, m, 1<<30, 0, 1<<24, nil); err != nil {
			t.Fatal(err)
		}
		rate := float64(1<<24) / time.Since(t0).Seconds()
		n := uint64(rate*secs) / launchNonces * launchNonces
		t0 = time.Now()
		found, err := b.Scan(ctx, m, 1<<20, 1<<32, n, nil)
		if err != nil {
			t.Fatal(err)
		}
		rate = float64(n) / time.Since(t0).Seconds()
		fmt.Printf("BENCH poc_gpu_nonces_per_s_%s %.0f nonces/s\n", v.Name(), rate)
		t.Logf("%s: %d nonces, %d valid at difficulty 2^20 (expected %.0f)", v.Name(), n, len(found), float64(n)/(1<<20))
		if rate > best {
			best, bestName = rate, v.Name()
		}
		b.Close()
	}
	fmt.Printf("BENCH poc_gpu_nonces_per_s %.0f nonces/s\n", best)
	fmt.Printf("BENCH poc_gpu_tensor_ops_per_s %.4g ops/s\n", best*2*macs)
	t.Logf("best variant %s on %s", bestName, card)
	for k, peak := range datasheetINT8 {
		if strings.Contains(card, k) {
			fmt.Printf("BENCH poc_gpu_int8_peak_fraction %.3f of %s dense INT8 (%.0f TOPS)\n", best*2*macs/peak, k, peak/1e12)
		}
	}
	if pk := mmaPeak(t); pk > 0 {
		fmt.Printf("BENCH gpu_mma_sync_int8_ops_per_s %.4g ops/s\n", pk)
		fmt.Printf("BENCH poc_gpu_mma_sync_fraction %.3f\n", best*2*macs/pk)
	}
}

// mmaPeak runs the PTX's mma_peak kernel: register-only int8 mma.sync on
// every SM, the most the prover's instruction could give.
func mmaPeak(t *testing.T) float64 {
	d, devs, ks := gpu0(t)
	c, err := d.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	mod, err := c.LoadPTX(ks.PTX)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = mod.Unload() }()
	fn, err := mod.Function("mma_peak")
	if err != nil {
		t.Logf("no mma_peak: %v", err)
		return 0
	}
	blocks := devs[0].SMs * 8
	out, err := c.Alloc(4 * 256 * blocks)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = out.Free() }()
	run := func(iters uint32) time.Duration {
		t0 := time.Now()
		if err := fn.Launch([3]uint32{uint32(blocks), 1, 1}, [3]uint32{256, 1, 1}, 0, cuda.Ptr(out), cuda.U32(iters)); err != nil {
			t.Fatal(err)
		}
		return time.Since(t0)
	}
	run(1 << 12)
	const iters = 1 << 17
	el := run(iters)
	var sum [4]byte
	if err := out.Read(sum[:]); err != nil {
		t.Fatal(err)
	}
	_ = binary.LittleEndian.Uint32(sum[:])
	// 8 warps a block, 8 MMAs an iteration, 16·8·32 MACs = 8192 ops each.
	return float64(blocks) * 8 * iters * 8 * 8192 / el.Seconds()
}
