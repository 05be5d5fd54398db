package cuda

import (
	"encoding/binary"
	"errors"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// realGPU is set on a machine with an NVIDIA GPU and its driver, where the
// tests must find and use it rather than skip.
var realGPU = os.Getenv("HIGHWAY_REAL_GPU") == "1"

// TestLoad: with a driver, the GPUs it lists; without one, ErrNoDriver
// naming the library, which is what the agent logs.
func TestLoad(t *testing.T) {
	d, err := Load()
	if err != nil {
		if !errors.Is(err, ErrNoDriver) || !strings.Contains(err.Error(), LibraryName) {
			t.Fatalf("no driver, but the error does not say so: %v", err)
		}
		if realGPU {
			t.Fatalf("HIGHWAY_REAL_GPU=1 but %v", err)
		}
		t.Logf("no driver here, as expected without a GPU: %v", err)
		return
	}
	v, err := d.Version()
	if err != nil {
		t.Fatal(err)
	}
	devs, err := d.Devices()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("CUDA driver %d.%d, %d GPU(s): %+v", v/1000, v%1000/10, len(devs), devs)
	if realGPU && len(devs) == 0 {
		t.Fatal("HIGHWAY_REAL_GPU=1 but the driver lists no GPU")
	}
	for _, x := range devs {
		if x.Name == "" || x.Major < 1 || x.MemoryBytes == 0 || x.SMs < 1 {
			t.Fatalf("implausible device %+v", x)
		}
	}
}

// TestKernelOnRealGPU compiles hand-written PTX on the card, adds two
// million-element vectors and compares every element.
func TestKernelOnRealGPU(t *testing.T) {
	if !realGPU {
		t.Skip("HIGHWAY_REAL_GPU=1 runs a kernel on a real GPU; without one, TestLoad checks the no-driver path")
	}
	d, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ptx, err := os.ReadFile("testdata/add.ptx")
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.LoadPTX(ptx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Unload() }()
	f, err := m.Function("add_u32")
	if err != nil {
		t.Fatal(err)
	}
	const n = 1 << 20
	a, b := make([]byte, 4*n), make([]byte, 4*n)
	for i := range n {
		binary.LittleEndian.PutUint32(a[4*i:], uint32(i)*2654435761)
		binary.LittleEndian.PutUint32(b[4*i:], ^uint32(i))
	}
	var bufs [3]*Buffer
	for i := range bufs {
		if bufs[i], err = c.Alloc(4 * n); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = bufs[i].Free() }()
	}
	if err := bufs[0].Write(a); err != nil {
		t.Fatal(err)
	}
	if err := bufs[1].Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Launch([3]uint32{n / 256, 1, 1}, [3]uint32{256, 1, 1}, 0, Ptr(bufs[0]), Ptr(bufs[1]), Ptr(bufs[2]), U32(n)); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 4*n)
	if err := bufs[2].Read(out); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		want := binary.LittleEndian.Uint32(a[4*i:]) + binary.LittleEndian.Uint32(b[4*i:])
		if got := binary.LittleEndian.Uint32(out[4*i:]); got != want {
			t.Fatalf("element %d: %d, want %d", i, got, want)
		}
	}
}

// TestLoadErrorSurvivesThreadMoves: dlerror's message belongs to one OS
// thread, so a Load whose goroutine moved between dlopen and dlerror once
// logged "no CUDA driver: " and nothing else (a CI run failed on it). Many
// Loads at once, with other goroutines forcing moves, must all name the
// library.
func TestLoadErrorSurvivesThreadMoves(t *testing.T) {
	if _, err := Load(); err == nil {
		t.Skip("a driver is here; the no-driver message cannot be checked")
	}
	stop := make(chan struct{})
	defer close(stop)
	for range 4 {
		go func() { // churn: keeps the scheduler moving goroutines
			for {
				select {
				case <-stop:
					return
				default:
					runtime.Gosched()
				}
			}
		}()
	}
	var wg sync.WaitGroup
	bad := make(chan error, 1)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				_, err := Load()
				if err == nil || !errors.Is(err, ErrNoDriver) || !strings.Contains(err.Error(), LibraryName) {
					select {
					case bad <- err:
					default:
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-bad:
		t.Fatalf("a Load's error lost its reason: %v", err)
	default:
	}
}
