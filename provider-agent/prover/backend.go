package prover

import (
	"fmt"

	"github.com/highway-compute/highway/poc"
	"github.com/highway-compute/highway/provider-agent/cuda"
	"github.com/highway-compute/highway/provider-agent/gpuprover"
)

// Choose returns the backend this machine proves with and why, for the
// agent's startup log: the GPU prover on every GPU the CUDA driver lists
// (through libcuda.so.1, no toolkit), or the CPU with the reason there is
// no GPU prover. The GPU prover covers work function v2; v1 models go to
// the CPU inside it.
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
	pool, err := gpuprover.OpenAll(d, devs, gpuprover.Embedded())
	if err != nil {
		return poc.CPUBackend{}, fmt.Sprintf("cpu: CUDA driver %d.%d with %d GPU(s) (%s, sm_%d%d), but the GPU prover did not start: %v",
			v/1000, v%1000/10, len(devs), devs[0].Name, devs[0].Major, devs[0].Minor, err)
	}
	return pool, fmt.Sprintf("%s (CUDA driver %d.%d)", pool.Describe(), v/1000, v%1000/10)
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
