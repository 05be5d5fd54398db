package broker

import (
	"context"
	"errors"
	"slices"
	"sort"
	"time"

	"github.com/highway-compute/highway/market"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/protocol"
)

// machineState is the broker's live view of a machine: what the engine
// was last told about it, plus what pages show.
type machineState struct {
	id, providerID, agentID string
	providerAddress         string
	hostname, cuda, driver  string
	simulated               bool
	// gpus are the machine's GPUs by NVML index; offered are the indexes
	// of the listed model's GPUs, in order: bit i of an engine mask is
	// offered[i].
	gpus     []protocol.GPU
	offered  []int
	model    string
	vramGiB  int64
	region   string
	rtts     []uint16
	verified bool
	// measured is the verification proof's rate per GPU, milli-H100 (0:
	// not measured).
	measured int64
	// listed is what the engine holds for this machine (zero: not there).
	listed   market.Command
	inEngine bool
	online   bool
	held     uint64
	// free is the offered GPUs the agent reports idle (bit i: offered[i]).
	free      uint64
	lastBeat  time.Time
	firstSeen time.Time
	// uptime is the online time of the machine's last days (uptime.go);
	// uptimeFrom is the first day credited since the last flush (0: none).
	uptime     uptimeRing
	uptimeFrom int32
	// verifying is the outstanding verification challenge's assignment id.
	verifying   uint64
	verifyAfter time.Time
	suspended   bool
	// epochsCleared and epochsMissed are the machine's settled epochs in
	// the reliability window (from the chain indexer).
	epochsCleared, epochsMissed int64
	// indexed is the model whose browse rows hold this machine at slot
	// ("" when in none).
	indexed string
	slot    int
}

// machineFromRow is a machine as its stored row describes it.
func machineFromRow(m *models.Machine) *machineState {
	st := &machineState{id: m.ID, providerID: m.ProviderID, providerAddress: m.ProviderAddress, hostname: m.Hostname,
		cuda: m.CUDAVersion, driver: m.DriverVersion, simulated: m.Simulated, verified: m.VerifiedAt != nil,
		measured: m.MeasuredMilliH100, suspended: m.SuspendedAt != nil, firstSeen: m.CreatedAt}
	for _, g := range m.GPUs {
		st.gpus = append(st.gpus, protocol.GPU{Index: g.Idx, UUID: g.UUID, Name: g.Name, Class: g.Class,
			MemoryTotalMiB: g.MemoryTotalMiB, Free: g.Free})
	}
	return st
}

// addMachineLocked adds a machine from its row, its offer shaped from
// the GPUs stored with it (the engine's listing, where it has one, is
// adopted by the caller), so a lease matched before the machine's next
// beat still knows which GPUs it offers.
func (b *Broker) addMachineLocked(row *models.Machine) *machineState {
	m := machineFromRow(row)
	b.machines[m.id] = m
	b.shapeLocked(m, nil)
	return m
}

// Beat is one applied heartbeat, as the broker needs it.
type Beat struct {
	MachineID, AgentID, ProviderID string
	Heartbeat                      *protocol.Heartbeat
}

// MachineBeat feeds a heartbeat Heartbeat has checked to the engine: the listing (re-sent only when it changed) and the free GPUs.
// A machine not yet verified gets its verification challenge.
func (b *Broker) MachineBeat(ctx context.Context, bt Beat) error {
	hb := bt.Heartbeat
	b.mu.Lock()
	defer b.mu.Unlock()
	m := b.machines[bt.MachineID]
	if m == nil {
		row, err := b.store.MachineByID(ctx, bt.MachineID)
		if err != nil {
			return err
		}
		// Shaped by this beat's GPUs and RTTs below.
		m = machineFromRow(row)
		b.machines[m.id] = m
	}
	now := b.now()
	b.creditBeatLocked(m, now)
	m.lastBeat = now
	m.agentID, m.providerID = bt.AgentID, bt.ProviderID
	m.cuda, m.driver, m.simulated = hb.CUDAVersion, hb.DriverVersion, hb.Simulated
	addrChanged := hb.ProviderAddress != m.providerAddress
	m.providerAddress = hb.ProviderAddress
	// Copied into the machine's own slice: hb is the request's, and the
	// machine's GPUs are read only under b.mu.
	m.gpus = append(m.gpus[:0], hb.GPUs...)
	prevRegion := m.region
	b.shapeLocked(m, hb.RTTms)
	if addrChanged || m.region != prevRegion {
		go func(id, addr, region string) {
			if err := b.store.SetMachineListing(context.Background(), id, addr, region); err != nil {
				b.log.Warn("store machine listing", "machine", id, "err", err)
			}
		}(m.id, m.providerAddress, m.region)
	}
	b.relistLocked(ctx, m)
	m.free = 0
	for i, idx := range m.offered {
		if g := gpuAt(m.gpus, idx); g != nil && g.Free {
			m.free |= 1 << uint(i)
		}
	}
	if m.inEngine {
		hbc := market.Command{Kind: market.KindHeartbeat, Machine: m.id, Free: m.free, Healthy: len(m.gpus) > 0, RTTms: m.rtts}
		if _, err := b.applyLocked(ctx, hbc); err != nil {
			return err
		}
		m.online = true
	}
	b.maybeVerifyLocked(ctx, m)
	b.indexLocked(m)
	return nil
}

func gpuAt(gpus []protocol.GPU, idx int) *protocol.GPU {
	for i := range gpus {
		if gpus[i].Index == idx {
			return &gpus[i]
		}
	}
	return nil
}

// shapeLocked derives the machine's offer from its GPUs and RTTs: the
// most common GPU class (ties: the lower first index), its smallest VRAM,
// and the region it answers fastest. A machine mixing GPU models lists
// only its main model; mixed machines are rare and a buyer renting "4 ×
// H100" must get four H100s.
func (b *Broker) shapeLocked(m *machineState, rtt map[string]int64) {
	// Every heartbeat reshapes its machine, so the tally is a short list
	// on the stack (a machine has a class or two), not maps on the heap.
	type tally struct {
		class    string
		n, first int
	}
	var buf [4]tally
	classes := buf[:0]
	for _, g := range m.gpus {
		i := slices.IndexFunc(classes, func(t tally) bool { return t.class == g.Class })
		if i < 0 {
			classes = append(classes, tally{class: g.Class, first: g.Index})
			i = len(classes) - 1
		}
		classes[i].n++
	}
	var best *tally
	for i := range classes {
		c := &classes[i]
		if !slices.Contains(b.cfg.Models, c.class) {
			continue
		}
		if best == nil || c.n > best.n || (c.n == best.n && c.first < best.first) {
			best = c
		}
	}
	m.model, m.vramGiB = "", 0
	if best != nil {
		m.model = best.class
	}
	idx := m.offered[:0] // reused: read only under b.mu, as here
	for _, g := range m.gpus {
		if g.Class == m.model {
			idx = append(idx, g.Index)
			v := int64(protocol.GiB(g.MemoryTotalMiB))
			if m.vramGiB == 0 || v < m.vramGiB {
				m.vramGiB = v
			}
		}
	}
	sort.Ints(idx)
	if len(idx) > market.MaxGPUs {
		idx = idx[:market.MaxGPUs]
	}
	m.offered = idx
	if len(rtt) > 0 {
		m.rtts = make([]uint16, len(b.cfg.Regions))
		bestRTT := int64(-1)
		for i, r := range b.cfg.Regions {
			v, ok := rtt[r]
			if !ok || v > market.MaxRTTms {
				v = market.MaxRTTms
			}
			m.rtts[i] = uint16(v)
			if ok && (bestRTT < 0 || v < bestRTT) {
				bestRTT, m.region = v, r
			}
		}
	}
	if m.region == "" {
		m.region = b.cfg.Regions[0]
	}
	if m.rtts == nil {
		m.rtts = make([]uint16, len(b.cfg.Regions))
		for i := range m.rtts {
			m.rtts[i] = market.MaxRTTms
		}
	}
}

// relistLocked brings the engine's listing of m in line with its state:
// upserted when listable and changed, removed when no longer listable.
func (b *Broker) relistLocked(ctx context.Context, m *machineState) {
	price := b.prices[m.providerID][m.model]
	listable := m.model != "" && len(m.offered) > 0 && price > 0 && m.providerAddress != ""
	if !listable {
		if m.inEngine && m.held == 0 {
			if _, err := b.applyLocked(ctx, market.Command{Kind: market.KindRemoveMachine, Machine: m.id}); err == nil {
				m.inEngine, m.listed = false, market.Command{}
				b.indexLocked(m)
			}
		}
		return
	}
	rel := b.reliabilityBps(m)
	floor, notice := b.spotListing(m.providerID, m.model, price)
	want := market.Command{Kind: market.KindUpsertMachine, Machine: m.id, Provider: m.providerID, Model: m.model,
		GPUs: int64(len(m.offered)), VRAMGiB: m.vramGiB, Region: m.region, Price: price, ReliabilityBps: rel,
		Verified: m.verified, RTTms: m.rtts, SpotFloor: floor, NoticeMs: notice}
	if m.inEngine && sameListing(m.listed, want) {
		return
	}
	if _, err := b.applyLocked(ctx, want); err != nil {
		b.log.Warn("listing refused by the engine", "machine", m.id, "err", err)
		return
	}
	m.inEngine, m.listed = true, want
	b.indexLocked(m)
}

// sameListing compares listings, ignoring reliability changes under 1 %
// (re-listing on every beat would grow the log for nothing).
func sameListing(a, b market.Command) bool {
	d := a.ReliabilityBps - b.ReliabilityBps
	if d < 0 {
		d = -d
	}
	return a.Model == b.Model && a.GPUs == b.GPUs && a.VRAMGiB == b.VRAMGiB && a.Region == b.Region &&
		a.Price == b.Price && a.Verified == b.Verified && a.Provider == b.Provider && d < 100 && slices.Equal(a.RTTms, b.RTTms) &&
		a.SpotFloor == b.SpotFloor && a.NoticeMs == b.NoticeMs
}

// SetSuspended suspends or reinstates a provider: its offers stop (or
// resume) matching; running leases are not touched.
func (b *Broker) SetSuspended(ctx context.Context, providerID string, suspended bool) error {
	kind := market.KindReinstateProvider
	if suspended {
		kind = market.KindSuspendProvider
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, err := b.applyLocked(ctx, market.Command{Kind: kind, Provider: providerID}); err != nil &&
		!errors.Is(err, market.ErrAlreadySuspended) && !errors.Is(err, market.ErrNotSuspended) {
		return err
	}
	for _, m := range b.machines {
		if m.providerID == providerID {
			m.suspended = suspended
			b.indexLocked(m)
		}
	}
	b.notifyLocked()
	return nil
}
