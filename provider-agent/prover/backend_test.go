package prover

import (
	"os"
	"strings"
	"testing"

	"github.com/highway-compute/highway/poc"
)

// TestChooseSaysWhy: the backend is the CPU's, and the reason names what
// was found: no driver here, the GPU on a machine with one.
func TestChooseSaysWhy(t *testing.T) {
	b, why := Choose()
	if _, ok := b.(poc.CPUBackend); !ok {
		t.Fatalf("backend %T", b)
	}
	t.Log(why)
	want := "cpu: no CUDA driver: "
	if os.Getenv("HIGHWAY_REAL_GPU") == "1" {
		want = "cpu: CUDA driver "
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
