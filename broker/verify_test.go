package broker

import (
	"context"
	"testing"
	"time"

	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
	"github.com/highway-compute/highway/protocol"
)

// slowVerdicts is the store with the verdict's write held at a gate.
type slowVerdicts struct {
	*models.Store
	entered, gate chan struct{}
}

func (s *slowVerdicts) SetMachineVerified(ctx context.Context, machineID string, at *time.Time, verifyErr string) error {
	close(s.entered)
	<-s.gate
	return s.Store.SetMachineVerified(ctx, machineID, at, verifyErr)
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
