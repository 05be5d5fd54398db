package broker

import (
	"context"
	"fmt"
	"strconv"
	"strings"
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

// Offers returns exactly the reference order (filter, then full sort by
// the rule's keys and id), page by page, whichever selection path it takes.
func TestOffersMatchReference(t *testing.T) {
	regions := []string{"us-east", "eu-west", "ap-south"}
	b := &Broker{cfg: Config{Regions: regions}, machines: map[string]*machineState{}, byModel: map[string]map[string]*machineState{}}
	modelsList := []string{"H100", "A100"}
	for i := 0; i < 400; i++ {
		m := &machineState{id: fmt.Sprintf("m%03d", (i*7919)%1000), model: modelsList[i%2], vramGiB: int64(40 + 40*(i%2)),
			region: regions[i%3], rtts: []uint16{uint16(5 + i%50), uint16(30 + i%70), market.MaxRTTms}, verified: i%11 != 0,
			online: i%13 != 0, inEngine: true, offered: []int{0, 1, 2, 3}, free: uint64(i % 16), held: uint64(i % 3)}
		m.listed = market.Command{Price: int64(1000 + (i*37)%200), ReliabilityBps: int64(9000 + (i*13)%1001)}
		b.machines[m.id] = m
		if b.byModel[m.model] == nil {
			b.byModel[m.model] = map[string]*machineState{}
		}
		b.byModel[m.model][m.id] = m
	}
	for _, f := range []OfferFilter{
		{}, {Model: "H100", Count: 2, Region: "eu-west", MaxRTTms: 60}, {Sort: "rtt", Region: "us-east"},
		{Sort: "reliability", MinReliability: 9500, MaxPrice: 1150}, {Model: "A100", MinVRAMGiB: 80, Sort: "rtt"},
	} {
		// The reference: everything, one page.
		all := f
		all.Offset, all.Limit = 0, 100_000
		want, _ := b.Offers(all)
		ids := make([]string, 0, len(want))
		for _, o := range want {
			ids = append(ids, o.ID)
		}
		// Offers sorted fully must be in the rule's order.
		for i := 1; i < len(want); i++ {
			if offerKeyLess(f, want[i], want[i-1]) {
				t.Fatalf("%+v: %s before %s out of order", f, want[i-1].ID, want[i].ID)
			}
		}
		// Paged (top-K path for small pages) must give the same sequence.
		var got []string
		page := f
		page.Limit = 7
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
		if strings.Join(got, ",") != strings.Join(ids, ",") {
			t.Fatalf("%+v: paged %v, want %v", f, got, ids)
		}
	}
}

// offerKeyLess is the rule's order restated for the test.
func offerKeyLess(f OfferFilter, a, c Offer) bool {
	rtt := func(o Offer) int64 {
		r := f.Region
		if r == "" {
			r = o.Region
		}
		if v, ok := o.RTTms[r]; ok {
			return v
		}
		return market.MaxRTTms
	}
	ka := []int64{a.PricePerGPUHour, rtt(a), -a.ReliabilityBps}
	kc := []int64{c.PricePerGPUHour, rtt(c), -c.ReliabilityBps}
	switch f.Sort {
	case "rtt":
		ka[0], ka[1], kc[0], kc[1] = ka[1], ka[0], kc[1], kc[0]
	case "reliability":
		ka = []int64{-a.ReliabilityBps, rtt(a), a.PricePerGPUHour}
		kc = []int64{-c.ReliabilityBps, rtt(c), c.PricePerGPUHour}
	}
	for i := range ka {
		if ka[i] != kc[i] {
			return ka[i] < kc[i]
		}
	}
	return a.ID < c.ID
}
