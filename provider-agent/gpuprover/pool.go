package gpuprover

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/highway-compute/highway/poc"
	"github.com/highway-compute/highway/provider-agent/cuda"
)

// Pool is a Backend per GPU of the machine. A lease's epoch proves on the
// lease's own GPUs (ForGPUs), never on another lease's, whose workload
// keeps running; the pool as a whole (the self-test) uses every GPU.
type Pool struct {
	devs []*Backend
}

// OpenAll opens every GPU of devs (the driver's list) that can run the
// kernel.
func OpenAll(d *cuda.Driver, devs []cuda.Device, ks Kernels) (*Pool, error) {
	if len(devs) == 0 {
		return nil, errors.New("gpuprover: the CUDA driver lists no GPU")
	}
	p := &Pool{}
	var why []string
	for _, x := range devs {
		b, err := New(d, x, ks, nil)
		if err != nil {
			if errors.Is(err, ErrNoKernel) {
				p.Close()
				return nil, err
			}
			why = append(why, fmt.Sprintf("GPU %d: %v", x.Ordinal, err))
			continue
		}
		p.devs = append(p.devs, b)
	}
	if len(p.devs) == 0 {
		return nil, fmt.Errorf("gpuprover: no usable GPU (%s)", strings.Join(why, "; "))
	}
	return p, nil
}

// Close closes every GPU's backend.
func (p *Pool) Close() {
	for _, b := range p.devs {
		b.Close()
	}
}

// OnGPUs implements prover.GPUBackend.
func (p *Pool) OnGPUs() bool { return true }

// Describe names the GPUs, for the agent's log.
func (p *Pool) Describe() string {
	d := p.devs[0].Describe()
	if len(p.devs) > 1 {
		d = fmt.Sprintf("%s; %d GPUs", d, len(p.devs))
	}
	return d
}

// PreferredChunk is the nonces per Scan call that keep every GPU busy:
// a few thousand CTAs each, ~20 ms on an H200, so deadlines and progress
// stay fine-grained and launches stay a small share of the time.
func (p *Pool) PreferredChunk() uint64 { return uint64(len(p.devs)) << 24 }

// ForGPUs returns the backend for the GPUs with these UUIDs (NVML's
// form). UUIDs the driver does not list (the dev fleet's mock GPUs) are
// skipped; with none left, every GPU proves.
func (p *Pool) ForGPUs(uuids []string) poc.Backend {
	var sel []*Backend
	for _, b := range p.devs {
		if slices.ContainsFunc(uuids, func(u string) bool { return strings.EqualFold(u, b.Device.UUID) }) {
			sel = append(sel, b)
		}
	}
	if len(sel) == 0 {
		return p
	}
	return &Pool{devs: sel}
}

// Evaluate implements poc.Backend, a contiguous share of nonces per GPU.
func (p *Pool) Evaluate(ctx context.Context, m *poc.Model, nonces []uint64, out [][32]byte) error {
	if len(out) < len(nonces) {
		return poc.ErrMalformed
	}
	if !p.devs[0].Covers(m) {
		return p.devs[0].CPU.Evaluate(ctx, m, nonces, out)
	}
	n := len(p.devs)
	return p.each(func(i int, b *Backend) error {
		lo, hi := len(nonces)*i/n, len(nonces)*(i+1)/n
		return b.Evaluate(ctx, m, nonces[lo:hi], out[lo:hi])
	})
}

// Scan implements poc.Backend: GPU i scans the i-th of n equal ranges.
func (p *Pool) Scan(ctx context.Context, m *poc.Model, difficulty, start, count uint64, dst []uint64) ([]uint64, error) {
	if difficulty == 0 || start+count < start {
		return dst, poc.ErrBadTarget
	}
	// A model no kernel covers goes to the CPU once: one backend per GPU
	// would each start a worker per core on its share.
	if !p.devs[0].Covers(m) {
		return p.devs[0].CPU.Scan(ctx, m, difficulty, start, count, dst)
	}
	n := uint64(len(p.devs))
	found := make([][]uint64, n)
	err := p.each(func(i int, b *Backend) error {
		lo, hi := count/n*uint64(i), count/n*uint64(i+1)
		if uint64(i) == n-1 {
			hi = count
		}
		var err error
		found[i], err = b.Scan(ctx, m, difficulty, start+lo, hi-lo, nil)
		return err
	})
	for _, f := range found { // ranges ascend with i, each sorted
		dst = append(dst, f...)
	}
	return dst, err
}

// each runs f on every GPU at once and returns the first error.
func (p *Pool) each(f func(i int, b *Backend) error) error {
	if len(p.devs) == 1 {
		return f(0, p.devs[0])
	}
	errs := make([]error, len(p.devs))
	var wg sync.WaitGroup
	for i, b := range p.devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(i, b)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
