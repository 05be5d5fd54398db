package poc

import (
	"context"
	"errors"
)

// ProveOptions tune a proving run. The zero value proves from nonce 0
// until the context ends.
type ProveOptions struct {
	// Start is the first nonce evaluated.
	Start uint64
	// Limit, if non-zero, stops after this many nonces (tests and
	// benchmarks use it for a deterministic result).
	Limit uint64
	// Chunk is the number of nonces per Backend.Scan call, the granularity
	// of progress reports and of the Limit; 0 means DefaultChunk. The
	// context is also honoured between batches inside a chunk.
	Chunk uint64
	// Progress, if set, is called after each chunk with the total number
	// of nonces evaluated so far, from the calling goroutine.
	Progress func(done uint64)
}

// DefaultChunk is the default nonces per Scan call.
const DefaultChunk = 4096

// Prove evaluates nonces from opts.Start upward on the backend until ctx
// is done, opts.Limit nonces are evaluated, the nonce range ends, or
// p.MaxProofNonces valid nonces are found, and returns the valid nonces,
// ascending (the first MaxProofNonces of them). Reaching the deadline is
// the normal way to stop and is not an error; the only errors are bad
// params or target, or a backend failure. The caller checks
// len(proof.Nonces) against the target's Required before submitting.
func Prove(ctx context.Context, b Backend, p Params, seed Seed, t Target, opts ProveOptions) (Proof, error) {
	proof := Proof{Version: p.Version}
	if err := p.Validate(); err != nil {
		return proof, err
	}
	if t.Difficulty == 0 {
		return proof, ErrBadTarget
	}
	m, err := NewModel(p, seed)
	if err != nil {
		return proof, err
	}
	return ProveModel(ctx, b, p, m, t, opts)
}

// ProveModel is Prove with a prebuilt model (the agent builds it once per
// epoch and may prove in several calls).
func ProveModel(ctx context.Context, b Backend, p Params, m *Model, t Target, opts ProveOptions) (Proof, error) {
	proof := Proof{Version: p.Version}
	chunk := opts.Chunk
	if chunk == 0 {
		chunk = DefaultChunk
	}
	maxN := p.maxNonce()
	next := opts.Start
	var done uint64
	for ctx.Err() == nil && len(proof.Nonces) < int(p.MaxProofNonces) && next <= maxN {
		n := min(chunk, maxN-next+1)
		if opts.Limit != 0 {
			if done >= opts.Limit {
				break
			}
			n = min(n, opts.Limit-done)
		}
		var err error
		proof.Nonces, err = b.Scan(ctx, m, t.Difficulty, next, n, proof.Nonces)
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				break
			}
			return proof, err
		}
		done += n
		if opts.Progress != nil {
			opts.Progress(done)
		}
		if next+n < next { // wrapped past 2^64−1
			break
		}
		next += n
	}
	if len(proof.Nonces) > int(p.MaxProofNonces) {
		proof.Nonces = proof.Nonces[:p.MaxProofNonces]
	}
	return proof, nil
}
