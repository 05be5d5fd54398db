package broker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/highway-compute/highway"
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
		if ok && total.Cmp(highway.TotalOf(highway.Amount(per*epochs))) != 0 {
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
		seq := b.w.seq
		if seq == 0 {
			t.Fatal("nothing was logged")
		}
		again, err := New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if again.w.seq != seq || again.w.engine.Now() != b.w.engine.Now() {
			t.Fatalf("rebuilt at seq %d now %d, want %d %d", again.w.seq, again.w.engine.Now(), seq, b.w.engine.Now())
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

// Offers returns exactly the reference (every machine's own state
// filtered, then fully sorted by the rule's keys and id), page by page,
// whichever selection path it takes, and stays exact while machines change
// (the browse rows are kept in step with their state, moved between models
// and removed).
func TestOffersMatchReference(t *testing.T) {
	regions := []string{"us-east", "eu-west", "ap-south"}
	modelsList := []string{"H100", "A100", "L40S"}
	b := &Broker{cfg: Config{Regions: regions, Models: modelsList}, machines: map[string]*machineState{}, byModel: map[string]*modelIndex{}}
	var all []*machineState
	for i := 0; i < 400; i++ {
		m := &machineState{id: fmt.Sprintf("m%03d", (i*7919)%1000), model: modelsList[i%2], vramGiB: int64(40 + 40*(i%2)),
			region: regions[i%3], rtts: []uint16{uint16(5 + i%50), uint16(30 + i%70), market.MaxRTTms}, verified: i%11 != 0,
			online: i%13 != 0, inEngine: true, offered: []int{0, 1, 2, 3}, free: uint64(i % 16), held: uint64(i % 3)}
		// Prices and reliabilities repeat, so the views have groups
		// sharing a first key (skipped over by a bound on the second).
		m.listed = market.Command{Price: int64(1000 + 20*((i*37)%10)), ReliabilityBps: int64(9000 + 100*((i*13)%11))}
		// Measured rates repeat too, and a fifth are unmeasured (last in
		// the price-per-measured-H100 order).
		if i%5 != 0 {
			m.measured = int64(300 + 50*((i*29)%9))
		}
		b.machines[m.id] = m
		b.indexLocked(m)
		all = append(all, m)
	}
	filters := []highway.OfferFilter{
		{}, {Model: "H100", Count: 2, Region: "eu-west", MaxRTTms: 60}, {Sort: "rtt", Region: "us-east"},
		{Sort: "reliability", MinReliability: 9500, MaxPrice: 1150}, {Model: "A100", MinVRAMGiB: 80, Sort: "rtt"},
		{Model: "L40S", Sort: "price"}, {Sort: "rtt", Region: "eu-west", MaxPrice: 1100, MaxRTTms: 80},
		{Sort: "reliability", Region: "ap-south", MaxRTTms: 150, MinReliability: 9200},
		{Region: "us-east", MaxRTTms: 20, MaxPrice: 1120, Count: 1},
		{Sort: "price_per_h100"}, {Sort: "price_per_h100", Model: "H100", MaxPrice: 1100, Region: "eu-west", MaxRTTms: 60},
	}
	check := func(round int) {
		t.Helper()
		if err := b.CheckBrowseIndex(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for _, f := range filters {
			want := referenceOffers(b, f)
			// Paged (top-K path for small pages) and whole (full sort)
			// must both give the reference sequence.
			for _, limit := range []int{7, 100_000} {
				var got []string
				page := f
				page.Limit = limit
				for {
					os, next := b.Offers(page)
					for _, o := range os {
						got = append(got, o.ID)
					}
					if next == "" {
						break
					}
					page.Offset, _ = strconv.Atoi(next)
				}
				if strings.Join(got, ",") != strings.Join(want, ",") {
					t.Fatalf("round %d, %+v, limit %d: got %v, want %v", round, f, limit, got, want)
				}
			}
		}
	}
	check(0)
	// Seeded changes of every kind a browse row reflects.
	rng := rand.New(rand.NewPCG(7, 11))
	for round := 1; round <= 300; round++ {
		m := all[rng.IntN(len(all))]
		switch rng.IntN(9) {
		case 0:
			m.held ^= 1 << uint(rng.IntN(4))
		case 1:
			m.online = !m.online
		case 2:
			m.listed.Price = int64(900 + 20*rng.IntN(20))
		case 3:
			m.model = modelsList[rng.IntN(len(modelsList))] // moves to another model's rows
		case 4:
			m.model = "" // no longer lists a model: leaves the rows
		case 5:
			m.rtts[rng.IntN(3)] = uint16(rng.IntN(200))
		case 6:
			m.suspended = !m.suspended
		case 7:
			m.free = uint64(rng.IntN(16))
		case 8:
			m.measured = int64(rng.IntN(4) * 400) // 0: unmeasured
		}
		b.indexLocked(m)
		if round%10 == 0 {
			check(round)
		}
	}
}

// Missed epochs lower a machine's reliability: full uptime × cleared /
// settled, counted from the indexed epochs of its leases in the last 30
// days (an older lease's misses no longer count), the same after a
// restart.
func TestReliabilityCountsMissedEpochs(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, store *models.Store) {
		ctx := context.Background()
		now := time.Now().UTC()
		var users [2]string
		for i, email := range []string{"p1@example.com", "b@example.com"} {
			u := &models.User{Email: email, PasswordHash: "x", IsBuyer: true, IsProvider: true}
			if err := store.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			users[i] = u.ID
		}
		if err := store.DB.Create(&models.Machine{ID: "m1", ProviderID: users[0], Hostname: "h", RTTJSON: "{}", CreatedAt: now.Add(-48 * time.Hour),
			UpdatedAt: now}).Error; err != nil {
			t.Fatal(err)
		}
		for i, l := range []struct {
			created         time.Time
			cleared, missed int
		}{{now.Add(-time.Hour), 3, 1}, {now.Add(-40 * 24 * time.Hour), 0, 5}} {
			lease := &models.Lease{ID: fmt.Sprintf("lease-%d", i), ChainLeaseID: uint64(i + 1), BuyerID: users[1], ProviderID: users[0], MachineID: "m1",
				Model: "H100", GPUs: 1, Status: models.LeaseActive, PricePerEpoch: "1", Remaining: "0", Pending: "0", Frozen: "0", Paid: "0",
				Refunded: "0", Fees: "0", EndsAt: now}
			if err := store.CreateLease(ctx, lease); err != nil {
				t.Fatal(err)
			}
			if err := store.DB.Model(&models.Lease{}).Where("id = ?", lease.ID).Update("created_at", l.created).Error; err != nil {
				t.Fatal(err)
			}
			for n := 0; n < l.cleared+l.missed; n++ {
				status := "cleared"
				if n >= l.cleared {
					status = "missed"
				}
				if err := store.UpsertEpoch(ctx, models.LeaseEpoch{LeaseID: lease.ID, N: int64(n), Status: status, Amount: "1"}); err != nil {
					t.Fatal(err)
				}
			}
		}
		cfg := Config{Store: store, Regions: []string{"us-east"}, HeartbeatInterval: time.Second, Now: func() time.Time { return now }}
		for _, name := range []string{"counted by the indexer", "loaded at start"} {
			b, err := New(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			m := b.machines["m1"]
			m.uptime.credit(now.Add(-48*time.Hour), now) // up the whole window
			if name == "counted by the indexer" {
				m.epochsCleared, m.epochsMissed = 0, 0
				if err := b.countEpochs(ctx, "m1"); err != nil {
					t.Fatal(err)
				}
			}
			if m.epochsCleared != 3 || m.epochsMissed != 1 {
				t.Fatalf("%s: cleared %d missed %d, want 3 and 1 (the 40-day-old lease left out)", name, m.epochsCleared, m.epochsMissed)
			}
			if got := b.reliabilityBps(m); got != 7500 {
				t.Fatalf("%s: reliability %d bps, want 10000 × 3/4 = 7500", name, got)
			}
		}
	})
}

// The engine is checkpointed every CheckpointEvery logged commands and the
// log compacted behind the older of the two checkpoints kept; a restart
// restores the newest and replays the tail to the same state, falls back
// to the older one when the newest does not restore, and refuses to start
// when neither does and the log between is gone.
func TestEngineRebuiltFromCheckpoint(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, store *models.Store) {
		ctx := context.Background()
		cfg := Config{Store: store, Regions: []string{"us-east", "eu-west"}, CheckpointEvery: 5}
		b, err := New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 23 {
			c := market.Command{Kind: market.KindUpsertMachine, Machine: fmt.Sprintf("m%d", i%4), Provider: fmt.Sprintf("p%d", i%4),
				Model: "H100", GPUs: 8, VRAMGiB: 80, Region: "us-east", RTTms: []uint16{5, 80}, Price: int64(1000 + i), Verified: true}
			if i%5 == 4 {
				c = suspendCmd(fmt.Sprintf("p%d", i))
			}
			if _, err := b.apply(ctx, c); err != nil {
				t.Fatalf("command %d: %v", i, err)
			}
			b.w.checkpoints.Wait() // each checkpoint lands before the next is due
		}
		b.mu.Lock()
		seq, digest, ckpt := b.w.seq, b.w.engine.StateDigest(), b.w.checkpointSeq
		b.mu.Unlock()
		cps, err := store.MarketCheckpoints(ctx)
		if err != nil {
			t.Fatal(err)
		}
		first, err := store.FirstMarketLogSeq(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(cps) != 2 || cps[0].Seq != ckpt || ckpt < seq-5 || first != cps[1].Seq+1 {
			t.Fatalf("after %d commands: checkpoints %d (newest %d, broker's %d), log from %d", seq, len(cps), cps[0].Seq, ckpt, first)
		}

		rebuilt := func(what string) *Broker {
			t.Helper()
			again, err := New(ctx, cfg)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if again.w.seq != seq || again.w.engine.StateDigest() != digest {
				t.Fatalf("%s: rebuilt at seq %d, want %d, state equal %v", what, again.w.seq, seq, again.w.engine.StateDigest() == digest)
			}
			return again
		}
		if again := rebuilt("from the newest checkpoint"); again.w.checkpointSeq != cps[0].Seq {
			t.Fatalf("restored checkpoint %d, want the newest, %d", again.w.checkpointSeq, cps[0].Seq)
		}
		if err := store.DB.Model(&models.MarketCheckpoint{}).Where("seq = ?", cps[0].Seq).Update("state", "bm90IGEgc25hcHNob3Q=").Error; err != nil {
			t.Fatal(err)
		}
		if again := rebuilt("from the older checkpoint"); again.w.checkpointSeq != cps[1].Seq {
			t.Fatalf("restored checkpoint %d, want the older, %d", again.w.checkpointSeq, cps[1].Seq)
		}
		if err := store.DB.Model(&models.MarketCheckpoint{}).Where("seq = ?", cps[1].Seq).Update("state", "!").Error; err != nil {
			t.Fatal(err)
		}
		if _, err := New(ctx, cfg); err == nil || !strings.Contains(err.Error(), "refusing to rebuild from a gap") {
			t.Fatalf("neither checkpoint restores and the log is compacted: err = %v", err)
		}
	})
}
