package poc

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// Backend evaluates the work function in bulk. The CPU backend is the
// reference; a GPU backend implements the same two methods and must return
// bit-identical results (integer arithmetic makes that possible), so callers
// never change.
type Backend interface {
	// Evaluate writes the digest of nonces[i] into out[i].
	Evaluate(ctx context.Context, m *Model, nonces []uint64, out [][32]byte) error
	// Scan evaluates every nonce in [start, start+count) and appends the
	// valid ones for difficulty, ascending, to dst. It may stop early only
	// with ctx's error, and then returns what it appended so far.
	Scan(ctx context.Context, m *Model, difficulty, start, count uint64, dst []uint64) ([]uint64, error)
}

// CPUBackend is the reference backend: the SWAR kernel in batches, one
// worker per core.
type CPUBackend struct {
	// Workers is the number of goroutines; 0 means GOMAXPROCS.
	Workers int
	// Batch is the number of nonces per kernel call; 0 means 64. Larger
	// batches reuse each L1-resident weight block across more rows.
	Batch int
}

// DefaultBatch is the CPU backend's default batch size.
const DefaultBatch = 64

func (c CPUBackend) workers() int {
	if c.Workers > 0 {
		return c.Workers
	}
	return runtime.GOMAXPROCS(0)
}

func (c CPUBackend) batch() int {
	if c.Batch > 0 {
		return c.Batch
	}
	return DefaultBatch
}

// Evaluate implements Backend.
func (c CPUBackend) Evaluate(ctx context.Context, m *Model, nonces []uint64, out [][32]byte) error {
	if len(out) < len(nonces) {
		return ErrMalformed
	}
	bs := c.batch()
	nb := (len(nonces) + bs - 1) / bs
	return c.parallel(ctx, m, nb, func(ws *workspace, b int) {
		lo := b * bs
		hi := min(lo+bs, len(nonces))
		m.evalBatch(ws, nonces[lo:hi], out[lo:hi])
	})
}

// Scan implements Backend.
func (c CPUBackend) Scan(ctx context.Context, m *Model, difficulty, start, count uint64, dst []uint64) ([]uint64, error) {
	if difficulty == 0 || start+count < start {
		return dst, ErrBadTarget
	}
	th := threshold(difficulty)
	bs := uint64(c.batch())
	nb := (count + bs - 1) / bs
	w := c.workers()
	found := make([][]uint64, w)
	err := c.parallelN(ctx, m, int(nb), w, func(ws *workspace, id, b int) {
		lo := start + uint64(b)*bs
		n := min(bs, start+count-lo)
		nonces := ws.nonces[:n]
		for i := range nonces {
			nonces[i] = lo + uint64(i)
		}
		out := ws.digests[:n]
		m.evalBatch(ws, nonces, out)
		for i := range out {
			if digestPrefix(&out[i]) <= th {
				found[id] = append(found[id], nonces[i])
			}
		}
	})
	for _, f := range found {
		dst = append(dst, f...)
	}
	// Workers interleave batches; sorting makes the result independent of
	// worker count and batch size.
	slices.Sort(dst)
	return dst, err
}

// parallel runs fn over batch indices [0, nb) on the configured workers.
func (c CPUBackend) parallel(ctx context.Context, m *Model, nb int, fn func(ws *workspace, b int)) error {
	return c.parallelN(ctx, m, nb, c.workers(), func(ws *workspace, _ int, b int) { fn(ws, b) })
}

// parallelN hands batch indices out through an atomic counter, so fast
// workers take more batches, and checks ctx between batches.
func (c CPUBackend) parallelN(ctx context.Context, m *Model, nb, w int, fn func(ws *workspace, id, b int)) error {
	w = max(1, min(w, nb))
	var next atomic.Int64
	var wg sync.WaitGroup
	for id := 0; id < w; id++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ws := newWorkspace(m.dim, c.batch())
			for ctx.Err() == nil {
				b := int(next.Add(1) - 1)
				if b >= nb {
					return
				}
				fn(ws, id, b)
			}
		}()
	}
	wg.Wait()
	return ctx.Err()
}
