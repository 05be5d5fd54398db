// Package prover is the agent's local half of Proof-of-Compute: given an
// epoch's challenge (seed, target, params, deadline) it runs poc.Prove
// until the deadline and returns the encoded proof. Following the chain to
// learn the challenges and submitting MsgSubmitProof with the provider's
// key are the chain side's job (the agent's ProofSource and ProofSubmitter
// hooks); this package needs neither the network nor the SDK.
package prover

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/highway-compute/highway/poc"
)

// Job is one epoch of one lease to prove.
type Job struct {
	LeaseID  string
	Epoch    uint64
	Seed     poc.Seed
	Target   poc.Target
	Params   poc.Params
	Deadline time.Time // stop proving then; leave room to submit before the chain's deadline
	// QuoteNonce is the nonce of the quote the lease was created under:
	// it tells an agent whether the lease is one it signed for.
	QuoteNonce uint64
	// GPUs are the UUIDs of the lease's GPUs: a GPU backend proves on
	// these alone, so other leases' workloads on the machine run on.
	GPUs []string
}

// Result is a finished proving run.
type Result struct {
	Proof     []byte // poc.Proof.MarshalBinary
	Nonces    int    // valid nonces found
	Evaluated uint64 // nonces evaluated
	Elapsed   time.Duration
}

// Submitted is what the chain said when a proof landed. The epoch's one
// proof is judged a few blocks later (the sample comes from a block that
// did not exist when it was sent), unless it could never clear: then it is
// missed at once.
type Submitted struct {
	// Height is the block that carried the proof.
	Height int64
	// JudgeHeight is the block that judges the proof (0 when missed at once).
	JudgeHeight int64
	// Missed is set when the chain settled the epoch as missed on arrival
	// (malformed, too few nonces); Reason says why.
	Missed bool
	Reason string
}

// Verdict is an epoch's outcome on chain.
type Verdict struct {
	Cleared bool
	Reason  string // why it missed
}

// ErrInsufficient: the window ended with fewer valid nonces than the
// target requires. The proof is still returned (for logs), but submitting
// it would only burn gas: the chain would reject it.
var ErrInsufficient = fmt.Errorf("prover: %w", poc.ErrInsufficientWork)

// Local proves on this machine with a poc.Backend (the CPU reference
// backend until a GPU backend exists).
type Local struct {
	Backend poc.Backend
	// Now is injectable for tests; nil means time.Now.
	Now func() time.Time
	// Progress, if set, is called with the number of nonces evaluated.
	Progress func(done uint64)
	// Limit, if non-zero, caps the nonces evaluated (tests, selftest).
	Limit uint64
	// Chunk is the nonces per backend call and so the granularity of
	// Progress and of Result.Evaluated; 0 means poc.DefaultChunk.
	Chunk uint64
}

// Prove runs poc.Prove until job.Deadline (or ctx ends, or Limit is hit)
// and returns the encoded proof. Reaching the deadline is the normal end;
// ctx cancellation returns ctx's error.
func (l *Local) Prove(ctx context.Context, job Job) (Result, error) {
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	backend := l.Backend
	if backend == nil {
		backend = poc.CPUBackend{}
	}
	if f, ok := backend.(interface{ ForGPUs([]string) poc.Backend }); ok && len(job.GPUs) > 0 {
		backend = f.ForGPUs(job.GPUs)
	}
	chunk := l.Chunk
	if c, ok := backend.(interface{ PreferredChunk() uint64 }); ok && chunk == 0 {
		// A GPU wants millions of nonces a call, not the CPU's thousands.
		chunk = c.PreferredChunk()
	}
	if job.Deadline.IsZero() {
		return Result{}, errors.New("prover: job has no deadline")
	}
	pctx, cancel := context.WithDeadline(ctx, job.Deadline)
	defer cancel()
	var evaluated uint64
	start := now()
	proof, err := poc.Prove(pctx, backend, job.Params, job.Seed, job.Target, poc.ProveOptions{
		Limit: l.Limit,
		Chunk: chunk,
		Progress: func(done uint64) {
			evaluated = done
			if l.Progress != nil {
				l.Progress(done)
			}
		},
	})
	res := Result{Nonces: len(proof.Nonces), Evaluated: evaluated, Elapsed: now().Sub(start)}
	if err != nil {
		return res, fmt.Errorf("prover: lease %s epoch %d: %w", job.LeaseID, job.Epoch, err)
	}
	if cerr := ctx.Err(); cerr != nil {
		return res, fmt.Errorf("prover: lease %s epoch %d: %w", job.LeaseID, job.Epoch, cerr)
	}
	if len(proof.Nonces) == 0 {
		return res, fmt.Errorf("lease %s epoch %d: no valid nonce before the deadline: %w", job.LeaseID, job.Epoch, ErrInsufficient)
	}
	data, err := proof.MarshalBinary()
	if err != nil {
		return res, fmt.Errorf("prover: encode proof: %w", err)
	}
	res.Proof = data
	if uint64(len(proof.Nonces)) < job.Target.Required {
		return res, fmt.Errorf("lease %s epoch %d: %d of %d required nonces: %w", job.LeaseID, job.Epoch, len(proof.Nonces), job.Target.Required, ErrInsufficient)
	}
	return res, nil
}

// Rate is a self-test figure: nonces evaluated per second and the
// equivalent number of H100s under params, in milli-H100 (1000 = one H100).
type Rate struct {
	Evaluated      uint64
	Elapsed        time.Duration
	NoncesPerSec   uint64
	MilliH100Equiv uint64
}

// Measure runs the prover for d on a fixed seed and reports its rate; the
// selftest command prints it. The difficulty is set high so almost every
// nonce is work, not bookkeeping.
func Measure(ctx context.Context, backend poc.Backend, p poc.Params, d time.Duration, progress func(done uint64)) (Rate, error) {
	// Small chunks: the rate counts only whole chunks, and a slow machine
	// (or the race detector) must still report something in a short run.
	// A GPU backend keeps its own (millions of nonces, ~20 ms a chunk):
	// 256 nonces a launch would measure the launches, not the GPU.
	l := &Local{Backend: backend, Progress: progress, Chunk: 256}
	if _, ok := backend.(interface{ PreferredChunk() uint64 }); ok {
		l.Chunk = 0
	}
	start := time.Now()
	res, err := l.Prove(ctx, Job{LeaseID: "selftest", Seed: poc.Seed{1}, Params: p,
		Target: poc.Target{Difficulty: max(p.MinDifficulty, 1<<20), Required: 1}, Deadline: start.Add(d)})
	if err != nil && !errors.Is(err, ErrInsufficient) {
		return Rate{}, err
	}
	r := Rate{Evaluated: res.Evaluated, Elapsed: res.Elapsed}
	if ms := res.Elapsed.Milliseconds(); ms > 0 {
		r.NoncesPerSec = res.Evaluated * 1000 / uint64(ms)
	}
	if p.H100NoncesPerSecond > 0 {
		r.MilliH100Equiv = r.NoncesPerSec * 1000 / p.H100NoncesPerSecond
	}
	return r, nil
}
