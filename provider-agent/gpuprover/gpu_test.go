package gpuprover

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/highway-compute/highway/poc"
	"github.com/highway-compute/highway/provider-agent/cuda"
)

// realGPU is set on a machine with an NVIDIA GPU (sm_80+) and its driver,
// where these tests must run the kernel rather than skip.
var realGPU = os.Getenv("HIGHWAY_REAL_GPU") == "1"

// gpu0 loads the driver and lists its GPUs, and returns the kernels to
// run: HIGHWAY_POC_PTX and HIGHWAY_POC_PTX_SM90A when set (freshly built
// ones), else the embedded ones. It skips without a GPU.
func gpu0(t testing.TB) (*cuda.Driver, []cuda.Device, Kernels) {
	t.Helper()
	if !realGPU {
		t.Skip("HIGHWAY_REAL_GPU=1 runs the kernel on a real GPU; without one the agent proves on the CPU (TestNoKernel)")
	}
	d, err := cuda.Load()
	if err != nil {
		t.Fatal(err)
	}
	devs, err := d.Devices()
	if err != nil || len(devs) == 0 {
		t.Fatalf("the driver lists no GPU (%v)", err)
	}
	ks := Embedded()
	for _, o := range []struct {
		env string
		dst *[]byte
	}{{"HIGHWAY_POC_PTX", &ks.PTX}, {"HIGHWAY_POC_PTX_SM90A", &ks.Hopper}} {
		if f := os.Getenv(o.env); f != "" {
			if *o.dst, err = os.ReadFile(f); err != nil {
				t.Fatal(err)
			}
		}
	}
	return d, devs, ks
}

// open returns the backend on GPU 0 (see gpu0).
func open(t testing.TB, prefer map[int]Variant) *Backend {
	t.Helper()
	d, devs, ptx := gpu0(t)
	b, err := New(d, devs[0], ptx, prefer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func v2(p poc.Params) poc.Params {
	p.Version = poc.Version2
	return p
}

// TestNoKernel: a build whose PTX holds no kernel refuses to start, so the
// agent falls back to the CPU with this reason.
func TestNoKernel(t *testing.T) {
	_, err := New(nil, cuda.Device{}, Kernels{PTX: []byte("// nothing\n")}, nil)
	if !errors.Is(err, ErrNoKernel) {
		t.Fatalf("New with empty PTX: %v, want ErrNoKernel", err)
	}
}

// TestArgsLayout pins the C layout of Args that encodeArgs writes.
func TestArgsLayout(t *testing.T) {
	in := poc.AccelInputs{Layers: 4, PhiloxKey: [2]uint32{1, 2}}
	in.OutputKey[0], in.OutputKey[23] = 0xAB, 0xCD
	a := encodeArgs(0x1111, in, 7, 9, 0x2222, 0x3333, 0x4444, 0x5555, 0x6666, 11)
	if len(a) != argsSize || a[0] != 0x11 || a[8] != 4 || a[12] != 1 || a[16] != 2 ||
		a[23] != 0xAB || a[40] != 0xCD || a[48] != 7 || a[56] != 9 || a[64] != 0x22 ||
		a[72] != 0x33 || a[80] != 0x44 || a[88] != 0x55 || a[96] != 0x66 || a[104] != 11 {
		t.Fatalf("layout: % x", a)
	}
}

// golden reads poc's v2 golden vectors: params name → (seed, nonce, digest).
func golden(t *testing.T) map[string][][3]string {
	f, err := os.Open("../../poc/testdata/golden.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	out := map[string][][3]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		x := strings.Fields(sc.Text())
		if len(x) == 4 && strings.HasSuffix(x[0], "-v2") {
			out[x[0]] = append(out[x[0]], [3]string{x[1], x[2], x[3]})
		}
	}
	return out
}

// TestGPUGolden: the kernel reproduces every v2 golden vector.
func TestGPUGolden(t *testing.T) {
	b := open(t, nil)
	odd := v2(poc.DefaultParams())
	odd.Dim, odd.Layers = 96, 3 // no kernel for Dim 96: the CPU takes it
	params := map[string]poc.Params{"dev-v2": v2(poc.DevParams()), "default-v2": v2(poc.DefaultParams()), "d96l3-v2": odd}
	n := 0
	for name, rows := range golden(t) {
		p, ok := params[name]
		if !ok {
			t.Fatalf("golden params %q unknown here", name)
		}
		for _, r := range rows {
			var seed poc.Seed
			if _, err := hex.Decode(seed[:], []byte(r[0])); err != nil {
				t.Fatal(err)
			}
			nonce, _ := strconv.ParseUint(r[1], 10, 64)
			m, err := poc.NewModel(p, seed)
			if err != nil {
				t.Fatal(err)
			}
			out := make([][32]byte, 1)
			if err := b.Evaluate(context.Background(), m, []uint64{nonce}, out); err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(out[0][:]); got != r[2] {
				t.Errorf("%s seed %s nonce %d: gpu %s, golden %s", name, r[0][:8], nonce, got, r[2])
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal("no v2 golden vectors")
	}
	t.Logf("%d golden vectors reproduced on %s", n, b.Device.Name)
}

// TestGPUAgreesWithCPU evaluates HIGHWAY_GPU_AGREE nonces (default 10^6)
// on the GPU and with the CPU backend, per parameter set, and compares
// every digest; then scans a range on both and compares the valid nonces.
func TestGPUAgreesWithCPU(t *testing.T) {
	b := open(t, nil)
	n := 1_000_000
	if s := os.Getenv("HIGHWAY_GPU_AGREE"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	ctx := context.Background()
	for _, p := range []poc.Params{v2(poc.DevParams()), v2(poc.DefaultParams())} {
		m, err := poc.NewModel(p, poc.Seed{0x5e, 0xed, byte(p.Dim)})
		if err != nil {
			t.Fatal(err)
		}
		if !b.Covers(m) {
			t.Fatalf("dim %d not covered", p.Dim)
		}
		nonces := make([]uint64, n)
		for i := range nonces {
			nonces[i] = 1<<47 - uint64(n)/2 + uint64(i) // across a 2^32 boundary of the counter
		}
		nonces[0], nonces[1] = 0, 1<<48-1
		gpu := make([][32]byte, n)
		cpu := make([][32]byte, n)
		t0 := time.Now()
		if err := b.Evaluate(ctx, m, nonces, gpu); err != nil {
			t.Fatal(err)
		}
		tg := time.Since(t0)
		t0 = time.Now()
		if err := b.CPU.Evaluate(ctx, m, nonces, cpu); err != nil {
			t.Fatal(err)
		}
		tc := time.Since(t0)
		agree := 0
		for i := range gpu {
			if gpu[i] == cpu[i] {
				agree++
			} else if agree+20 > i {
				t.Errorf("dim %d nonce %d: gpu %x cpu %x", p.Dim, nonces[i], gpu[i][:8], cpu[i][:8])
			}
		}
		fmt.Printf("BENCH poc_gpu_cpu_agreement_dim%d %d of %d\n", p.Dim, agree, n)
		t.Logf("dim %d: %d/%d digests agree (gpu %v, cpu %v)", p.Dim, agree, n, tg, tc)
		if agree != n {
			t.Fatalf("dim %d: %d of %d digests differ", p.Dim, n-agree, n)
		}
		const span, diff = 1 << 20, 512
		gs, err := b.Scan(ctx, m, diff, 1<<40, span, nil)
		if err != nil {
			t.Fatal(err)
		}
		cs, err := b.CPU.Scan(ctx, m, diff, 1<<40, span, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(gs, cs) {
			t.Fatalf("dim %d scan: gpu found %d, cpu %d", p.Dim, len(gs), len(cs))
		}
		t.Logf("dim %d: scan of %d nonces found the same %d", p.Dim, span, len(gs))
	}
}

// TestGPUVariantsAgree runs every compiled shape of the kernel over 2^16
// nonces against the CPU, so a faster shape can become the default
// without a second full agreement run.
func TestGPUVariantsAgree(t *testing.T) {
	ctx := context.Background()
	const n = 1 << 16
	for _, v := range Variants {
		b := open(t, map[int]Variant{v.Dim: v})
		if k := b.kernels[v.Dim]; k == nil || k.v != v {
			t.Logf("%s: not on this card", v.Name())
			continue
		}
		p := v2(poc.DefaultParams())
		p.Dim = uint32(v.Dim)
		m, err := poc.NewModel(p, poc.Seed{0x7a, byte(v.RM), byte(v.WM), byte(v.WGS), byte(v.Stages), byte(v.MinBlocks)})
		if err != nil {
			t.Fatal(err)
		}
		nonces := make([]uint64, n)
		for i := range nonces {
			nonces[i] = uint64(i)*0x9E3779B97F4A7C15>>16 | 1<<47
		}
		gpu, cpu := make([][32]byte, n), make([][32]byte, n)
		if err := b.Evaluate(ctx, m, nonces, gpu); err != nil {
			t.Fatal(err)
		}
		if err := b.CPU.Evaluate(ctx, m, nonces, cpu); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(gpu, cpu) {
			t.Errorf("%s disagrees with the CPU", v.Name())
		}
	}
}

// TestPoolPerLease: the pool proves a lease on that lease's GPU (found by
// its NVML UUID) and agrees with the CPU; unknown UUIDs mean every GPU.
func TestPoolPerLease(t *testing.T) {
	d, devs, ks := gpu0(t)
	pool, err := OpenAll(d, devs, ks)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if one := pool.ForGPUs([]string{devs[0].UUID}).(*Pool); len(one.devs) != 1 || one.devs[0].Device.UUID != devs[0].UUID {
		t.Fatalf("ForGPUs(%s) chose %d GPUs", devs[0].UUID, len(one.devs))
	}
	if pool.ForGPUs([]string{"GPU-00000000-0000-0000-0000-000000000000"}) != pool {
		t.Fatal("unknown UUIDs should prove on every GPU")
	}
	m, err := poc.NewModel(v2(poc.DefaultParams()), poc.Seed{3})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	gs, err := pool.ForGPUs([]string{devs[0].UUID}).Scan(ctx, m, 256, 5, 1<<18, []uint64{1})
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := poc.CPUBackend{}.Scan(ctx, m, 256, 5, 1<<18, []uint64{1})
	if !slices.Equal(gs, cs) {
		t.Fatalf("pool scan: %d nonces, cpu %d", len(gs), len(cs))
	}
	t.Logf("GPU %s (%s): scan agrees, %d valid", devs[0].UUID, devs[0].Name, len(gs)-1)
}
