package broker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
	"github.com/highway-compute/highway/protocol"
)

// TestDialForwardRefusals: a lease past its minute's dial budget gets no
// new tunnel (each is a stored assignment), and a dial racing the buyer's
// close of the forward is refused once registered, so no tunnel outlives
// the close. Neither reaches the agent.
func TestDialForwardRefusals(t *testing.T) {
	store := dbtest.SQLiteLoose(t)
	ctx := context.Background()
	b, err := New(ctx, Config{Store: store, Regions: []string{"local"}})
	if err != nil {
		t.Fatal(err)
	}
	l := &models.Lease{ID: "l1", OrderID: "o1", BuyerID: "u1", ProviderID: "p1", MachineID: "m1", AgentID: "a1", Model: "H100", GPUs: 1,
		Status: models.LeaseActive, WorkloadStatus: protocol.LeaseRunning, PricePerEpoch: "5", EpochsTotal: 6, Remaining: "0", Pending: "0",
		Frozen: "0", Paid: "0", Refunded: "0", Fees: "0", EndsAt: time.Now().Add(time.Hour)}
	if err := store.CreateLease(ctx, l); err != nil {
		t.Fatal(err)
	}
	f := &models.PortForward{ID: models.NewID(), LeaseID: "l1", UserID: "u1", Port: 8888, Slug: "aaaaaaaaaaaaaaaaaaaaaaaaaa", CreatedAt: time.Now()}
	if err := store.CreatePortForward(ctx, f); err != nil {
		t.Fatal(err)
	}

	b.dials = accounts.NewLimiter(1, time.Minute)
	b.dials.Allow("l1", b.now())
	var te *TunnelError
	if _, err := b.DialForward(ctx, f); !errors.As(err, &te) || !strings.Contains(te.Message, "in the last minute") {
		t.Fatalf("over the dial budget: %v", err)
	}

	b.dials = accounts.NewLimiter(maxDialsPerMinute, time.Minute)
	stale := *f // read before the close
	if _, err := store.ClosePortForwards(ctx, "l1", 8888, "closed by the buyer"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.DialForward(ctx, &stale); !errors.As(err, &te) || te.Message != "This forward was closed." {
		t.Fatalf("a dial racing the close: %v", err)
	}
	b.shells.mu.Lock()
	n := len(b.shells.sessions)
	b.shells.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d tunnel sessions left behind", n)
	}
	if as, err := store.Assignments(ctx, "a1", 0); err != nil || len(as) != 0 {
		t.Fatalf("the agent was asked to dial: %+v", as)
	}
}
