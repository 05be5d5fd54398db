package market

import "slices"

// Listing is what the engine holds for one machine. A view of the market
// built from the engine alone reads it: a standby replica's, kept current
// by replaying the leader's log, and the leader's own right after a
// takeover, before the agents' next beats.
type Listing struct {
	// Upsert is the listing as last upserted (Kind KindUpsertMachine,
	// Now zero): relisting the same Command changes nothing.
	Upsert Command
	// Free and Held are the idle GPUs the agent last reported and the GPUs
	// in live reservations or leases (bit i: the machine's i-th offered
	// GPU).
	Free, Held uint64
	// Spot is the held GPUs that run interruptible leases (on-demand
	// orders may preempt them).
	Spot    uint64
	Online  bool
	Healthy bool
	// Delisted: the machine was removed but still has GPUs held, which
	// stay until their leases end.
	Delisted bool
	// Suspended: the machine's provider is suspended.
	Suspended bool
}

// Listing returns machine id's listing; false when the engine does not
// hold the machine.
func (e *Engine) Listing(id string) (Listing, bool) {
	s, ok := e.machineSlot(id)
	if !ok {
		return Listing{}, false
	}
	m := e.mach(s)
	p := &e.providers[m.provider]
	return Listing{
		Upsert: Command{Kind: KindUpsertMachine, Machine: m.id, Provider: p.id, Model: e.cfg.Models[m.model],
			GPUs: int64(m.gpus), VRAMGiB: int64(m.vram), Region: e.cfg.Regions[m.region], Price: m.price,
			ReliabilityBps: int64(m.rel), Verified: m.verified, RTTms: slices.Clone(m.rtt[:e.nR]),
			SpotFloor: m.spotFloor, NoticeMs: m.notice},
		Free: m.free, Held: m.held, Spot: m.spot, Online: m.online, Healthy: m.healthy, Delisted: m.delisted, Suspended: p.suspended,
	}, true
}

// HoldsLease says whether the engine holds GPUs for order id as a
// confirmed lease (false once it was released or preempted).
func (e *Engine) HoldsLease(id string) bool {
	s, ok := e.orderSlot(id)
	return ok && e.ord(s).state == stLeased
}
