package market

import (
	"math/bits"
	"slices"
	"strings"
)

// naive is the reference matcher, the oracle of the differential test: the
// same semantics as Engine written as plainly as possible. Maps of
// pointers, every match a full scan of every machine in id order, and
// after every command every resting order is retried against every
// machine (the "resting orders are matched whenever they can be" rule taken
// literally, with no invariant to lean on). It shares only Command.Validate
// (stateless range checks) with the engine.
type naive struct {
	cfg       Config
	now       int64
	seq       uint64
	machines  map[string]*nMachine
	suspended map[string]bool
	orders    map[string]*nOrder
	events    []Event
}

type nMachine struct {
	id, provider, model, region                string
	gpus, vram, rel, price, listedAt, lastBeat int64
	free, held                                 uint64
	rtt                                        []uint16
	verified, healthy, online, delisted        bool
	spotFloor, notice                          int64
}

type nOrder struct {
	id, buyer, model, region, machine                  string
	typ                                                OrderType
	state                                              uint8
	lf                                                 bool
	count, minVRAM, maxPrice, maxRTT, hours, expiresAt int64
	seq                                                uint64
	mask                                               uint64
	price, resExpiry                                   int64
	spot                                               bool
	notice                                             int64
}

func newNaive(cfg Config) *naive {
	return &naive{cfg: cfg, machines: map[string]*nMachine{}, suspended: map[string]bool{}, orders: map[string]*nOrder{}}
}

func (n *naive) regionIdx(r string) int { return slices.Index(n.cfg.Regions, r) }

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func nAll(g int64) uint64 {
	if g >= 64 {
		return ^uint64(0)
	}
	return 1<<g - 1
}

func (n *naive) live(m *nMachine) bool {
	return !m.delisted && m.verified && m.online && m.healthy && !n.suspended[m.provider]
}

// spotLeases are m's confirmed interruptible leases, in preemption order.
func (n *naive) spotLeases(m *nMachine) []*nOrder {
	var out []*nOrder
	for _, id := range sortedKeys(n.orders) {
		if o := n.orders[id]; o.spot && o.state == stLeased && o.machine == m.id {
			out = append(out, o)
		}
	}
	slices.SortStableFunc(out, func(a, b *nOrder) int {
		if a.price != b.price {
			return int(a.price - b.price)
		}
		return int(b.seq) - int(a.seq)
	})
	return out
}

// avail is what an on-demand order may take: idle GPUs and those of
// interruptible leases.
func (n *naive) avail(m *nMachine) uint64 {
	a := m.free &^ m.held
	for _, o := range n.spotLeases(m) {
		a |= o.mask
	}
	return a
}

func (n *naive) listed(m *nMachine) bool { return n.live(m) && n.avail(m) != 0 }

func (n *naive) fits(o *nOrder, m *nMachine) bool {
	return n.listed(m) && (o.model == "" || o.model == m.model) && m.vram >= o.minVRAM &&
		int64(bits.OnesCount64(n.avail(m))) >= o.count && m.price <= o.maxPrice &&
		int64(m.rtt[n.regionIdx(o.region)]) <= o.maxRTT
}

// spotFits: bid o can have m, and whether only by preempting.
func (n *naive) spotFits(o *nOrder, m *nMachine) (bool, bool) {
	if m.spotFloor == 0 || o.maxPrice < m.spotFloor || !n.live(m) || (o.model != "" && o.model != m.model) ||
		m.vram < o.minVRAM || int64(m.rtt[n.regionIdx(o.region)]) > o.maxRTT {
		return false, false
	}
	have := int64(bits.OnesCount64(m.free &^ m.held))
	if have >= o.count {
		return true, false
	}
	for _, v := range n.spotLeases(m) {
		if v.price < min(o.maxPrice, m.price) {
			have += v.count
		}
	}
	return have >= o.count, true
}

func (n *naive) bestSpot(o *nOrder) *nMachine {
	var best *nMachine
	var bestKey []int64
	for _, id := range sortedKeys(n.machines) {
		m := n.machines[id]
		ok, pre := n.spotFits(o, m)
		if !ok {
			continue
		}
		p, rtt := min(o.maxPrice, m.price), int64(m.rtt[n.regionIdx(o.region)])
		key := []int64{0, p, rtt, -m.rel, m.listedAt}
		if o.lf {
			key = []int64{0, rtt, p, -m.rel, m.listedAt}
		}
		if pre {
			key[0] = 1
		}
		if best == nil || slices.Compare(key, bestKey) < 0 {
			best, bestKey = m, key
		}
	}
	return best
}

// rank is the rule as a tuple compared left to right.
func (n *naive) rank(o *nOrder, m *nMachine) []int64 {
	rtt := int64(m.rtt[n.regionIdx(o.region)])
	if o.lf {
		return []int64{rtt, m.price, -m.rel, m.listedAt}
	}
	return []int64{m.price, rtt, -m.rel, m.listedAt}
}

// best is a plain scan. Map order is harmless here: the rank ends in the
// machine id, a total order, so any iteration order gives the same winner.
func (n *naive) best(o *nOrder) *nMachine {
	var best *nMachine
	for _, m := range n.machines {
		if !n.fits(o, m) {
			continue
		}
		if best == nil {
			best = m
			continue
		}
		if c := slices.Compare(n.rank(o, m), n.rank(o, best)); c < 0 || (c == 0 && m.id < best.id) {
			best = m
		}
	}
	return best
}

func (n *naive) Apply(c *Command) ([]Event, error) {
	n.events = nil
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Now < n.now {
		return nil, ErrTimeWentBack
	}
	prev := n.now
	n.now = c.Now
	var err error
	switch c.Kind {
	case KindUpsertMachine:
		err = n.upsert(c)
	case KindRemoveMachine:
		m := n.machines[c.Machine]
		if m == nil || m.delisted {
			err = ErrMachineNotFound
			break
		}
		m.delisted = true
		if m.held == 0 {
			delete(n.machines, m.id)
		}
	case KindHeartbeat:
		err = n.heartbeat(c)
	case KindTick:
		n.tick()
	case KindSuspendProvider:
		if n.suspended[c.Provider] {
			err = ErrAlreadySuspended
			break
		}
		n.suspended[c.Provider] = true
	case KindReinstateProvider:
		if !n.suspended[c.Provider] {
			err = ErrNotSuspended
			break
		}
		n.suspended[c.Provider] = false
	case KindPlaceOrder:
		err = n.place(c)
	case KindCancelOrder:
		o := n.orders[c.Order]
		switch {
		case o == nil:
			err = ErrOrderNotFound
		case o.buyer != c.Buyer:
			err = ErrNotOwner
		case o.state == stResting:
			n.events = append(n.events, Event{Kind: EvOrderCancelled, Order: o.id})
			delete(n.orders, o.id)
		case o.state == stReserved:
			n.events = append(n.events, Event{Kind: EvOrderCancelled, Order: o.id, Machine: o.machine, GPUs: o.mask, Count: o.count})
			n.unhold(o)
		default:
			err = ErrWrongState
		}
	case KindConfirmLease:
		o := n.orders[c.Order]
		switch {
		case o == nil:
			err = ErrOrderNotFound
		case o.state != stReserved:
			err = ErrWrongState
		default:
			o.state = stLeased
			n.events = append(n.events, Event{Kind: EvLeaseConfirmed, Order: o.id, Machine: o.machine, GPUs: o.mask, Count: o.count})
		}
	case KindReleaseLease:
		o := n.orders[c.Order]
		switch {
		case o == nil:
			err = ErrOrderNotFound
		case o.state == stResting:
			err = ErrWrongState
		default:
			n.events = append(n.events, Event{Kind: EvLeaseReleased, Order: o.id, Machine: o.machine, GPUs: o.mask, Count: o.count})
			n.unhold(o)
		}
	}
	if err != nil {
		n.now = prev
		return nil, err
	}
	// Retry every resting order, highest max price first, then earliest:
	// on-demand orders, then interruptible bids, until a round matches
	// nothing (a preemption can give GPUs back).
	for progress := true; progress; {
		progress = false
		for _, spot := range []bool{false, true} {
			var resting []*nOrder
			for _, o := range n.orders { // sorted next by a total order (seq is unique)
				if o.state == stResting && o.spot == spot {
					resting = append(resting, o)
				}
			}
			slices.SortFunc(resting, func(a, b *nOrder) int {
				if a.maxPrice != b.maxPrice {
					return int(b.maxPrice - a.maxPrice)
				}
				return int(a.seq) - int(b.seq)
			})
			for _, o := range resting {
				m := n.best(o)
				if spot {
					m = n.bestSpot(o)
				}
				if m != nil {
					n.match(o, m)
					progress = true
				}
			}
		}
	}
	return n.events, nil
}

// unhold ends a reservation or lease and forgets the order.
func (n *naive) unhold(o *nOrder) {
	m := n.machines[o.machine]
	m.held &^= o.mask
	if m.delisted && m.held == 0 {
		delete(n.machines, m.id)
	}
	delete(n.orders, o.id)
}

func (n *naive) upsert(c *Command) error {
	if !slices.Contains(n.cfg.Models, c.Model) {
		return ErrUnknownModel
	}
	if !slices.Contains(n.cfg.Regions, c.Region) {
		return ErrUnknownRegion
	}
	if len(c.RTTms) != len(n.cfg.Regions) {
		return ErrBadRTT
	}
	m := n.machines[c.Machine]
	if m != nil {
		if m.provider != c.Provider {
			return ErrProviderMismatch
		}
		if m.held&^nAll(c.GPUs) != 0 {
			return ErrMachineBusy
		}
		if m.delisted {
			m.delisted, m.listedAt = false, n.now
		}
		m.free = m.free&nAll(c.GPUs) | nAll(c.GPUs)&^nAll(m.gpus)
	} else {
		m = &nMachine{id: c.Machine, provider: c.Provider, listedAt: n.now, lastBeat: n.now, online: true, healthy: true, free: nAll(c.GPUs)}
		n.machines[m.id] = m
	}
	m.model, m.region, m.gpus, m.vram, m.rel, m.price, m.verified = c.Model, c.Region, c.GPUs, c.VRAMGiB, c.ReliabilityBps, c.Price, c.Verified
	m.spotFloor, m.notice = c.SpotFloor, c.NoticeMs
	m.rtt = slices.Clone(c.RTTms)
	return nil
}

func (n *naive) heartbeat(c *Command) error {
	m := n.machines[c.Machine]
	if m == nil {
		return ErrMachineNotFound
	}
	if len(c.RTTms) != 0 && len(c.RTTms) != len(n.cfg.Regions) {
		return ErrBadRTT
	}
	if c.Free&^nAll(m.gpus) != 0 {
		return ErrBadFreeMask
	}
	m.free, m.healthy, m.lastBeat = c.Free, c.Healthy, n.now
	if len(c.RTTms) != 0 {
		m.rtt = slices.Clone(c.RTTms)
	}
	if !m.online {
		m.online = true
		n.events = append(n.events, Event{Kind: EvMachineOnline, Machine: m.id})
	}
	return nil
}

func (n *naive) tick() {
	type due struct {
		at int64
		id string
	}
	byDue := func(a, b due) int {
		if a.at != b.at {
			if a.at < b.at {
				return -1
			}
			return 1
		}
		return strings.Compare(a.id, b.id)
	}
	var ds []due
	for _, id := range sortedKeys(n.orders) {
		if o := n.orders[id]; o.state == stReserved && o.resExpiry <= n.now {
			ds = append(ds, due{o.resExpiry, id})
		}
	}
	slices.SortFunc(ds, byDue)
	for _, d := range ds {
		o := n.orders[d.id]
		n.events = append(n.events, Event{Kind: EvReservationExpired, Order: o.id, Machine: o.machine, GPUs: o.mask, Count: o.count})
		n.unhold(o)
	}
	window := n.cfg.MissedBeats * n.cfg.HeartbeatIntervalMs
	ds = ds[:0]
	for _, id := range sortedKeys(n.machines) {
		if m := n.machines[id]; m.online && m.lastBeat+window <= n.now {
			ds = append(ds, due{m.lastBeat + window, id})
		}
	}
	slices.SortFunc(ds, byDue)
	for _, d := range ds {
		n.machines[d.id].online = false
		n.events = append(n.events, Event{Kind: EvMachineOffline, Machine: d.id})
	}
	ds = ds[:0]
	for _, id := range sortedKeys(n.orders) {
		if o := n.orders[id]; o.state == stResting && o.expiresAt <= n.now {
			ds = append(ds, due{o.expiresAt, id})
		}
	}
	slices.SortFunc(ds, byDue)
	for _, d := range ds {
		n.events = append(n.events, Event{Kind: EvOrderExpired, Order: d.id})
		delete(n.orders, d.id)
	}
}

func (n *naive) place(c *Command) error {
	if n.orders[c.Order] != nil {
		return ErrDuplicateOrder
	}
	if c.Model != "" && !slices.Contains(n.cfg.Models, c.Model) {
		return ErrUnknownModel
	}
	if !slices.Contains(n.cfg.Regions, c.Region) {
		return ErrUnknownRegion
	}
	o := &nOrder{id: c.Order, buyer: c.Buyer, model: c.Model, region: c.Region, typ: c.Type, lf: c.LatencyFirst,
		count: c.GPUs, minVRAM: c.VRAMGiB, maxPrice: c.Price, maxRTT: c.MaxRTTms, hours: c.Hours, expiresAt: c.ExpiresAt,
		spot: c.Interruptible}
	var m *nMachine
	switch {
	case o.spot && c.Type == RentNow:
		m = n.machines[c.Machine]
		switch {
		case m == nil || !n.live(m):
			return ErrOfferNotFound
		case m.spotFloor == 0:
			return ErrNotInterruptible
		case o.maxPrice < m.spotFloor:
			return ErrBelowFloor
		}
		if ok, _ := n.spotFits(o, m); !ok {
			return ErrNoMatch
		}
	case o.spot:
		m = n.bestSpot(o)
		if m == nil && c.Type == FillOrKill {
			return ErrNoMatch
		}
	case c.Type == RentNow:
		m = n.machines[c.Machine]
		if m == nil || !n.listed(m) {
			return ErrOfferNotFound
		}
		if !n.fits(o, m) {
			return ErrNoMatch
		}
	default:
		m = n.best(o)
		if m == nil && c.Type == FillOrKill {
			return ErrNoMatch
		}
	}
	n.seq++
	o.seq = n.seq
	n.orders[o.id] = o
	if m != nil {
		n.match(o, m)
		return nil
	}
	o.state = stResting
	n.events = append(n.events, Event{Kind: EvOrderRested, Order: o.id})
	return nil
}

// lowBits is the n lowest set bits of mask.
func lowBits(mask uint64, n int64) uint64 {
	var out uint64
	for i := 0; i < 64 && int64(bits.OnesCount64(out)) < n; i++ {
		if mask&(1<<i) != 0 {
			out |= 1 << i
		}
	}
	return out
}

func (n *naive) match(o *nOrder, m *nMachine) {
	price := m.price
	if o.spot {
		price = min(o.maxPrice, m.price)
	}
	idle := m.free &^ m.held
	mask, at := lowBits(idle, o.count), int64(0)
	if int64(bits.OnesCount64(mask)) < o.count {
		// Preempt interruptible leases, lowest-paying first, then latest.
		pool := idle
		var victims []*nOrder
		for _, v := range n.spotLeases(m) {
			if int64(bits.OnesCount64(pool)) >= o.count {
				break
			}
			if !o.spot || v.price < price {
				pool |= v.mask
				victims = append(victims, v)
			}
		}
		mask = idle | lowBits(pool&^idle, o.count-int64(bits.OnesCount64(idle)))
		for _, v := range victims {
			at = max(at, v.notice)
		}
		at += n.now
		for _, v := range victims {
			n.events = append(n.events, Event{Kind: EvPreempted, Order: v.id, Machine: m.id, GPUs: v.mask, Count: v.count, At: at, By: o.id})
			m.held &^= v.mask
			delete(n.orders, v.id)
		}
	}
	m.held |= mask
	o.state, o.machine, o.mask, o.price = stReserved, m.id, mask, price
	if o.spot {
		o.notice = m.notice
	}
	o.resExpiry = max(n.now, at) + n.cfg.ReservationTTLms
	n.events = append(n.events, Event{Kind: EvMatched, Order: o.id, Machine: m.id, Provider: m.provider, GPUs: mask,
		Count: o.count, Price: price, Total: price * o.count * o.hours, RTTms: int64(m.rtt[n.regionIdx(o.region)]), Expiry: o.resExpiry,
		At: at, Interruptible: o.spot})
}
