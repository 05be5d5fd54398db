package prover

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/highway-compute/highway/poc"
)

// TestChooseSaysWhy: without a driver the backend is the CPU's and the
// reason says so; on a machine with a GPU it is the GPU prover, named.
func TestChooseSaysWhy(t *testing.T) {
	b, why := Choose()
	t.Log(why)
	want := "cpu: no CUDA driver: "
	if os.Getenv("HIGHWAY_REAL_GPU") == "1" {
		want = "gpu: "
		if _, ok := b.(GPUBackend); !ok {
			t.Fatalf("backend %T on a GPU machine", b)
		}
	} else if _, ok := b.(poc.CPUBackend); !ok {
		t.Fatalf("backend %T", b)
	}
	if !strings.HasPrefix(why, want) {
		t.Fatalf("reason %q, want it to start %q", why, want)
	}
}

type onGPUs struct{ poc.CPUBackend }

func (onGPUs) OnGPUs() bool { return true }

// TestUsesGPUs: only a GPU backend makes the agent pause the workload.
func TestUsesGPUs(t *testing.T) {
	if (&Local{}).UsesGPUs() || (&Local{Backend: poc.CPUBackend{}}).UsesGPUs() {
		t.Fatal("the CPU prover claims the GPUs")
	}
	if !(&Local{Backend: onGPUs{}}).UsesGPUs() {
		t.Fatal("a GPU backend not seen")
	}
}

// perGPU is a GPU-like backend: it hands out a sub-backend per lease's
// GPUs and asks for big chunks, and records what the prover used.
type perGPU struct {
	poc.CPUBackend
	picked *[]string
	chunks *[]uint64
}

func (p perGPU) ForGPUs(u []string) poc.Backend {
	*p.picked = u
	return p
}

func (p perGPU) PreferredChunk() uint64 { return 1 << 10 }

func (p perGPU) Scan(ctx context.Context, m *poc.Model, d, start, count uint64, dst []uint64) ([]uint64, error) {
	*p.chunks = append(*p.chunks, count)
	return p.CPUBackend.Scan(ctx, m, d, start, count, dst)
}

// TestProveOnTheLeasesGPUs: Local proves a job on the backend for the
// job's GPUs, in the chunks that backend prefers.
func TestProveOnTheLeasesGPUs(t *testing.T) {
	var picked []string
	var chunks []uint64
	l := &Local{Backend: perGPU{picked: &picked, chunks: &chunks}, Limit: 3 << 10}
	p := poc.DevParams()
	_, err := l.Prove(context.Background(), Job{LeaseID: "1", Seed: poc.Seed{1}, Params: p, GPUs: []string{"GPU-a", "GPU-b"},
		Target: poc.Target{Difficulty: 1 << 20, Required: 1}, Deadline: time.Now().Add(time.Minute)})
	if err != nil && !errors.Is(err, ErrInsufficient) {
		t.Fatal(err)
	}
	if !slices.Equal(picked, []string{"GPU-a", "GPU-b"}) || !slices.Equal(chunks, []uint64{1 << 10, 1 << 10, 1 << 10}) {
		t.Fatalf("picked %v, chunks %v", picked, chunks)
	}
}

// TestMeasureOnRealGPU runs the agent's self-test path (Choose, Local,
// the backend's preferred chunk) on the production v2 network for two
// seconds and prints the proving rate, bookkeeping included.
func TestMeasureOnRealGPU(t *testing.T) {
	if os.Getenv("HIGHWAY_REAL_GPU") != "1" {
		t.Skip("HIGHWAY_REAL_GPU=1 measures the GPU prover; TestChooseSaysWhy checks the CPU fallback")
	}
	b, why := Choose()
	t.Log(why)
	p := poc.DefaultParams()
	p.Version = poc.Version2
	r, err := Measure(context.Background(), b, p, 2*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("BENCH poc_gpu_prove_nonces_per_s %d nonces/s\n", r.NoncesPerSec)
	t.Logf("%d nonces in %v: %d nonces/s, %d milli-H100", r.Evaluated, r.Elapsed, r.NoncesPerSec, r.MilliH100Equiv)
}
