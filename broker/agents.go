package broker

import (
	"context"
	"crypto/ed25519"
	"sync"
	"time"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/protocol"
)

// agentCache keeps what every signed agent request needs in memory — the
// agent's key and machine, and for heartbeats the last accepted boot, seq
// and GPU identities — so the hot path reads no database. Heartbeats are
// then persisted behind (queueHeartbeat), at most once a second per
// machine. Entries are reloaded after agentCacheTTL, so a revocation made
// in the database takes effect within it. The agent API is served by the
// broker's process (docs/deploy.md), so one process holds this state.
type agentCache struct {
	store agentStore
	now   func() time.Time

	mu     sync.Mutex
	agents map[string]*agentEntry
	// owners maps GPU UUIDs to the machine that reported them, so a
	// second machine claiming one is refused without a query.
	owners map[string]string
}

const agentCacheTTL = time.Minute

type agentEntry struct {
	key                   ed25519.PublicKey
	machineID, providerID string
	revoked               bool
	loaded                time.Time

	// beat serialises one agent's heartbeats: continuity is checked and
	// advanced atomically. replaced (under beat) marks an entry a reload
	// has superseded.
	beat     sync.Mutex
	bootID   string
	seq      uint64
	gpus     []protocol.GPU
	replaced bool
}

// agentStore is what the agent cache reads.
type agentStore interface {
	AgentByID(ctx context.Context, id string) (*models.Agent, error)
	MachineGPUs(ctx context.Context, machineID string) ([]models.GPU, error)
	GPUOwner(ctx context.Context, uuid string) (string, error)
}

func newAgentCache(store agentStore, now func() time.Time) *agentCache {
	return &agentCache{store: store, now: now, agents: map[string]*agentEntry{}, owners: map[string]string{}}
}

// get returns the agent's entry, loading it (and its machine's GPUs) from
// the database when missing or older than the TTL.
//
// Lock order: an entry's beat, then the cache's mu (accept takes them so,
// holding beat while it looks up GPU owners). A reload therefore takes
// the old entry's beat before mu, never while holding mu: two requests
// that both found no entry, or a reload beside a heartbeat, once
// deadlocked here (the heartbeat holding beat and waiting for mu, the
// reload holding mu and waiting for beat), and every agent request after
// them with it.
func (c *agentCache) get(ctx context.Context, id string) (*agentEntry, error) {
	c.mu.Lock()
	e := c.agents[id]
	c.mu.Unlock()
	if e != nil && c.now().Sub(e.loaded) < agentCacheTTL {
		return e, nil
	}
	a, err := c.store.AgentByID(ctx, id)
	if highway.ErrorCode(err) == highway.ENOTFOUND {
		return nil, protocol.ErrUnknownAgent
	}
	if err != nil {
		return nil, err
	}
	key, err := protocol.DecodePublicKey(a.PublicKey)
	if err != nil {
		return nil, err
	}
	gpus, err := c.store.MachineGPUs(ctx, a.MachineID)
	if err != nil {
		return nil, err
	}
	fresh := &agentEntry{key: ed25519.PublicKey(key), machineID: a.MachineID, providerID: a.ProviderID, revoked: a.RevokedAt != nil,
		loaded: c.now(), bootID: a.BootID, seq: a.LastSeq}
	for _, g := range gpus {
		fresh.gpus = append(fresh.gpus, protocol.GPU{Index: g.Idx, UUID: g.UUID})
	}
	if e != nil {
		e.beat.Lock()
		defer e.beat.Unlock()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.agents[id]; cur != e {
		// Another request loaded the agent meanwhile: its entry is as
		// new as this one and may already carry a beat, so it stands.
		return cur, nil
	}
	if e != nil {
		// Keep the continuity state this process advanced: the database
		// lags it by up to one flush. A heartbeat still holding the old
		// entry sees it replaced and starts over on this one.
		if e.bootID != "" && (e.bootID != fresh.bootID || e.seq > fresh.seq) {
			fresh.bootID, fresh.seq, fresh.gpus = e.bootID, e.seq, e.gpus
		}
		e.replaced = true
	}
	c.agents[id] = fresh
	for _, g := range fresh.gpus {
		c.owners[g.UUID] = fresh.machineID
	}
	return fresh, nil
}

// lockCurrent returns the agent's entry with its beat held, one a reload
// has not replaced meanwhile (so continuity advances where the next beat
// will look).
func (c *agentCache) lockCurrent(ctx context.Context, id string) (*agentEntry, error) {
	for {
		e, err := c.get(ctx, id)
		if err != nil {
			return nil, err
		}
		e.beat.Lock()
		if !e.replaced {
			return e, nil
		}
		e.beat.Unlock()
	}
}

// key is the verifier's key lookup.
func (c *agentCache) key(ctx context.Context, id string) (ed25519.PublicKey, error) {
	e, err := c.get(ctx, id)
	if err != nil {
		return nil, err
	}
	if e.revoked {
		return nil, protocol.ErrRevokedAgent
	}
	return e.key, nil
}

// accept checks a verified heartbeat against the agent's last one (same
// boot: a higher seq; the same UUID at each index) and against the other
// machines' GPUs, then records it. Called with e.beat held.
func (c *agentCache) accept(ctx context.Context, e *agentEntry, agentID string, hb *protocol.Heartbeat) error {
	if e.bootID != "" {
		prev := &protocol.Heartbeat{AgentID: agentID, BootID: e.bootID, Seq: e.seq, GPUs: e.gpus}
		if err := protocol.CheckContinuity(prev, hb); err != nil {
			return err
		}
	}
	for _, g := range hb.GPUs {
		owner, err := c.owner(ctx, g.UUID)
		if err != nil {
			return err
		}
		if owner != "" && owner != e.machineID {
			return &highway.Error{Code: highway.ECONFLICT, Field: "gpus", Message: "A GPU in this heartbeat belongs to another machine."}
		}
	}
	c.mu.Lock()
	for _, g := range hb.GPUs {
		c.owners[g.UUID] = e.machineID
	}
	c.mu.Unlock()
	e.bootID, e.seq = hb.BootID, hb.Seq
	e.gpus = e.gpus[:0]
	for _, g := range hb.GPUs {
		e.gpus = append(e.gpus, protocol.GPU{Index: g.Index, UUID: g.UUID})
	}
	return nil
}

// owner finds the machine a GPU UUID belongs to ("" if none yet).
func (c *agentCache) owner(ctx context.Context, uuid string) (string, error) {
	c.mu.Lock()
	m, ok := c.owners[uuid]
	c.mu.Unlock()
	if ok {
		return m, nil
	}
	m, err := c.store.GPUOwner(ctx, uuid)
	if err != nil {
		return "", err
	}
	if m != "" {
		c.mu.Lock()
		c.owners[uuid] = m
		c.mu.Unlock()
	}
	return m, nil
}

// AgentKey is the agent's public key for verifying its signed requests;
// revoked and unknown agents get the protocol's errors.
func (b *Broker) AgentKey(ctx context.Context, agentID string) (ed25519.PublicKey, error) {
	return b.agents.key(ctx, agentID)
}

// Heartbeat applies an agent's verified heartbeat: the server's own class
// for each GPU (from its NVML name, not the agent's word), continuity with
// the agent's last beat (same boot: a higher seq, the same UUID at each
// index) and GPU ownership across machines are checked; the machine's row
// is stored behind and the engine fed at once. Continuity is checked and
// advanced under the agent's own lock, and the engine fed inside it too,
// so two racing beats of one agent reach it in seq order.
func (b *Broker) Heartbeat(ctx context.Context, agentID string, hb *protocol.Heartbeat) error {
	for i := range hb.GPUs {
		if i > 0 && hb.GPUs[i].Name == hb.GPUs[i-1].Name {
			hb.GPUs[i].Class = hb.GPUs[i-1].Class // a machine's GPUs are mostly one model
			continue
		}
		hb.GPUs[i].Class = protocol.NormalizeClass(hb.GPUs[i].Name)
	}
	e, err := b.agents.lockCurrent(ctx, agentID)
	if err != nil {
		return err
	}
	defer e.beat.Unlock()
	if err := b.agents.accept(ctx, e, agentID, hb); err != nil {
		return err
	}
	u := models.HeartbeatUpdate{
		AgentID: agentID, MachineID: e.machineID, BootID: hb.BootID, Seq: hb.Seq, AgentVersion: hb.AgentVersion, DriverVersion: hb.DriverVersion,
		CUDAVersion: hb.CUDAVersion, Simulated: hb.Simulated, RTTs: hb.RTTms, Now: b.now(),
	}
	if b.gpusStored(e.machineID, hb.GPUs) {
		// Stored behind (flushed once a second): the request path
		// touches no database, and the GPUs are converted for the row
		// when it is written, once a flush, not once a beat.
		b.mail.queueBeat(u, hb.GPUs, hb.Leases)
	} else {
		// A machine's first beat, or one whose GPUs changed, is stored
		// before the engine lists its GPUs: a leader that took over
		// between the two would otherwise know the offer but not which
		// GPUs a lease on it runs on.
		u.GPUs = storedGPUs(hb.GPUs)
		if err := b.store.ApplyHeartbeat(ctx, u); err != nil && highway.ErrorField(err) != "seq" {
			return err
		}
		b.leaseReports(ctx, agentID, hb.Leases)
	}
	return b.MachineBeat(ctx, Beat{MachineID: e.machineID, AgentID: agentID, ProviderID: e.providerID, Heartbeat: hb})
}

// storedGPUs is a beat's GPUs as the machine's row stores them.
func storedGPUs(gpus []protocol.GPU) []models.GPU {
	out := make([]models.GPU, 0, len(gpus))
	for _, g := range gpus {
		out = append(out, models.GPU{
			Idx: g.Index, UUID: g.UUID, Name: g.Name, Class: g.Class,
			MemoryTotalMiB: g.MemoryTotalMiB, MemoryUsedMiB: g.MemoryUsedMiB, UtilizationPct: g.UtilizationPct,
			TemperatureC: g.TemperatureC, PowerMW: uint64(g.PowerMW), PowerLimitMW: uint64(g.PowerLimitMW),
			ECCUncorrected: g.ECCUncorrected, PCIeGen: g.PCIeGen, PCIeWidth: g.PCIeWidth, MIGEnabled: g.MIGEnabled,
			Free: g.Free, LeaseID: g.LeaseID,
		})
	}
	return out
}

// gpusStored says whether machine id's stored GPUs are the beat's (by
// index and UUID), as far as this broker knows them.
func (b *Broker) gpusStored(id string, gpus []protocol.GPU) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	m := b.machines[id]
	if m == nil || len(m.gpus) != len(gpus) {
		return false
	}
	for i := range gpus {
		if m.gpus[i].Index != gpus[i].Index || m.gpus[i].UUID != gpus[i].UUID {
			return false
		}
	}
	return true
}
