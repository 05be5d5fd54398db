package market

import (
	"math/bits"
	"slices"
	"strings"
)

// Interruptible capacity (docs/matching.md, "Interruptible capacity").
//
// A provider may let a machine's idle GPUs be rented as interruptible at a
// floor of its own (Command.SpotFloor, at most the ask) with a preemption
// notice (Command.NoticeMs). A buyer bids (Command.Interruptible): the bid
// is the most per GPU-hour, and the lease pays the bid, capped at the ask
// (interruptible never costs more than on demand).
//
//   - A bid takes a live machine with a floor at or below it whose idle
//     GPUs, plus the GPUs of interruptible leases paying less than the bid
//     would pay there, are enough. Among those it takes, in order: one it
//     can have without preempting anyone; the lowest price it would pay
//     (or RTT first, latency-first); then the on-demand rule's RTT,
//     reliability, listing time and id.
//   - Resting bids are served highest bid first, then earliest, after the
//     resting on-demand orders, whenever anything that could let them
//     match has changed.
//   - An on-demand order sees the GPUs of confirmed interruptible leases as
//     available, exactly like idle ones (the book counts them), and takes
//     idle GPUs first. An on-demand lease or reservation, and an
//     interruptible reservation not yet confirmed, are never preempted.
//   - Preemption order on a machine: the lowest-paying lease first, then
//     the most recently placed, then the id; as many whole leases as the
//     order needs. The preempted lease leaves the engine at once (EvPreempted,
//     At = now + the longest notice among the leases preempted, each having
//     the notice its machine gave when it matched); the GPUs it had beyond the order's
//     return to the book; the order's reservation starts at At (EvMatched.At)
//     and lasts the reservation TTL after it.
//
// Scans here are linear in the machines with a floor and the resting
// bids: the spot market is a side market of the on-demand book, and the
// sweep runs only after a command that changed something it depends on
// (spotDirty), never on the common heartbeat.

// setSpot records machine s's interruptible terms and keeps spotMachines
// (by slot) in step.
func (e *Engine) setSpot(s uint32, floor, notice int64) {
	m := e.mach(s)
	i, had := slices.BinarySearch(e.spotMachines, s)
	switch {
	case floor > 0 && !had:
		e.spotMachines = slices.Insert(e.spotMachines, i, s)
	case floor == 0 && had:
		e.spotMachines = slices.Delete(e.spotMachines, i, i+1)
	}
	m.spotFloor, m.notice = floor, notice
	e.spotDirty = true
}

// spotPrice is what bid o pays on machine m.
func spotPrice(o *order, m *machine) int64 { return min(o.maxPrice, m.price) }

// spotFit says whether bid o can have machine m, and whether only by
// preempting leases that pay less.
func (e *Engine) spotFit(o *order, m *machine) (ok, preempt bool) {
	if m.spotFloor == 0 || o.maxPrice < m.spotFloor || !e.present(m) ||
		(o.model >= 0 && int32(m.model) != o.model) || int64(m.vram) < o.minVRAM || int64(m.rtt[o.region]) > o.maxRTT {
		return false, false
	}
	n := int64(bits.OnesCount64(m.idle()))
	if n >= o.count {
		return true, false
	}
	p := spotPrice(o, m)
	for _, v := range m.spots {
		if vo := e.ord(v); vo.price < p {
			n += vo.count
		}
	}
	return n >= o.count, n >= o.count
}

// bestSpot is the machine bid o takes, by the rule above.
func (e *Engine) bestSpot(o *order) (uint32, bool) {
	var (
		found, bestPre bool
		best           uint32
	)
	for _, s := range e.spotMachines {
		m := e.mach(s)
		ok, pre := e.spotFit(o, m)
		if !ok {
			continue
		}
		if found {
			if pre != bestPre {
				if pre {
					continue
				}
			} else {
				b := e.mach(best)
				if !e.better(o.latencyFirst, spotPrice(o, m), m.rtt[o.region], m.rel, s, spotPrice(o, b), b.rtt[o.region], b.rel, best) {
					continue
				}
			}
		}
		found, bestPre, best = true, pre, s
	}
	return best, found
}

// spotOffer is place's choice for a bid: the named offer (rent now) or
// the best machine; an error only for a rent-now bid it cannot place.
func (e *Engine) spotOffer(c *Command, o *order) (uint32, bool, error) {
	if c.Type != RentNow {
		s, ok := e.bestSpot(o)
		if !ok && c.Type == FillOrKill {
			return 0, false, ErrNoMatch
		}
		return s, ok, nil
	}
	s, ok := e.machineSlot(c.Machine)
	switch {
	case !ok || !e.present(e.mach(s)):
		return 0, false, ErrOfferNotFound
	case e.mach(s).spotFloor == 0:
		return 0, false, ErrNotInterruptible
	case o.maxPrice < e.mach(s).spotFloor:
		return 0, false, ErrBelowFloor
	}
	if ok, _ := e.spotFit(o, e.mach(s)); !ok {
		return 0, false, ErrNoMatch
	}
	return s, true, nil
}

// victims lists machine m's interruptible leases that order o may
// preempt, in preemption order: an on-demand order any of them, a bid
// those paying less than price.
func (e *Engine) victims(o *order, m *machine, price int64) []uint32 {
	var vs []uint32
	for _, v := range m.spots {
		if !o.spot || e.ord(v).price < price {
			vs = append(vs, v)
		}
	}
	slices.SortFunc(vs, func(a, b uint32) int {
		oa, ob := e.ord(a), e.ord(b)
		switch {
		case oa.price != ob.price:
			return cmpInt(oa.price, ob.price)
		case oa.seq != ob.seq:
			return cmpInt(int64(ob.seq), int64(oa.seq)) // the latest first
		}
		return strings.Compare(oa.id, ob.id)
	})
	return vs
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// lowest is the n lowest set bits of mask.
func lowest(mask uint64, n int64) uint64 {
	var out uint64
	for ; n > 0 && mask != 0; n-- {
		low := mask & -mask
		out |= low
		mask &^= low
	}
	return out
}

// takeGPUs picks order os's GPUs on machine ms, idle ones first (lowest
// numbered), preempting interruptible leases in preemption order for the
// rest; it returns the mask and when the GPUs are the order's (0: now).
// The caller holds the mask.
func (e *Engine) takeGPUs(os, ms uint32, price int64) (uint64, int64) {
	o, m := e.ord(os), e.mach(ms)
	idle := m.idle()
	if int64(bits.OnesCount64(idle)) >= o.count {
		return lowest(idle, o.count), 0
	}
	pool := idle
	var taken []uint32
	for _, v := range e.victims(o, m, price) {
		if int64(bits.OnesCount64(pool)) >= o.count {
			break
		}
		pool |= e.ord(v).mask
		taken = append(taken, v)
	}
	mask := idle | lowest(pool&^idle, o.count-int64(bits.OnesCount64(idle)))
	// Each lease gets at least the notice it was rented with; the order
	// waits for the longest.
	var notice int64
	for _, v := range taken {
		notice = max(notice, e.ord(v).notice)
	}
	at := e.now + notice
	for _, v := range taken {
		vo := e.ord(v)
		e.events = append(e.events, Event{Kind: EvPreempted, Order: vo.id, Machine: m.id, GPUs: vo.mask, Count: vo.count, At: at, By: o.id})
		e.unspot(v)
		m.held &^= vo.mask
		e.deleteOrder(v)
	}
	if pool&^mask != 0 {
		// The preempted leases' other GPUs come back to the book.
		e.changed = append(e.changed, ms)
		e.spotDirty = true
	}
	return mask, at
}

// spotLeased marks a confirmed interruptible lease's GPUs preemptible:
// on-demand orders may now take them.
func (e *Engine) spotLeased(os uint32) {
	o := e.ord(os)
	m := e.mach(o.machine)
	m.spot |= o.mask
	m.spots = append(m.spots, os)
	e.syncRow(o.machine, false, nil)
	e.changed = append(e.changed, o.machine)
	e.spotDirty = true
}

// unspot forgets a confirmed interruptible lease's preemptible GPUs (it
// ended or was preempted).
func (e *Engine) unspot(os uint32) {
	o := e.ord(os)
	m := e.mach(o.machine)
	m.spot &^= o.mask
	if i := slices.Index(m.spots, os); i >= 0 {
		m.spots = slices.Delete(m.spots, i, i+1)
	}
}

// spotLess is resting-bid priority: highest bid, then earliest.
func (e *Engine) spotLess(a, b uint32) int {
	oa, ob := e.ord(a), e.ord(b)
	if oa.maxPrice != ob.maxPrice {
		return cmpInt(ob.maxPrice, oa.maxPrice)
	}
	return cmpInt(int64(oa.seq), int64(ob.seq))
}

func (e *Engine) restSpot(os uint32) {
	i, _ := slices.BinarySearchFunc(e.spotRest, os, e.spotLess)
	e.spotRest = slices.Insert(e.spotRest, i, os)
}

func (e *Engine) unrestSpot(os uint32) {
	i, ok := slices.BinarySearchFunc(e.spotRest, os, e.spotLess)
	if !ok || e.spotRest[i] != os {
		panic("market: resting bids out of step with orders")
	}
	e.spotRest = slices.Delete(e.spotRest, i, i+1)
}

// spotSweep serves resting bids in priority order, one pass.
func (e *Engine) spotSweep() {
	if !e.spotDirty {
		return
	}
	e.spotDirty = false
	for i := 0; i < len(e.spotRest); {
		os := e.spotRest[i]
		if ms, ok := e.bestSpot(e.ord(os)); ok {
			e.unrest(os)
			e.match(os, ms)
			continue
		}
		i++
	}
}

// settle serves resting orders until nothing more can match: on-demand
// orders on the changed machines, then bids; a match that preempted gives
// GPUs back, which may serve either again.
func (e *Engine) settle() {
	for {
		ch := e.changed
		e.changed = e.changed2[:0]
		e.sweep(ch)
		e.changed2 = ch[:0]
		e.spotSweep()
		if len(e.changed) == 0 && (!e.spotDirty || len(e.spotRest) == 0) {
			return
		}
	}
}
