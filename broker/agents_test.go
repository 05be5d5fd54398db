package broker

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"sync/atomic"
	"testing"
	"time"

	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/protocol"
)

// gatedAgents is an agentStore whose first AgentByID waits for a gate, so
// a test can hold one request inside its load while others go ahead.
type gatedAgents struct {
	key   string
	gate  chan struct{}
	calls atomic.Int32
}

func (s *gatedAgents) AgentByID(_ context.Context, id string) (*models.Agent, error) {
	if s.calls.Add(1) == 1 {
		<-s.gate
	}
	return &models.Agent{ID: id, MachineID: "m1", ProviderID: "p1", PublicKey: s.key}, nil
}

func (s *gatedAgents) MachineGPUs(context.Context, string) ([]models.GPU, error) { return nil, nil }
func (s *gatedAgents) GPUOwner(context.Context, string) (string, error)          { return "", nil }

// TestAgentCacheLoadsRacingABeatDoNotDeadlock: an agent's first two
// requests (its heartbeat and its poll arrive together) both find no
// entry and both load it. The later load used to install its entry
// holding the cache's lock while it waited for the first entry's beat
// lock, and the heartbeat holding that beat lock waited for the cache's
// lock to look up GPU owners: every request of every agent then hung (a
// CI failure: the test machine never came online). The lock order is now
// the same on both paths.
func TestAgentCacheLoadsRacingABeatDoNotDeadlock(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	st := &gatedAgents{key: base64.StdEncoding.EncodeToString(pub), gate: make(chan struct{})}
	c := newAgentCache(st, time.Now)
	ctx := context.Background()

	// The poll's load starts first and is held inside the database read.
	polled := make(chan *agentEntry, 1)
	go func() {
		e, err := c.get(ctx, "a1")
		if err != nil {
			t.Error(err)
		}
		polled <- e
	}()
	for st.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	// The heartbeat's load finishes and the beat holds its entry.
	e, err := c.lockCurrent(ctx, "a1")
	if err != nil {
		t.Fatal(err)
	}
	// The poll's load now finishes beside the held beat, which then looks
	// up GPU owners under the cache's lock.
	close(st.gate)
	time.Sleep(50 * time.Millisecond)
	beat := &protocol.Heartbeat{AgentID: "a1", BootID: "b", Seq: 1, GPUs: []protocol.GPU{{Index: 0, UUID: "GPU-1"}}}
	accepted := make(chan error, 1)
	go func() {
		err := c.accept(ctx, e, "a1", beat)
		e.beat.Unlock()
		accepted <- err
	}()
	for _, what := range []string{"heartbeat", "poll"} {
		select {
		case err := <-accepted:
			if err != nil {
				t.Fatalf("heartbeat refused: %v", err)
			}
			accepted = nil
		case got := <-polled:
			if got != e {
				t.Fatalf("the later load replaced the entry the beat advanced")
			}
			polled = nil
		case <-time.After(10 * time.Second):
			t.Fatalf("deadlock: the %s never finished", what)
		}
	}
	// The beat's continuity stands for the next one.
	if e, _ := c.get(ctx, "a1"); e.bootID != "b" || e.seq != 1 {
		t.Fatalf("continuity after the race: boot %q seq %d", e.bootID, e.seq)
	}
}

// TestAgentCacheReloadKeepsContinuity: an entry reloaded after its TTL
// keeps the boot and seq this process accepted (the database lags by a
// flush), and a heartbeat that still held the old entry starts over on
// the new one, so no accepted seq is lost to the swap.
func TestAgentCacheReloadKeepsContinuity(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	st := &gatedAgents{key: base64.StdEncoding.EncodeToString(pub), gate: make(chan struct{})}
	close(st.gate)
	now := time.Unix(1_000_000, 0)
	c := newAgentCache(st, func() time.Time { return now })
	ctx := context.Background()
	e, err := c.lockCurrent(ctx, "a1")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.accept(ctx, e, "a1", &protocol.Heartbeat{AgentID: "a1", BootID: "b", Seq: 7}); err != nil {
		t.Fatal(err)
	}
	e.beat.Unlock()

	now = now.Add(agentCacheTTL)
	fresh, err := c.get(ctx, "a1")
	if err != nil {
		t.Fatal(err)
	}
	if fresh == e || !e.replaced || fresh.bootID != "b" || fresh.seq != 7 {
		t.Fatalf("reload: new entry %v, old replaced %v, boot %q seq %d", fresh != e, e.replaced, fresh.bootID, fresh.seq)
	}
	// A replayed earlier seq is refused on the reloaded entry.
	cur, err := c.lockCurrent(ctx, "a1")
	if err != nil {
		t.Fatal(err)
	}
	defer cur.beat.Unlock()
	if cur != fresh {
		t.Fatal("lockCurrent returned the replaced entry")
	}
	if err := c.accept(ctx, cur, "a1", &protocol.Heartbeat{AgentID: "a1", BootID: "b", Seq: 7}); err == nil {
		t.Fatal("a seq already accepted was accepted again after the reload")
	}
}
