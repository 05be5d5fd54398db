package prover

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/highway-compute/highway/poc"
)

func TestProveDevParams(t *testing.T) {
	p := poc.DevParams()
	seed := poc.DeriveSeed([]byte("block"), 7, 3, []byte("provider"))
	target := poc.Target{Difficulty: 64, Required: 10}
	l := &Local{Backend: poc.CPUBackend{Workers: 1}, Limit: 8192}
	res, err := l.Prove(context.Background(), Job{LeaseID: "7", Epoch: 3, Seed: seed, Target: target, Params: p, Deadline: time.Now().Add(10 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Evaluated != 8192 || res.Nonces < 10 || len(res.Proof) == 0 {
		t.Fatalf("%+v", res)
	}
	// The proof verifies with the chain's verifier.
	if err := poc.VerifyBytes(p, seed, target, res.Proof, []byte("later block")); err != nil {
		t.Fatalf("proof does not verify: %v", err)
	}
}

func TestProveDeadlineAndInsufficient(t *testing.T) {
	p := poc.DevParams()
	l := &Local{Backend: poc.CPUBackend{Workers: 1}, Chunk: 128}
	// Impossible requirement (4096 nonces at 1 in 2^20 is ~4·10^9
	// evaluations, an hour of a fast core): the deadline ends proving, and the result
	// says not to submit.
	start := time.Now()
	res, err := l.Prove(context.Background(), Job{Seed: poc.Seed{9}, Target: poc.Target{Difficulty: 1 << 20, Required: 4096}, Params: p, Deadline: start.Add(150 * time.Millisecond)})
	if !errors.Is(err, ErrInsufficient) || !errors.Is(err, poc.ErrInsufficientWork) {
		t.Fatalf("want ErrInsufficient, got %v (%+v)", err, res)
	}
	if time.Since(start) > 3*time.Second || res.Evaluated == 0 {
		t.Fatalf("deadline not honoured: %v, %+v", time.Since(start), res)
	}
	// Cancelled context: its error, not a proof.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Prove(ctx, Job{Seed: poc.Seed{9}, Target: poc.Target{Difficulty: 16, Required: 1}, Params: p, Deadline: time.Now().Add(time.Second)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if _, err := l.Prove(context.Background(), Job{Params: p, Target: poc.Target{Difficulty: 16, Required: 1}}); err == nil {
		t.Fatal("job without deadline accepted")
	}
	bad := p
	bad.Dim = 3
	if _, err := l.Prove(context.Background(), Job{Params: bad, Target: poc.Target{Difficulty: 16, Required: 1}, Deadline: time.Now().Add(time.Second)}); !errors.Is(err, poc.ErrBadParams) {
		t.Fatalf("bad params: %v", err)
	}
}

func TestMeasure(t *testing.T) {
	var calls int
	r, err := Measure(context.Background(), poc.CPUBackend{Workers: 1}, poc.DevParams(), 200*time.Millisecond, func(uint64) { calls++ })
	if err != nil {
		t.Fatal(err)
	}
	if r.NoncesPerSec == 0 || r.Evaluated == 0 || calls == 0 {
		t.Fatalf("%+v calls=%d", r, calls)
	}
}
