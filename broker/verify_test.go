package broker

import (
	"context"
	"testing"
	"time"

	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
	"github.com/highway-compute/highway/poc"
	"github.com/highway-compute/highway/protocol"
)

// slowVerdicts is the store with the verdict's write held at a gate.
type slowVerdicts struct {
	*models.Store
	entered, gate chan struct{}
}

func (s *slowVerdicts) SetMachineVerified(ctx context.Context, machineID string, at *time.Time, verifyErr string, measured int64) error {
	close(s.entered)
	<-s.gate
	return s.Store.SetMachineVerified(ctx, machineID, at, verifyErr, measured)
}

// TestNoSecondChallengeWhileAProofIsChecked: while an answer to a
// machine's verification challenge is being checked and its verdict
// stored, a heartbeat finds the challenge still outstanding and issues no
// second one. It did issue one (the challenge was dropped before the
// check), and the agent proved twice: a CI failure of
// TestReplicasBehindAProxy, read there as the new leader asking again.
func TestNoSecondChallengeWhileAProofIsChecked(t *testing.T) {
	ctx := context.Background()
	st := &slowVerdicts{Store: dbtest.SQLite(t), entered: make(chan struct{}), gate: make(chan struct{})}
	b, err := New(ctx, Config{Store: st, Regions: []string{"us-east"}})
	if err != nil {
		t.Fatal(err)
	}
	m := &machineState{id: "m1", agentID: "a1", model: "H100", providerAddress: "hwy1provider"}
	b.mu.Lock()
	b.machines[m.id] = m
	b.maybeVerifyLocked(ctx, m)
	id := m.verifying
	b.mu.Unlock()
	if id == 0 {
		t.Fatal("no challenge issued to the unverified machine")
	}
	answered := make(chan error, 1)
	go func() {
		answered <- b.Verification(ctx, "a1", protocol.VerificationResponse{AssignmentID: id, Error: "the GPU fell off the bus"})
	}()
	<-st.entered // the verdict is being written
	b.mu.Lock()
	b.maybeVerifyLocked(ctx, m) // a heartbeat now
	again, outstanding := m.verifying, len(b.verifies)
	b.mu.Unlock()
	if again != id || outstanding != 1 {
		t.Fatalf("during the check: challenge %d (was %d), %d outstanding: a second challenge was issued", again, id, outstanding)
	}
	if err := b.Verification(ctx, "a1", protocol.VerificationResponse{AssignmentID: id, Error: "twice"}); err == nil {
		t.Fatal("a second answer to the challenge being checked was taken")
	}
	close(st.gate)
	if err := <-answered; err == nil {
		t.Fatal("the failed proof was accepted")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if m.verifying != 0 || len(b.verifies) != 0 || m.verified {
		t.Fatalf("after the verdict: verifying %d, %d outstanding, verified %v", m.verifying, len(b.verifies), m.verified)
	}
}

// TestVerificationMeasuresRate: a verification proof measures what it
// evaluated against its class's rate: 1.2 × D·λ = 57 600 nonces in the
// 1 s window of a CPU-SIM (50 000 nonces a second at D = 16) read as
// 1 152 milli-H100. A proof that found too few is refused and measures
// nothing.
func TestVerificationMeasuresRate(t *testing.T) {
	ctx := context.Background()
	b, err := New(ctx, Config{Store: dbtest.SQLite(t), Regions: []string{"us-east"}, VerifyParams: poc.DevParams(), VerifyWork: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m := &machineState{id: "m1", agentID: "a1", model: "CPU-SIM", providerAddress: "hwy1provider"}
	issue := func() (uint64, *challenge) {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.machines[m.id] = m
		m.verifyAfter = time.Time{}
		b.maybeVerifyLocked(ctx, m)
		return m.verifying, b.verifies[m.verifying]
	}
	prove := func(c *challenge, evaluations uint64) []byte {
		pr, err := poc.Prove(ctx, poc.CPUBackend{}, c.params, c.seed, c.target, poc.ProveOptions{Limit: evaluations})
		if err != nil {
			t.Fatal(err)
		}
		data, err := pr.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	// Too little work: 80 % of the expected evaluations.
	id, c := issue()
	expected := c.target.Difficulty * c.params.ExpectedValid
	if err := b.Verification(ctx, "a1", protocol.VerificationResponse{AssignmentID: id, Proof: prove(c, expected*8/10)}); err == nil {
		t.Fatal("a proof short of the target was accepted")
	}
	if m.verified || m.measured != 0 {
		t.Fatalf("after a short proof: verified %v, measured %d", m.verified, m.measured)
	}
	id, c = issue()
	if err := b.Verification(ctx, "a1", protocol.VerificationResponse{AssignmentID: id, Proof: prove(c, expected*12/10)}); err != nil {
		t.Fatal(err)
	}
	// Poisson(3600): ±5σ is ±8 %.
	if !m.verified || m.measured < 1060 || m.measured > 1245 {
		t.Fatalf("verified %v, measured %d milli-H100, want about 1152", m.verified, m.measured)
	}
	t.Logf("measured %d milli-H100 for 57 600 nonces in a CPU-SIM's second", m.measured)
}
