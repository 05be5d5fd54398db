package prover

import (
	"fmt"

	"github.com/highway-compute/highway/poc"
	"github.com/highway-compute/highway/provider-agent/cuda"
)

// Choose returns the backend this machine proves with and why, for the
// agent's startup log. A GPU backend needs the CUDA driver and a kernel
// for the chain's work function; the driver is looked for here (through
// libcuda.so.1, no toolkit), and the kernel for work function v1 does not
// exist (v1 is SHA-256-bound, issue #14 replaces it with a tensor-bound
// v2), so every machine proves on the CPU for now, and its log says
// whether a driver and which GPUs were found.
func Choose() (poc.Backend, string) {
	d, err := cuda.Load()
	if err != nil {
		return poc.CPUBackend{}, fmt.Sprintf("cpu: %v", err)
	}
	devs, err := d.Devices()
	if err != nil {
		return poc.CPUBackend{}, fmt.Sprintf("cpu: the CUDA driver is present but unusable: %v", err)
	}
	if len(devs) == 0 {
		return poc.CPUBackend{}, "cpu: the CUDA driver lists no GPU"
	}
	v, _ := d.Version()
	return poc.CPUBackend{}, fmt.Sprintf("cpu: CUDA driver %d.%d with %d GPU(s) (%s, sm_%d%d), but no GPU kernel for work function v%d",
		v/1000, v%1000/10, len(devs), devs[0].Name, devs[0].Major, devs[0].Minor, poc.Version1)
}

// GPUBackend is a poc.Backend that computes on the machine's GPUs. While
// one proves a lease's epoch, the agent pauses the lease's workload, so
// the proof has the GPUs to itself and the buyer's job is not slowed by
// it in ways that are hard to see; the CPU backend leaves it running.
type GPUBackend interface {
	poc.Backend
	OnGPUs() bool
}

// UsesGPUs reports whether l proves on the GPUs (a GPUBackend).
func (l *Local) UsesGPUs() bool {
	b, ok := l.Backend.(GPUBackend)
	return ok && b.OnGPUs()
}
