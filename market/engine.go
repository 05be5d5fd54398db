package market

import (
	"math/bits"
	"slices"
	"strings"
)

// machine is one provider machine and its offer: all of its GPUs are one
// model (a machine with mixed GPUs registers one machine id per model).
type machine struct {
	// The fields a common heartbeat (no new RTTs, nothing changed) reads
	// and writes come first, on one cache line (a record is machineSize
	// bytes and pages are page-aligned): the id's key, which confirms a
	// lookup by id (idKey), then the beat's.
	keyLo, keyHi uint64
	// free: GPUs the agent reports idle; held: GPUs in a live reservation
	// or lease. Available = free &^ held. The agent sees a leased GPU as
	// busy, so a lease is never counted twice, and a GPU the agent marks
	// busy for its own reasons is simply not offered.
	free     uint64
	lastBeat int64
	// deadline is lastBeat + MissedBeats × interval. The beats heap may
	// hold an older deadline for the machine: a heartbeat only moves this
	// field (O(1)); Tick re-queues the machine when its stale heap entry
	// comes up. Deadlines only grow, so the heap never fires early. A
	// forgotten machine's entry likewise stays until it comes up (Tick
	// drops it) or a new machine takes the slot and inherits it.
	deadline int64
	gpus     uint8
	keyN     uint8

	alive, verified, healthy, online, delisted bool
	// indexed: the machine has an entry in books[ixBook] at ixPrice.
	indexed bool
	// suspended mirrors its provider's flag (suspend and reinstate visit
	// the provider's machines anyway), so that deciding whether the
	// machine is offered, on every book change and match, reads its own
	// first line and not also the provider's record.
	suspended bool

	region   uint8
	model    uint16
	vram     uint16
	rel      uint16
	provider uint32
	ixBook   uint32
	id       string
	held     uint64
	price    int64
	ixPrice  int64
	listedAt int64
	// idHash is the id's hash in the id table (keyOf), kept so that
	// forgetting the machine does not derive it again.
	idHash uint64
	rtt    [MaxRegions]uint16
	// Interruptible use (spot.go): the floor per GPU-hour (0: none), the
	// preemption notice, the GPUs held by confirmed interruptible leases
	// (a subset of held, and available to on-demand orders) and those
	// leases' order slots.
	spotFloor int64
	notice    int64
	spot      uint64
	spots     []uint32
	// ixChunk is the chunk its book row was put in: a hint (book.find).
	ixChunk *chunk
	// provPos is the machine's index in its provider's machine list, so
	// that forgetting it is O(1) (the last entry moves into its place)
	// however many machines the provider has.
	provPos uint32
	_       [machinePad]byte
}

// machineSize is a machine record's size: a whole number of cache lines,
// so that every record's first line holds its heartbeat fields
// (TestMachineLayout, which fails if the fields above change size: the
// pad assumes a 64-bit platform, as the engine's int64 state does).
const (
	machineSize = 256
	machinePad  = machineSize - 244
)

// named reports whether m's id is id, whose key is k: from the key alone
// when the id has one (no read of the id's bytes).
func (m *machine) named(k idKey, id string) bool {
	return m.keyN == k.n && m.keyLo == k.lo && m.keyHi == k.hi && (k.n != 0 || m.id == id)
}

// name gives machine s its id and files it in the id table.
func (e *Engine) name(s uint32, id string) {
	m := e.mach(s)
	k, h := e.machineKey(id)
	m.id, m.keyLo, m.keyHi, m.keyN, m.idHash = id, k.lo, k.hi, k.n, h
	e.machineIDs.insert(h, s)
}

type rowHint struct {
	ok   bool
	slot uint32
	c    *chunk
	i    int
}

type provider struct {
	id        string
	suspended bool
	machines  []uint32
}

const (
	stResting uint8 = iota + 1
	stReserved
	stLeased
)

type order struct {
	id string
	// key is a copy of id's first bytes (all of a UUID's 36) and idHash
	// its hash, beside the id's header: looking an order up by id, and
	// forgetting it, then read this line of the order alone, not the id's
	// bytes, which lie in their own allocation (a cache miss at scale, on
	// every confirmation, release and cancel).
	key          [orderKeyLen]byte
	idHash       uint64
	buyer        string
	typ          OrderType
	state        uint8
	latencyFirst bool
	region       uint8
	model        int32 // -1: any model
	count        int64
	minVRAM      int64
	maxPrice     int64
	maxRTT       int64
	hours        int64
	expiresAt    int64
	seq          uint64
	alive        bool
	// Set once matched.
	machine   uint32
	mask      uint64
	price     int64
	resExpiry int64
	// spot: an interruptible bid; startAt: when its GPUs are free of the
	// interruptible leases it preempted (0: at once).
	spot    bool
	startAt int64
	// notice is an interruptible lease's preemption notice, fixed when it
	// matched: the provider's later changes apply to new leases only.
	notice int64
}

// Engine is the order book, the resting orders, the reservations and the
// live capacity registry. Create it with NewEngine and feed it commands in
// log order through Apply, from one goroutine.
type Engine struct {
	cfg        Config
	nR, nM     int
	modelIdx   map[string]uint16
	regionIdx  map[string]uint8
	beatWindow int64

	now int64
	seq uint64

	// machines live in fixed-size pages so that growing to a million never
	// copies the table (and never leaves a dead copy for the GC and RSS).
	pages       [][]machine
	nMachines   int
	freeMachine []uint32
	machineIDs  idTable
	providers   []provider
	providerIdx map[string]uint32
	// orders live in pages like machines: a growing order table never
	// copies itself (a copy of a large table is a pause on the hot path).
	orderPages [][]order
	nOrders    int
	freeOrder  []uint32
	orderIDs   idTable
	// warmSink receives what ApplyBatch's warm-up loads, so they are not
	// optimised away; nothing reads it.
	warmSink uint64

	books []book // index model*nR + machine region
	// bookAsk and bookRTT mirror the book headers (book.ask, count-major:
	// bookAsk[(k-1)*len(books)+book]; the lowest RTT to each region,
	// region-major: bookRTT[r*len(books)+book]) in flat arrays, so choosing
	// the books to read touches a few cache lines even for an any-model
	// order over all 1 000 books. An empty book reads as unreachable
	// (MaxInt64, 0xFFFF).
	bookRTT []uint16
	bookAsk []int64
	// bookHead mirrors each book's first chunk (nil when empty): a match
	// reads a book's cheap end first, and reaching it through the book
	// header and its chunk list was two dependent cache misses before the
	// chunk's own; from here (8 KB for 1 000 books, in cache) it is none,
	// and the candidates' first chunks can be loaded together.
	bookHead []*chunk
	// modelAsk[(k-1)*nM+model] is the cheapest of the model's books' asks
	// for k GPUs (bookAsk above), exact: an any-model order skips every
	// book of a model that cannot beat its max price or the best found so
	// far from this one entry, instead of reading its nR book entries
	// (priceFirstWide).
	modelAsk []int64
	rest     []restList // index model; nM is "any model"
	resting  int

	beats, reservations, gtc deadlines

	// memo: the id key ApplyBatch derived for the command being applied.
	memo idMemo

	// hint is where bestOffer found its answer; match uses it to refresh
	// that row without searching the book. Valid only until the next book
	// change: match consumes it, Apply clears it.
	hint rowHint

	// spotRest: resting interruptible bids in priority order;
	// spotMachines: machines with a floor, by slot; spotDirty: something
	// that can let a resting bid match changed since the last spot sweep.
	spotRest     []uint32
	spotMachines []uint32
	spotDirty    bool

	events    []Event
	changed   []uint32
	changed2  []uint32
	cands     []uint32
	bookCands []cursor
	coll      []restKey
	due       []dl
}

// NewEngine returns an empty engine for cfg. It returns ErrBadConfig when
// the catalogs are empty, too large or hold duplicates, or a timing value
// is out of range.
func NewEngine(cfg Config) (*Engine, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.Models = slices.Clone(cfg.Models)
	cfg.Regions = slices.Clone(cfg.Regions)
	e := &Engine{
		cfg: cfg, nR: len(cfg.Regions), nM: len(cfg.Models),
		modelIdx:    make(map[string]uint16, len(cfg.Models)),
		regionIdx:   make(map[string]uint8, len(cfg.Regions)),
		beatWindow:  cfg.MissedBeats * cfg.HeartbeatIntervalMs,
		providerIdx: map[string]uint32{},
	}
	for i, m := range cfg.Models {
		e.modelIdx[m] = uint16(i)
	}
	for i, r := range cfg.Regions {
		e.regionIdx[r] = uint8(i)
	}
	e.books = make([]book, e.nM*e.nR)
	e.bookRTT = make([]uint16, e.nR*len(e.books))
	e.bookAsk = make([]int64, askMaxK*len(e.books))
	e.bookHead = make([]*chunk, len(e.books))
	for i := range e.bookAsk {
		e.bookAsk[i] = 1<<63 - 1
	}
	e.modelAsk = make([]int64, askMaxK*e.nM)
	for i := range e.modelAsk {
		e.modelAsk[i] = 1<<63 - 1
	}
	for i := range e.books {
		for k := range e.books[i].ask {
			e.books[i].ask[k] = 1<<63 - 1
		}
	}
	for i := range e.bookRTT {
		e.bookRTT[i] = 0xFFFF
	}
	e.rest = make([]restList, e.nM+1)
	return e, nil
}

// Now is the time of the last applied command (unix ms).
func (e *Engine) Now() int64 { return e.now }

// Stats counts what the engine holds.
type Stats struct {
	// Machines known (listed, offline, suspended or delisted with holds).
	Machines int
	// Listed offers: machines that can be matched right now.
	Listed int
	// Resting good-til-cancelled orders.
	Resting int
	// Reservations and Leases hold GPUs.
	Reservations, Leases int
}

// Stats returns the current counts.
func (e *Engine) Stats() Stats {
	s := Stats{Machines: e.machineIDs.n, Resting: e.resting, Reservations: len(e.reservations.h)}
	for i := range e.books {
		s.Listed += e.books[i].n - e.books[i].full
	}
	s.Leases = e.orderIDs.n - e.resting - s.Reservations
	return s
}

// Apply applies one command and returns its events, in order. The slice is
// reused by the next Apply: copy what must outlive it. On error no state
// has changed (the error is one of the sentinels in errors.go), so a
// command that failed can stay in the log and replays to the same error.
func (e *Engine) Apply(c *Command) ([]Event, error) {
	e.hint.ok = false
	e.events = e.events[:0]
	e.changed = e.changed[:0]
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Now < e.now {
		return nil, ErrTimeWentBack
	}
	prev := e.now
	e.now = c.Now
	var err error
	switch c.Kind {
	case KindUpsertMachine:
		err = e.upsert(c)
	case KindRemoveMachine:
		err = e.removeMachine(c)
	case KindHeartbeat:
		err = e.heartbeat(c)
	case KindTick:
		e.tick()
	case KindSuspendProvider:
		err = e.suspend(c)
	case KindReinstateProvider:
		err = e.reinstate(c)
	case KindPlaceOrder:
		err = e.place(c)
	case KindCancelOrder:
		err = e.cancel(c)
	case KindConfirmLease:
		err = e.confirm(c)
	case KindReleaseLease:
		err = e.release(c)
	}
	if err != nil {
		e.now = prev
		return nil, err
	}
	e.settle()
	return e.events, nil
}

const (
	pageShift = 12
	pageSize  = 1 << pageShift
	pageMask  = pageSize - 1
)

func (e *Engine) mach(s uint32) *machine { return &e.pages[s>>pageShift][s&pageMask] }

func (e *Engine) ord(s uint32) *order { return &e.orderPages[s>>pageShift][s&pageMask] }

func allMask(n uint8) uint64 {
	if n >= 64 {
		return ^uint64(0)
	}
	return 1<<n - 1
}

// avail is what an on-demand order may take: idle GPUs, and GPUs held by
// interruptible leases (it preempts them).
func (m *machine) avail() uint64 { return m.free&^m.held | m.spot }

// idle is GPUs free and held by nothing.
func (m *machine) idle() uint64 { return m.free &^ m.held }

// listed says whether the machine's offer may be matched at all: it is
// present and has a free GPU.
func (e *Engine) listed(m *machine) bool { return e.present(m) && m.avail() != 0 }

// present says whether the machine has a row in its book: it is a live
// listing, its verification PoC cleared, its agent is beating and reports
// it healthy, and its provider is in good standing. A machine whose GPUs
// are all taken keeps its row (avail 0, which every search skips): taking
// its last GPUs and freeing them again, a fifth of a busy market's
// commands, then refresh the row in place instead of removing it and
// inserting it again, each a chunk shift, a cold chunk and one line per
// region's RTT row.
func (e *Engine) present(m *machine) bool {
	return m.alive && !m.delisted && m.verified && m.online && m.healthy && !m.suspended
}

// sync puts the machine's book entry in step with the machine: inserted,
// removed, moved (price, model or region changed) or refreshed in place.
func (e *Engine) sync(s uint32) { e.syncRow(s, true, nil) }

// syncRow is sync for a caller that knows whether the RTTs changed: an
// in-place refresh then skips the RTT rows, one cache line per region.
// row, when not nil, is what the machine's book row holds for its RTTs
// (the machine's RTTs before this command changed them), so taking them
// out of the per-region minima reads that copy, one line, instead of the
// row's nR cells in nR lines of the chunk: a sixteenth of the run, when
// every price move and new RTT report read them.
func (e *Engine) syncRow(s uint32, rtts bool, row []uint16) {
	m := e.mach(s)
	want := e.present(m)
	bk := uint32(int(m.model)*e.nR + int(m.region))
	if m.indexed {
		if want && m.ixBook == bk && m.ixPrice == m.price {
			b := &e.books[bk]
			if rtts {
				e.bookOp(bk, func(b *book) { b.update(m, s, e.nR, row) })
			} else {
				c, i := b.find(m.price, s, m.ixChunk)
				c.vram[i], c.rel[i] = m.vram, m.rel
				e.setAvail(bk, c, i, m)
			}
			return
		}
		// The row holds the machine's RTTs unless this command changed
		// them.
		if !rtts {
			row = m.rtt[:e.nR]
		}
		e.bookOp(m.ixBook, func(b *book) { b.remove(m.ixPrice, s, e.nR, row, m.ixChunk) })
		m.indexed, m.ixChunk = false, nil
	}
	if want {
		e.bookOp(bk, func(b *book) { m.ixChunk = b.insert(m, s, e.nR) })
		m.indexed, m.ixBook, m.ixPrice = true, bk, m.price
	}
}

// setAvail refreshes row i of chunk c in book bi to machine m's free GPUs.
func (e *Engine) setAvail(bi uint32, c *chunk, i int, m *machine) {
	a0, a1 := c.avail[i], uint8(bits.OnesCount64(m.avail()))
	if a0 == a1 {
		return
	}
	c.avail[i] = a1
	b := &e.books[bi]
	b.raise(c.price[i], c.slot[i], a0, a1)
	b.rowAvail(c.price[i], a0, a1)
	e.mirrorAsks(bi)
}

// mirrorAsks copies book bi's ask into bookAsk where it moved (its rows
// lie len(books) apart: skipping them when nothing moved saves the lines).
func (e *Engine) mirrorAsks(bi uint32) {
	b := &e.books[bi]
	if !b.askMoved {
		return
	}
	b.askMoved = false
	nb := len(e.books)
	for k, v := range b.ask {
		row := e.bookAsk[k*nb : (k+1)*nb]
		if old := row[bi]; old != v {
			row[bi] = v
			e.modelAskMoved(k, bi, row, old, v)
		}
	}
}

// modelAskMoved keeps modelAsk exact when book bi's ask for row k (k+1
// GPUs; row is that count's mirror in bookAsk, already holding v) moved
// from old to v: a cheaper ask is the new minimum at once, and only when
// the model's minimum itself rose are its books read again.
func (e *Engine) modelAskMoved(k int, bi uint32, row []int64, old, v int64) {
	m := int(bi) / e.nR
	p := &e.modelAsk[k*e.nM+m]
	switch {
	case v < *p:
		*p = v
	case old == *p && v > old:
		lo := int64(1<<63 - 1)
		for _, a := range row[m*e.nR : (m+1)*e.nR] {
			lo = min(lo, a)
		}
		*p = lo
	}
}

// bookOp changes book bi and refreshes its mirrored header where it moved
// (rarely: the cheapest ask or a lowest RTT changed).
func (e *Engine) bookOp(bi uint32, op func(*book)) {
	b := &e.books[bi]
	op(b)
	e.mirrorAsks(bi)
	e.bookHead[bi] = nil
	if len(b.chunks) > 0 {
		e.bookHead[bi] = b.chunks[0]
	}
	nb := len(e.books)
	for r := 0; r < e.nR; r++ {
		v := uint16(0xFFFF)
		if b.n > 0 {
			v = b.minRTT[r]
		}
		if p := &e.bookRTT[r*nb+int(bi)]; *p != v {
			*p = v
		}
	}
}

// snap is what decides whether a change to a machine can let a resting
// order match it: only an improvement can, and only then is it swept.
type snap struct {
	listed bool
	avail  int
	price  int64
	vram   uint16
	model  uint16
	region uint8
	rtt    [MaxRegions]uint16
}

func (e *Engine) snapOf(m *machine) snap {
	return snap{listed: e.listed(m), avail: bits.OnesCount64(m.avail()), price: m.price, vram: m.vram, model: m.model, region: m.region, rtt: m.rtt}
}

func (e *Engine) improved(old snap, m *machine) bool {
	if !e.listed(m) {
		return false
	}
	if !old.listed || bits.OnesCount64(m.avail()) > old.avail || m.price < old.price || m.vram > old.vram ||
		m.model != old.model || m.region != old.region {
		return true
	}
	for i := 0; i < e.nR; i++ {
		if m.rtt[i] < old.rtt[i] {
			return true
		}
	}
	return false
}

// Checks, in this order: model, region, RTT list, provider, GPUs held.
func (e *Engine) upsert(c *Command) error {
	model, ok := e.modelIdx[c.Model]
	if !ok {
		return ErrUnknownModel
	}
	region, ok := e.regionIdx[c.Region]
	if !ok {
		return ErrUnknownRegion
	}
	if len(c.RTTms) != e.nR {
		return ErrBadRTT
	}
	gpus := uint8(c.GPUs)
	s, exists := e.machineSlot(c.Machine)
	if exists {
		m := e.mach(s)
		if e.providers[m.provider].id != c.Provider {
			return ErrProviderMismatch
		}
		if m.held&^allMask(gpus) != 0 {
			return ErrMachineBusy
		}
	}
	var m *machine
	var old snap
	if exists {
		m = e.mach(s)
		old = e.snapOf(m)
		if m.delisted {
			m.delisted, m.listedAt = false, e.now
		}
		m.free = m.free&allMask(gpus) | allMask(gpus)&^allMask(m.gpus)
	} else {
		s = e.newMachine(c.Machine, c.Provider)
		m = e.mach(s)
		m.listedAt, m.lastBeat, m.online, m.healthy = e.now, e.now, true, true
		m.free = allMask(gpus)
		m.deadline = e.now + e.beatWindow
		if !e.beats.has(s) {
			// A forgotten machine's entry may still hold the slot; it is
			// no later than this deadline, so it serves as this machine's
			// stale entry (see machine.deadline).
			e.beats.set(s, m.deadline)
		}
	}
	m.model, m.region, m.gpus, m.vram, m.rel = model, region, gpus, uint16(c.VRAMGiB), uint16(c.ReliabilityBps)
	m.price, m.verified = c.Price, c.Verified
	copy(m.rtt[:], c.RTTms)
	e.setSpot(s, c.SpotFloor, c.NoticeMs)
	// old.rtt is what an indexed machine's row holds; a new machine has
	// no row, so it is not read.
	e.syncRow(s, true, old.rtt[:e.nR])
	if !exists || e.improved(old, m) {
		e.changed = append(e.changed, s)
	}
	return nil
}

func (e *Engine) newMachine(id, prov string) uint32 {
	var s uint32
	if n := len(e.freeMachine); n > 0 {
		s = e.freeMachine[n-1]
		e.freeMachine = e.freeMachine[:n-1]
	} else {
		if e.nMachines&pageMask == 0 {
			e.pages = append(e.pages, make([]machine, pageSize))
		}
		s = uint32(e.nMachines)
		e.nMachines++
	}
	p := e.providerOf(prov)
	*e.mach(s) = machine{provider: p, alive: true, suspended: e.providers[p].suspended, provPos: uint32(len(e.providers[p].machines))}
	e.providers[p].machines = append(e.providers[p].machines, s)
	e.name(s, id)
	return s
}

func (e *Engine) providerOf(id string) uint32 {
	if p, ok := e.providerIdx[id]; ok {
		return p
	}
	e.providers = append(e.providers, provider{id: id})
	p := uint32(len(e.providers) - 1)
	e.providerIdx[id] = p
	return p
}

// deleteMachine forgets a delisted machine once nothing holds its GPUs.
func (e *Engine) deleteMachine(s uint32) {
	m := e.mach(s)
	if m.indexed {
		e.bookOp(m.ixBook, func(b *book) { b.remove(m.ixPrice, s, e.nR, m.rtt[:e.nR], m.ixChunk) }) // unchanged since written
	}
	// The beats entry stays: removing it from the middle of a million-entry
	// heap costs several cache misses, while Tick drops it for free when it
	// comes up (or a new machine in this slot adopts it).
	// The list's order means nothing (suspending and reinstating visit
	// all of it, and what they change does not depend on the order), so
	// the last entry takes the machine's place.
	p := &e.providers[m.provider]
	last := p.machines[len(p.machines)-1]
	p.machines[m.provPos] = last
	e.mach(last).provPos = m.provPos
	p.machines = p.machines[:len(p.machines)-1]
	e.machineIDs.delete(m.idHash, s)
	e.setSpot(s, 0, 0)
	*m = machine{}
	e.freeMachine = append(e.freeMachine, s)
}

// A removed machine's offer leaves the book at once; the record stays
// while reservations or leases hold its GPUs, so they can end normally.
func (e *Engine) removeMachine(c *Command) error {
	s, ok := e.machineSlot(c.Machine)
	if !ok || e.mach(s).delisted {
		return ErrMachineNotFound
	}
	m := e.mach(s)
	m.delisted = true
	if m.held == 0 {
		e.deleteMachine(s)
	} else {
		e.sync(s)
	}
	return nil
}

// Checks, in this order: machine, RTT list, free mask.
func (e *Engine) heartbeat(c *Command) error {
	s, ok := e.machineSlot(c.Machine)
	if !ok {
		return ErrMachineNotFound
	}
	if len(c.RTTms) != 0 && len(c.RTTms) != e.nR {
		return ErrBadRTT
	}
	m := e.mach(s)
	if c.Free&^allMask(m.gpus) != 0 {
		return ErrBadFreeMask
	}
	rttChanged := len(c.RTTms) != 0 && !slices.Equal(m.rtt[:e.nR], c.RTTms)
	if m.online && c.Free == m.free && c.Healthy == m.healthy && !rttChanged {
		// The common beat: nothing the book sees has changed, so it costs
		// one lookup and two stores.
		m.lastBeat, m.deadline = e.now, e.now+e.beatWindow
		return nil
	}
	old := e.snapOf(m)
	e.spotDirty = true
	m.free, m.healthy, m.lastBeat = c.Free, c.Healthy, e.now
	if len(c.RTTms) != 0 {
		copy(m.rtt[:], c.RTTms)
	}
	m.deadline = e.now + e.beatWindow
	if !m.online {
		m.online = true
		e.beats.set(s, m.deadline)
		e.events = append(e.events, Event{Kind: EvMachineOnline, Machine: m.id})
	}
	e.syncRow(s, rttChanged, old.rtt[:e.nR])
	if e.improved(old, m) {
		e.changed = append(e.changed, s)
	}
	return nil
}

// tick runs the time-driven transitions due at Now, in a fixed order:
// lapsed reservations first (their GPUs come back), then machines that
// missed their heartbeats (so nothing is matched onto a machine that just
// went silent), then expired orders (so an expired order is never
// matched), and finally Apply's sweep matches resting orders onto the
// capacity that came back. Within each step the order is (due time, id),
// never heap or map order.
func (e *Engine) tick() {
	due := e.reservations.popDue(e.now, e.due[:0])
	slices.SortFunc(due, func(a, b dl) int { return cmpDue(a, b, e.ord(a.slot).id, e.ord(b.slot).id) })
	for _, d := range due {
		o := e.ord(d.slot)
		m := e.mach(o.machine)
		e.events = append(e.events, Event{Kind: EvReservationExpired, Order: o.id, Machine: m.id, GPUs: o.mask, Count: o.count})
		e.releaseHold(o.machine, o.mask)
		e.deleteOrder(d.slot)
	}
	due = due[:0]
	for len(e.beats.h) > 0 && e.beats.h[0].at <= e.now {
		top := e.beats.h[0]
		m := e.mach(top.slot)
		if m.alive && m.deadline > e.now {
			e.beats.h[0].at = m.deadline // it beat since: re-queue
			e.beats.down(0)
			continue
		}
		e.beats.remove(top.slot)
		if m.alive { // else the entry of a forgotten machine
			due = append(due, dl{at: m.deadline, slot: top.slot})
		}
	}
	slices.SortFunc(due, func(a, b dl) int { return cmpDue(a, b, e.mach(a.slot).id, e.mach(b.slot).id) })
	for _, d := range due {
		m := e.mach(d.slot)
		m.online = false
		e.sync(d.slot)
		e.events = append(e.events, Event{Kind: EvMachineOffline, Machine: m.id})
	}
	due = e.gtc.popDue(e.now, due[:0])
	slices.SortFunc(due, func(a, b dl) int { return cmpDue(a, b, e.ord(a.slot).id, e.ord(b.slot).id) })
	for _, d := range due {
		o := e.ord(d.slot)
		e.unrest(d.slot)
		e.events = append(e.events, Event{Kind: EvOrderExpired, Order: o.id})
		e.deleteOrder(d.slot)
	}
	e.due = due[:0]
}

func cmpDue(a, b dl, ida, idb string) int {
	switch {
	case a.at < b.at:
		return -1
	case a.at > b.at:
		return 1
	}
	return strings.Compare(ida, idb)
}

func (e *Engine) suspend(c *Command) error {
	if p, ok := e.providerIdx[c.Provider]; ok && e.providers[p].suspended {
		return ErrAlreadySuspended
	}
	p := e.providerOf(c.Provider)
	e.providers[p].suspended = true
	for _, s := range e.providers[p].machines {
		e.mach(s).suspended = true
		e.sync(s)
	}
	return nil
}

func (e *Engine) reinstate(c *Command) error {
	p, ok := e.providerIdx[c.Provider]
	if !ok || !e.providers[p].suspended {
		return ErrNotSuspended
	}
	e.providers[p].suspended = false
	e.spotDirty = true
	for _, s := range e.providers[p].machines {
		e.mach(s).suspended = false
		e.sync(s)
		e.changed = append(e.changed, s)
	}
	return nil
}

// releaseHold returns GPUs to the machine (or forgets a delisted machine
// whose last hold ended) and marks it for the sweep.
func (e *Engine) releaseHold(s uint32, mask uint64) {
	m := e.mach(s)
	m.held &^= mask
	e.spotDirty = true
	if m.delisted && m.held == 0 {
		e.deleteMachine(s)
		return
	}
	e.syncRow(s, false, nil) // only its free GPUs changed
	e.changed = append(e.changed, s)
}

func (e *Engine) newOrder() uint32 {
	if n := len(e.freeOrder); n > 0 {
		s := e.freeOrder[n-1]
		e.freeOrder = e.freeOrder[:n-1]
		return s
	}
	return e.appendOrder()
}

// appendOrder adds a slot at the end of the order table.
func (e *Engine) appendOrder() uint32 {
	if e.nOrders&pageMask == 0 {
		e.orderPages = append(e.orderPages, make([]order, pageSize))
	}
	e.nOrders++
	return uint32(e.nOrders - 1)
}

// orderKeyLen is how many bytes of an order id its record copies.
const orderKeyLen = 40

// setID names order o; h is hashID(id).
func (o *order) setID(id string, h uint64) {
	o.id, o.idHash = id, h
	copy(o.key[:], id)
}

// is reports whether o's id is id, from the copy where it holds all of it.
func (o *order) is(id string) bool {
	n := len(id)
	if len(o.id) != n {
		return false
	}
	if n <= orderKeyLen {
		return string(o.key[:n]) == id
	}
	return string(o.key[:]) == id[:orderKeyLen] && o.id[orderKeyLen:] == id[orderKeyLen:]
}

func (e *Engine) deleteOrder(s uint32) {
	e.orderIDs.delete(e.ord(s).idHash, s)
	*e.ord(s) = order{}
	e.freeOrder = append(e.freeOrder, s)
}

func (e *Engine) restKeyOf(s uint32) (int, restKey) {
	o := e.ord(s)
	l := e.nM
	if o.model >= 0 {
		l = int(o.model)
	}
	return l, restKey{neg: -o.maxPrice, seq: o.seq, slot: s, region: o.region, count: uint8(o.count),
		maxRTT: uint16(o.maxRTT), minVRAM: uint16(o.minVRAM)}
}

func (e *Engine) unrest(s uint32) {
	if e.ord(s).spot {
		e.unrestSpot(s)
	} else {
		l, k := e.restKeyOf(s)
		e.rest[l].remove(k)
	}
	e.gtc.remove(s)
	e.resting--
}

// Checks, in this order: duplicate id, model, region, then for rent-now
// the offer (ErrOfferNotFound unless listed) and its fit (ErrNoMatch), for
// fill-or-kill a match (ErrNoMatch). A good-til-cancelled order that finds
// nothing rests.
func (e *Engine) place(c *Command) error {
	if _, dup := e.orderSlot(c.Order); dup {
		return ErrDuplicateOrder
	}
	model := int32(-1)
	if c.Model != "" {
		mi, ok := e.modelIdx[c.Model]
		if !ok {
			return ErrUnknownModel
		}
		model = int32(mi)
	}
	region, ok := e.regionIdx[c.Region]
	if !ok {
		return ErrUnknownRegion
	}
	o := order{
		buyer: c.Buyer, typ: c.Type, latencyFirst: c.LatencyFirst, region: region, model: model,
		count: c.GPUs, minVRAM: c.VRAMGiB, maxPrice: c.Price, maxRTT: c.MaxRTTms, hours: c.Hours, expiresAt: c.ExpiresAt,
		alive: true, spot: c.Interruptible,
	}
	o.setID(c.Order, e.orderHash(c.Order))
	var ms uint32
	var found bool
	switch {
	case o.spot:
		var err error
		if ms, found, err = e.spotOffer(c, &o); err != nil {
			return err
		}
	case c.Type == RentNow:
		s, ok := e.machineSlot(c.Machine)
		if !ok || !e.listed(e.mach(s)) {
			return ErrOfferNotFound
		}
		if !e.qualifies(&o, e.mach(s)) {
			return ErrNoMatch
		}
		ms, found = s, true
	default:
		ms, found = e.bestOffer(&o)
		if !found && c.Type == FillOrKill {
			return ErrNoMatch
		}
	}
	if found {
		// Start loading the machine now: the order's bookkeeping below
		// (its record, its id-table entry: a miss of its own) then runs
		// while the record arrives, instead of match waiting for it.
		e.warmSink += e.mach(ms).held
	}
	e.seq++
	o.seq = e.seq
	os := e.newOrder()
	*e.ord(os) = o
	e.orderIDs.insert(o.idHash, os)
	if found {
		e.match(os, ms)
		return nil
	}
	o2 := e.ord(os)
	o2.state = stResting
	if o2.spot {
		e.restSpot(os)
	} else {
		l, k := e.restKeyOf(os)
		e.rest[l].insert(k)
	}
	e.gtc.set(os, o2.expiresAt)
	e.resting++
	e.events = append(e.events, Event{Kind: EvOrderRested, Order: o2.id})
	return nil
}

// match reserves the order's GPUs on the machine: the lowest-numbered
// available GPUs, so the choice is a pure function of the state.
func (e *Engine) match(os, ms uint32) {
	o := e.ord(os)
	m := e.mach(ms)
	price := m.price
	if o.spot {
		price = min(o.maxPrice, m.price) // a bid pays itself, never above the ask
	}
	mask, at := e.takeGPUs(os, ms, price)
	m.held |= mask
	o.state, o.machine, o.mask, o.price, o.startAt = stReserved, ms, mask, price, at
	if o.spot {
		o.notice = m.notice
	}
	// A reservation that waits for a preemption notice to run out lasts
	// that much longer: the quote and the lease follow the notice.
	o.resExpiry = max(e.now, at) + e.cfg.ReservationTTLms
	e.reservations.set(os, o.resExpiry)
	total, _ := orderTotal(price, o.count, o.hours) // price ≤ max price, whose total Validate bounded
	e.events = append(e.events, Event{
		Kind: EvMatched, Order: o.id, Machine: m.id, Provider: e.providers[m.provider].id,
		GPUs: mask, Count: o.count, Price: price, Total: total, RTTms: int64(m.rtt[o.region]), Expiry: o.resExpiry,
		At: at, Interruptible: o.spot,
	})
	if h := e.hint; h.ok && h.slot == ms && e.present(m) {
		e.setAvail(m.ixBook, h.c, h.i, m) // still present: only its free GPUs changed
	} else {
		e.syncRow(ms, false, nil)
	}
	e.hint.ok = false
}

func (e *Engine) cancel(c *Command) error {
	s, ok := e.orderSlot(c.Order)
	if !ok {
		return ErrOrderNotFound
	}
	o := e.ord(s)
	if o.buyer != c.Buyer {
		return ErrNotOwner
	}
	switch o.state {
	case stResting:
		e.unrest(s)
		e.events = append(e.events, Event{Kind: EvOrderCancelled, Order: o.id})
	case stReserved:
		e.reservations.remove(s)
		e.events = append(e.events, Event{Kind: EvOrderCancelled, Order: o.id, Machine: e.mach(o.machine).id, GPUs: o.mask, Count: o.count})
		e.releaseHold(o.machine, o.mask)
	default:
		return ErrWrongState
	}
	e.deleteOrder(s)
	return nil
}

func (e *Engine) confirm(c *Command) error {
	s, ok := e.orderSlot(c.Order)
	if !ok {
		return ErrOrderNotFound
	}
	o := e.ord(s)
	if o.state != stReserved {
		return ErrWrongState
	}
	o.state = stLeased
	e.reservations.remove(s)
	if o.spot {
		e.spotLeased(s)
	}
	e.events = append(e.events, Event{Kind: EvLeaseConfirmed, Order: o.id, Machine: e.mach(o.machine).id, GPUs: o.mask, Count: o.count})
	return nil
}

func (e *Engine) release(c *Command) error {
	s, ok := e.orderSlot(c.Order)
	if !ok {
		return ErrOrderNotFound
	}
	o := e.ord(s)
	if o.state == stResting {
		return ErrWrongState
	}
	e.reservations.remove(s)
	if o.spot && o.state == stLeased {
		e.unspot(s)
	}
	e.events = append(e.events, Event{Kind: EvLeaseReleased, Order: o.id, Machine: e.mach(o.machine).id, GPUs: o.mask, Count: o.count})
	e.releaseHold(o.machine, o.mask)
	e.deleteOrder(s)
	return nil
}
