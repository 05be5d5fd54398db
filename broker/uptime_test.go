package broker

import (
	"context"
	"testing"
	"time"

	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
	"github.com/highway-compute/highway/protocol"
)

// Uptime is kept per UTC day and stored: a restarted marketplace reads
// it back (before, every restart dropped every machine's uptime to zero),
// days before the window age out, and a gap longer than the offline
// threshold is downtime. Machine m1 was first seen 40 days ago.
func TestUptimeSurvivesRestartAndAgesOut(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, store *models.Store) {
		ctx := context.Background()
		// 06:00 UTC, so the window is 29 whole days and 6 hours.
		clock := time.Date(2026, 3, 10, 6, 0, 0, 0, time.UTC)
		u := &models.User{Email: "p@example.com", PasswordHash: "x", IsProvider: true}
		if err := store.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		if err := store.DB.Create(&models.Machine{ID: "m1", ProviderID: u.ID, Hostname: "h", RTTJSON: "{}",
			CreatedAt: clock.Add(-40 * 24 * time.Hour), UpdatedAt: clock}).Error; err != nil {
			t.Fatal(err)
		}
		cfg := Config{Store: store, Regions: []string{"us-east"}, HeartbeatInterval: 10 * time.Second, OfflineMisses: 3,
			Now: func() time.Time { return clock }}
		b, err := New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		seq := uint64(0)
		beat := func(b *Broker) {
			t.Helper()
			seq++
			err := b.MachineBeat(ctx, Beat{MachineID: "m1", AgentID: "a1", ProviderID: u.ID, Heartbeat: &protocol.Heartbeat{
				AgentID: "a1", Seq: seq, GPUs: []protocol.GPU{{Index: 0, UUID: "GPU-1", Name: "NVIDIA H100 80GB HBM3", Class: "H100",
					MemoryTotalMiB: 81_559, Free: true}}, RTTms: map[string]int64{"us-east": 5}}})
			if err != nil {
				t.Fatal(err)
			}
		}
		// beatFor beats every 10 s for d.
		beatFor := func(b *Broker, d time.Duration) {
			t.Helper()
			for end := clock.Add(d); clock.Before(end); clock = clock.Add(10 * time.Second) {
				beat(b)
			}
			beat(b)
		}
		window := 29*24*time.Hour + 6*time.Hour
		bps := func(up time.Duration) int64 { return int64(up) * 10_000 / int64(window) }

		// Three days ago, 00:00 → 12:00 online; also 1 h just before that
		// midnight, so one run of beats spans two days.
		clock = time.Date(2026, 3, 6, 23, 0, 0, 0, time.UTC)
		beatFor(b, 13*time.Hour)
		// A silence of a minute (over 3 × 10 s) is downtime, then an hour
		// more online.
		clock = clock.Add(time.Minute)
		beatFor(b, time.Hour)
		clock = time.Date(2026, 3, 10, 6, 0, 0, 0, time.UTC)
		m := b.machines["m1"]
		up := 14 * time.Hour
		if got, want := b.uptimeBps(m), bps(up+cfg.HeartbeatInterval); got != want {
			t.Fatalf("uptime %d bps, want %d (14 h of %v)", got, want, window)
		}
		if d := m.uptime.get(dayOf(time.Date(2026, 3, 6, 0, 0, 0, 0, time.UTC))); d != uint32(time.Hour.Milliseconds()) {
			t.Fatalf("the hour before midnight was credited as %d ms to its own day", d)
		}

		// Stored, and read back by a restarted marketplace.
		b.flushUptime(ctx)
		b2, err := New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := b2.uptimeBps(b2.machines["m1"]), bps(up+cfg.HeartbeatInterval); got != want {
			t.Fatalf("after a restart: uptime %d bps, want %d", got, want)
		}
		rows, err := store.UptimeSince(ctx, 0)
		if err != nil || len(rows) != 2 {
			t.Fatalf("stored days %+v (%v), want 2", rows, err)
		}

		// A second write of the same days replaces, never adds.
		b.uptimeDirty["m1"] = struct{}{}
		b.machines["m1"].uptimeFrom = rows[0].Day
		b.flushUptime(ctx)
		again, _ := store.UptimeSince(ctx, 0)
		if len(again) != 2 || again[0] != rows[0] || again[1] != rows[1] {
			t.Fatalf("rewritten days %+v, want %+v", again, rows)
		}

		// 26 days on, 5 April: the window starts on 7 March, so the hour
		// on 6 March is out of it.
		clock = time.Date(2026, 4, 5, 6, 0, 0, 0, time.UTC)
		if got, want := b2.uptimeBps(b2.machines["m1"]), bps(13*time.Hour+cfg.HeartbeatInterval); got != want {
			t.Fatalf("a day aged out: uptime %d bps, want %d", got, want)
		}
		// A day later the stored 6 March is pruned with the next write
		// (the ring keeps one day before the window), 7 March is kept.
		clock = time.Date(2026, 4, 6, 6, 0, 0, 0, time.UTC)
		beat(b2)
		clock = clock.Add(10 * time.Second)
		beat(b2)
		b2.flushUptime(ctx)
		rows, _ = store.UptimeSince(ctx, 0)
		if len(rows) != 2 || rows[0].Day != dayOf(time.Date(2026, 3, 7, 0, 0, 0, 0, time.UTC)) || rows[1].Day != dayOf(clock) || rows[1].OnlineMS != 10_000 {
			t.Fatalf("after pruning: %+v, want 7 March and today's 10 s", rows)
		}

		// A write that fails is retried with the next flush.
		clock = clock.Add(10 * time.Second)
		beat(b2)
		if err := store.DB.Exec("ALTER TABLE machine_uptime RENAME TO machine_uptime_away").Error; err != nil {
			t.Fatal(err)
		}
		b2.flushUptime(ctx) // fails, and says so in the log
		if err := store.DB.Exec("ALTER TABLE machine_uptime_away RENAME TO machine_uptime").Error; err != nil {
			t.Fatal(err)
		}
		b2.flushUptime(ctx)
		rows, _ = store.UptimeSince(ctx, dayOf(clock))
		if len(rows) != 1 || rows[0].OnlineMS != 20_000 {
			t.Fatalf("after a failed write and a retry: %+v, want today's 20 s", rows)
		}
	})
}

// A machine seen for less than an hour counts as fully up; after that its
// window starts at first sight, not 30 days back.
func TestUptimeWindowStartsAtFirstSight(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	b := &Broker{cfg: Config{HeartbeatInterval: 10 * time.Second}, now: func() time.Time { return now }}
	m := &machineState{firstSeen: now.Add(-30 * time.Minute)}
	if got := b.uptimeBps(m); got != 10_000 {
		t.Fatalf("a newcomer: %d bps, want 10000", got)
	}
	m.firstSeen = now.Add(-2 * time.Hour)
	m.uptime.credit(now.Add(-90*time.Minute), now.Add(-30*time.Minute))
	// (1 h + one 10 s interval) of 2 h.
	if got, want := b.uptimeBps(m), int64(3610*10_000/7200); got != want {
		t.Fatalf("2 h old, 1 h up: %d bps, want %d", got, want)
	}
}
