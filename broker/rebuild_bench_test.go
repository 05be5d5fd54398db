package broker

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/highway-compute/highway/market"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
)

// BenchmarkEngineRebuildFromDatabase is a takeover's engine rebuild as the
// broker does it, on PostgreSQL (SQLite where no server answers): 100 000
// live GPUs (12 500 machines of 8 over 10 models × 20 regions, a quarter of
// their GPUs leased), the newest checkpoint read and restored, and a tail
// of CheckpointEvery logged heartbeats read and replayed.
func BenchmarkEngineRebuildFromDatabase(b *testing.B) {
	const machines, tail = 12_500, 10_000
	dsn := dbtest.PostgresDSN(b)
	store := dbtest.Open(b, dsn)
	cfg := Config{Store: store, Logger: slog.New(slog.DiscardHandler), CheckpointEvery: tail,
		HeartbeatInterval: 10 * time.Second, OfflineMisses: 3, ReservationTTL: time.Minute}
	for i := range 20 {
		cfg.Regions = append(cfg.Regions, fmt.Sprintf("region-%02d", i))
	}
	for i := range 10 {
		cfg.Models = append(cfg.Models, fmt.Sprintf("gpu-%02d", i))
	}
	br := &Broker{cfg: cfg, store: store, log: cfg.Logger}
	e, err := market.NewEngine(br.engineConfig())
	if err != nil {
		b.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	rtts := make([]uint16, 20)
	for i := range rtts {
		rtts[i] = uint16(3 + 7*i)
	}
	apply := func(c market.Command) {
		c.Now = now
		if _, err := e.Apply(&c); err != nil {
			b.Fatalf("%s: %v", c.Kind, err)
		}
	}
	for i := range machines {
		apply(market.Command{Kind: market.KindUpsertMachine, Machine: fmt.Sprintf("machine-%05d", i), Provider: fmt.Sprintf("provider-%03d", i%500),
			Model: cfg.Models[i%10], GPUs: 8, VRAMGiB: 80, Region: cfg.Regions[(i/10)%20], RTTms: rtts, Price: int64(900_000 + i%1000), Verified: true})
	}
	for i := range machines / 2 {
		apply(market.Command{Kind: market.KindPlaceOrder, Order: fmt.Sprintf("order-%05d", i), Buyer: "buyer", Type: market.FillOrKill,
			Model: cfg.Models[i%10], GPUs: 4, Region: cfg.Regions[0], Price: 2_000_000, MaxRTTms: 1000, Hours: 1})
		apply(market.Command{Kind: market.KindConfirmLease, Order: fmt.Sprintf("order-%05d", i)})
	}
	ctx := context.Background()
	const seq = 1_000_000 // the log's history before the checkpoint is compacted away
	if err := store.SaveMarketCheckpoint(ctx, seq, base64.StdEncoding.EncodeToString(e.Snapshot(nil)), time.Now()); err != nil {
		b.Fatal(err)
	}
	var entries []models.MarketLogEntry
	for i := range tail {
		now += 1
		c := market.Command{Kind: market.KindHeartbeat, Now: now, Machine: fmt.Sprintf("machine-%05d", i%machines), Free: 0xFF, Healthy: true}
		if _, err := e.Apply(&c); err != nil {
			b.Fatal(err)
		}
		entries = append(entries, models.MarketLogEntry{Seq: seq + 1 + int64(i), Command: base64.StdEncoding.EncodeToString(market.MarshalCommand(nil, &c))})
	}
	if err := store.AppendMarketLog(ctx, entries); err != nil {
		b.Fatal(err)
	}
	want := e.StateDigest()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		r, err := br.rebuild(ctx)
		took := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if r.replayed != tail || r.engine.StateDigest() != want {
			b.Fatalf("rebuilt %d commands, state equal %v", r.replayed, r.engine.StateDigest() == want)
		}
		b.ReportMetric(float64(took.Microseconds())/1000, "BENCH:engine_rebuild_db_ms:ms")
	}
}
