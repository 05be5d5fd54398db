package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
	"github.com/highway-compute/highway/protocol"
)

// A beat whose GPUs are the machine's stored ones is stored behind: it is
// queued as the request decoded it and converted for the row only when the
// queue is flushed. The row must then hold that beat's readings, every
// field of every GPU, not the first beat's.
func TestQueuedBeatStoresItsGPUs(t *testing.T) {
	srv := startServer(t, dbtest.SQLiteDSN(t), accounts.Config{})
	ctx := context.Background()
	u, _, err := accounts.New(srv.Store, accounts.Config{Hash: cheapHash}).Signup(ctx,
		accounts.SignupInput{Email: "p@example.com", Password: "0123456789", Provider: true}, "127.0.0.1", "test")
	if err != nil {
		t.Fatal(err)
	}
	id, key := registerTestAgent(t, srv, u.ID, "queued")
	_, inv := fakeGPUs(t, "dgxh100", "queued")

	send := func(seq uint64, gpus []protocol.GPU) {
		t.Helper()
		hb := protocol.Heartbeat{AgentID: id, Seq: seq, BootID: "boot", SentAt: time.Now().UnixMilli(), AgentVersion: "test", Simulated: true, GPUs: gpus}
		if code := postBeat(t, srv, id, key, hb); code != http.StatusOK {
			t.Fatalf("beat %d: %d", seq, code)
		}
	}
	first := append([]protocol.GPU(nil), inv.GPUs...)
	send(1, first) // a machine's first beat is stored at once
	second := append([]protocol.GPU(nil), inv.GPUs...)
	for i := range second {
		g := &second[i]
		g.MemoryUsedMiB, g.UtilizationPct, g.TemperatureC = uint64(1000+i), uint32(50+i), uint32(60+i)
		g.PowerMW, g.ECCUncorrected, g.Free, g.LeaseID = uint32(300_000+i), uint64(i), i%2 == 0, ""
	}
	send(2, second) // the same GPUs: queued

	a, err := srv.Store.AgentByID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var m *models.Machine
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if m, err = srv.Store.MachineByID(ctx, a.MachineID); err != nil {
			t.Fatal(err)
		}
		if len(m.GPUs) == len(second) && m.GPUs[0].MemoryUsedMiB == second[0].MemoryUsedMiB {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the queued beat was not stored: %+v", m.GPUs)
		}
	}
	for i, g := range second {
		s := m.GPUs[i]
		if s.Idx != g.Index || s.UUID != g.UUID || s.Name != g.Name || s.Class != protocol.NormalizeClass(g.Name) ||
			s.MemoryTotalMiB != g.MemoryTotalMiB || s.MemoryUsedMiB != g.MemoryUsedMiB || s.UtilizationPct != g.UtilizationPct ||
			s.TemperatureC != g.TemperatureC || s.PowerMW != uint64(g.PowerMW) || s.ECCUncorrected != g.ECCUncorrected || s.Free != g.Free {
			t.Fatalf("GPU %d stored as %+v, beat had %+v", i, s, g)
		}
	}
	if a, _ := srv.Store.AgentByID(ctx, id); a.LastSeq != 2 {
		t.Fatalf("stored seq %d, want 2", a.LastSeq)
	}
}
