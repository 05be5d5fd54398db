package broker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/market"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
	"github.com/highway-compute/highway/protocol"
)

// TestFollowerViewMatchesTheLeader drives a leader through a seeded
// stream of real traffic (agents' beats with changing free GPUs and RTTs,
// price changes, suspensions, orders that reserve GPUs, confirmations,
// releases, the clock running machines offline and reservations out)
// with a checkpoint every 40 entries, and a follower on the same database
// catching up at random moments, sometimes after the log it stood at was
// compacted away. After each catch-up its offers (every sort, several
// filters, paged), each machine's offer and the summary are exactly the
// leader's; and a write to the follower is refused.
func TestFollowerViewMatchesTheLeader(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, store *models.Store) {
		ctx := context.Background()
		clock := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
		var providers []string
		for i := range 3 {
			u := &models.User{Email: fmt.Sprintf("p%d@example.com", i), PasswordHash: "x", IsProvider: true}
			if err := store.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			providers = append(providers, u.ID)
		}
		const machines = 12
		for i := range machines {
			row := &models.Machine{ID: fmt.Sprintf("m%02d", i), ProviderID: providers[i%3], Hostname: fmt.Sprintf("host-%d", i),
				CUDAVersion: "12.4", DriverVersion: "550.54", RTTJSON: "{}", CreatedAt: clock, UpdatedAt: clock}
			if i%4 != 3 {
				row.VerifiedAt = &clock
			}
			if err := store.DB.Create(row).Error; err != nil {
				t.Fatal(err)
			}
		}
		cfg := Config{Store: store, Regions: []string{"us-east", "eu-west"}, HeartbeatInterval: 10 * time.Second, OfflineMisses: 3,
			ReservationTTL: 20 * time.Second, CheckpointEvery: 40, Now: func() time.Time { return clock }}
		leader, err := New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		fcfg := cfg
		fcfg.Follower = true
		follower, err := New(ctx, fcfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := follower.apply(ctx, market.Command{Kind: market.KindTick}); !errors.Is(err, ErrFollower) {
			t.Fatalf("a write to the follower: %v, want ErrFollower", err)
		}
		if err := follower.Run(ctx); !errors.Is(err, ErrFollower) {
			t.Fatalf("running the follower as a broker: %v, want ErrFollower", err)
		}
		for _, p := range providers {
			if err := leader.SetPrice(ctx, p, "H100", 2_000_000); err != nil {
				t.Fatal(err)
			}
		}

		r := rand.New(rand.NewPCG(9, 9))
		suspended := map[string]bool{}
		var orders []string
		seqs := map[string]uint64{}
		published := models.LeaderRecord{Term: -1}
		catchUps, resyncs, compared, withHolds := 0, 0, 0, 0
		for step := range 900 {
			clock = clock.Add(time.Duration(r.IntN(3000)) * time.Millisecond)
			switch k := r.IntN(20); {
			case k < 12:
				id := fmt.Sprintf("m%02d", r.IntN(machines))
				if r.IntN(4) == 0 {
					break // this machine misses a beat
				}
				var gpus []protocol.GPU
				for g := range 4 {
					gpus = append(gpus, protocol.GPU{Index: g, UUID: fmt.Sprintf("GPU-%s-%d", id, g), Name: "NVIDIA H100 80GB HBM3",
						Class: "H100", MemoryTotalMiB: 81_559, Free: r.IntN(4) != 0})
				}
				seqs[id]++
				rtt := map[string]int64{"us-east": int64(5 + r.IntN(3)*10), "eu-west": int64(70 + r.IntN(2)*20)}
				m := leader.machines[id]
				prov := providers[int(id[2]-'0')%3]
				if m != nil {
					prov = m.providerID
				}
				err := leader.MachineBeat(ctx, Beat{MachineID: id, AgentID: "agent-" + id, ProviderID: prov, Heartbeat: &protocol.Heartbeat{
					AgentID: "agent-" + id, Seq: seqs[id], GPUs: gpus, RTTms: rtt, CUDAVersion: "12.4", DriverVersion: "550.54",
					ProviderAddress: "hwy1" + prov}})
				if err != nil {
					t.Fatalf("step %d: beat %s: %v", step, id, err)
				}
			case k < 13:
				p := providers[r.IntN(3)]
				if err := leader.SetPrice(ctx, p, "H100", highway.Amount(1_000_000+r.IntN(8)*250_000)); err != nil {
					t.Fatal(err)
				}
			case k < 14:
				p := providers[r.IntN(3)]
				suspended[p] = !suspended[p]
				if err := leader.SetSuspended(ctx, p, suspended[p]); err != nil {
					t.Fatal(err)
				}
			case k < 17:
				id := fmt.Sprintf("o%d", step)
				_, perr := leader.apply(ctx, market.Command{Kind: market.KindPlaceOrder, Order: id, Buyer: "buyer", Type: market.GoodTilCancelled,
					Model: "H100", GPUs: int64(1 + r.IntN(2)), Price: 3_000_000, Region: "us-east", MaxRTTms: 100, Hours: 1, ExpiresAt: clock.Add(time.Minute).UnixMilli()})
				if perr != nil {
					t.Fatalf("step %d: order: %v", step, perr)
				}
				orders = append(orders, id)
			case k < 18 && len(orders) > 0:
				_, _ = leader.apply(ctx, market.Command{Kind: market.KindConfirmLease, Order: orders[r.IntN(len(orders))]})
			case k < 19 && len(orders) > 0:
				_, _ = leader.apply(ctx, market.Command{Kind: market.KindReleaseLease, Order: orders[r.IntN(len(orders))]})
			default:
				_, _ = leader.apply(ctx, market.Command{Kind: market.KindTick})
			}
			leader.mu.Lock()
			if err := leader.flushLocked(ctx); err != nil {
				t.Fatal(err)
			}
			leader.mu.Unlock()
			leader.w.checkpoints.Wait()

			// The follower catches up now and then: a long gap lets the
			// leader compact the entries it stood at.
			if r.IntN(12) != 0 && step != 899 {
				continue
			}
			err := follower.catchUp(ctx, &published)
			if errors.Is(err, errLogGap) {
				resyncs++
				err = follower.resync(ctx)
			}
			if err != nil {
				t.Fatalf("step %d: catch up: %v", step, err)
			}
			catchUps++
			if follower.w.seq != leader.w.seq || follower.w.engine.StateDigest() != leader.w.engine.StateDigest() {
				t.Fatalf("step %d: the follower is at entry %d, the leader at %d (engines equal %v)", step, follower.w.seq, leader.w.seq,
					follower.w.engine.StateDigest() == leader.w.engine.StateDigest())
			}
			compareViews(t, step, leader, follower)
			compared++
			if st := leader.Stats(); st.Reservations+st.Leases > 0 && st.Listed > 0 {
				withHolds++
			}
		}
		if resyncs == 0 || catchUps < 40 {
			t.Fatalf("%d catch-ups, %d of them resynced after compaction: the stream did not exercise the follower", catchUps, resyncs)
		}
		if withHolds < 10 {
			t.Fatalf("only %d of %d comparisons had offers listed and GPUs held", withHolds, compared)
		}
		t.Logf("%d catch-ups compared equal (%d after compaction, %d with GPUs held); final market %+v", compared, resyncs, withHolds, leader.Stats())
	})
}

// compareViews checks that the follower shows exactly what the leader
// shows.
func compareViews(t *testing.T, step int, leader, follower *Broker) {
	t.Helper()
	filters := []highway.OfferFilter{{}, {Sort: "rtt", Region: "eu-west"}, {Sort: "reliability"}, {Count: 2, MaxPrice: 2_000_000},
		{Region: "us-east", MaxRTTms: 10, Limit: 3}, {Offset: 2, Limit: 4}}
	for _, f := range filters {
		lo, lc := leader.Offers(f)
		fo, fc := follower.Offers(f)
		if !reflect.DeepEqual(lo, fo) || lc != fc {
			t.Fatalf("step %d: offers %+v:\nleader   %+v (%q)\nfollower %+v (%q)", step, f, lo, lc, fo, fc)
		}
	}
	for i := range 12 {
		id := fmt.Sprintf("m%02d", i)
		lo, lok := leader.Offer(id)
		fo, fok := follower.Offer(id)
		if lok != fok || !reflect.DeepEqual(lo, fo) {
			t.Fatalf("step %d: offer %s: leader %+v %v, follower %+v %v", step, id, lo, lok, fo, fok)
		}
	}
	if ls, fs := leader.Summary(), follower.Summary(); !reflect.DeepEqual(ls, fs) {
		t.Fatalf("step %d: summary:\nleader   %+v\nfollower %+v", step, ls, fs)
	}
}
