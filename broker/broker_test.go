package broker

import (
	"context"
	"testing"
	"time"

	"cosmossdk.io/math"

	"github.com/highway-compute/highway/market"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
)

// The per-epoch price rounds down (the buyer never pays above the ask)
// and the total is exactly per-epoch × epochs.
func TestEscrowForIsExactAndRoundsDown(t *testing.T) {
	b := &Broker{cfg: Config{EpochDuration: 10 * time.Second}}
	cases := []struct {
		price, gpus, hours int64
		per, epochs        int64
		ok                 bool
	}{
		{3_600_000, 1, 1, 10_000, 360, true},
		{2_490_000, 2, 3, 13_833, 1080, true}, // 2.49 × 2 × 10/3600 = 13 833.3…
		{359, 1, 1, 0, 360, false},            // less than one micro-unit per epoch
	}
	for _, c := range cases {
		per, epochs, total, ok := b.EscrowFor(c.price, c.gpus, c.hours)
		if per != c.per || epochs != c.epochs || ok != c.ok {
			t.Fatalf("EscrowFor(%d, %d, %d) = %d × %d (ok %v), want %d × %d (ok %v)", c.price, c.gpus, c.hours, per, epochs, ok, c.per, c.epochs, c.ok)
		}
		if ok && !total.Equal(math.NewInt(per*epochs)) {
			t.Fatalf("total %s != %d × %d", total, per, epochs)
		}
		if ok && per*epochs > c.price*c.gpus*c.hours {
			t.Fatalf("escrow %d above the ask's %d", per*epochs, c.price*c.gpus*c.hours)
		}
	}
}

// A sealed wallet key opens only for its own user.
func TestWalletSealBindsUser(t *testing.T) {
	b := &Broker{cfg: Config{WalletKey: make([]byte, 32)}}
	sealed, err := b.seal("alice", []byte("secret key bytes"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.unseal("alice", sealed); err != nil || string(got) != "secret key bytes" {
		t.Fatalf("unseal = %q, %v", got, err)
	}
	if _, err := b.unseal("mallory", sealed); err == nil {
		t.Fatal("a key sealed for alice opened for mallory")
	}
}

// The engine's log survives a restart: a new broker on the same database
// replays it to the same state, and new commands continue the sequence.
func TestEngineRebuiltFromLog(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, store *models.Store) {
		ctx := context.Background()
		cfg := Config{Store: store, Regions: []string{"us-east", "eu-west"}}
		b, err := New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.SetSuspended(ctx, "provider-1", true); err != nil {
			t.Fatal(err)
		}
		if err := b.SetSuspended(ctx, "provider-2", true); err != nil {
			t.Fatal(err)
		}
		if err := b.SetSuspended(ctx, "provider-2", false); err != nil {
			t.Fatal(err)
		}
		seq := b.seq
		if seq == 0 {
			t.Fatal("nothing was logged")
		}
		again, err := New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if again.seq != seq || again.engine.Now() != b.engine.Now() {
			t.Fatalf("rebuilt at seq %d now %d, want %d %d", again.seq, again.engine.Now(), seq, b.engine.Now())
		}
		// The replayed state is the same: suspending provider-1 again is
		// refused as already done, provider-2 can be suspended.
		if _, err := again.apply(ctx, suspendCmd("provider-1")); err == nil {
			t.Fatal("provider-1 is not suspended after the rebuild")
		}
		if _, err := again.apply(ctx, suspendCmd("provider-2")); err != nil {
			t.Fatalf("provider-2 after the rebuild: %v", err)
		}
	})
}

func suspendCmd(provider string) market.Command {
	return market.Command{Kind: market.KindSuspendProvider, Provider: provider}
}
