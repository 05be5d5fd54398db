package market

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Snapshots let the broker compact its command log: a snapshot taken after
// command n, plus the commands after n, rebuilds the engine that the whole
// log would, so the log before n can go and a takeover replays a bounded
// tail instead of the market's whole history.
//
// The snapshot holds the logical state slot by slot, with the free lists
// in order, because slots are part of what the engine decides: offers of
// one price rank by slot, and a new machine or order takes the slot the
// free list hands it. Everything derived is rebuilt rather than stored:
// the books (by Engine.sync), the id tables, the resting lists and the
// deadline heaps. A heap may hold stale entries in a live engine (a
// heartbeat only moves the machine's deadline; a forgotten machine's entry
// waits to come up); the rebuilt heaps hold each deadline exactly, which
// Tick treats the same way (a stale entry only re-queues). TestSnapshot*
// check that an engine restored mid-stream then answers every command
// exactly as the original does.
//
// Models are stored by name, so a catalog that gained models restores; the
// regions must be the catalog's own, as for a log replay (every machine's
// RTT list is one entry per region).

// snapshotMagic starts an encoded snapshot; the byte after it is the format
// version.
const (
	snapshotMagic   = "HWMS"
	snapshotVersion = 2 // 2: interruptible terms and bids (1 still restores)
)

// ErrBadSnapshot wraps every reason a snapshot cannot be restored.
var ErrBadSnapshot = errors.New("market: bad snapshot")

// Machine flags as stored.
const (
	snapVerified = 1 << iota
	snapHealthy
	snapOnline
	snapDelisted
)

// Snapshot appends the engine's state to dst and returns it.
func (e *Engine) Snapshot(dst []byte) []byte {
	w := snapWriter{b: append(dst, snapshotMagic...)}
	w.b = append(w.b, snapshotVersion)
	w.strs(e.cfg.Regions)
	w.strs(e.cfg.Models)
	w.i(e.now)
	w.u(e.seq)

	w.u(uint64(len(e.providers)))
	for i := range e.providers {
		p := &e.providers[i]
		w.str(p.id)
		w.flag(p.suspended)
		w.slots(p.machines)
	}

	w.u(uint64(e.nMachines))
	for s := 0; s < e.nMachines; s++ {
		m := e.mach(uint32(s))
		w.flag(m.alive)
		if !m.alive {
			continue
		}
		w.str(m.id)
		w.u(uint64(m.provider))
		w.u(bitIf(m.verified, snapVerified) | bitIf(m.healthy, snapHealthy) | bitIf(m.online, snapOnline) | bitIf(m.delisted, snapDelisted))
		w.u(uint64(m.model))
		w.u(uint64(m.region))
		w.u(uint64(m.gpus))
		w.u(uint64(m.vram))
		w.u(uint64(m.rel))
		w.u(m.free)
		w.u(m.held)
		w.i(m.price)
		w.i(m.listedAt)
		w.i(m.lastBeat)
		w.i(m.deadline)
		for r := 0; r < e.nR; r++ {
			w.u(uint64(m.rtt[r]))
		}
		w.i(m.spotFloor)
		w.i(m.notice)
	}
	w.slots(e.freeMachine)

	w.u(uint64(e.nOrders))
	for s := range uint32(e.nOrders) {
		o := e.ord(s)
		w.flag(o.alive)
		if !o.alive {
			continue
		}
		w.str(o.id)
		w.str(o.buyer)
		w.u(uint64(o.typ))
		w.u(uint64(o.state))
		w.flag(o.latencyFirst)
		w.u(uint64(o.region))
		w.i(int64(o.model))
		for _, v := range []int64{o.count, o.minVRAM, o.maxPrice, o.maxRTT, o.hours, o.expiresAt} {
			w.i(v)
		}
		w.u(o.seq)
		w.flag(o.spot)
		if o.state != stResting {
			w.u(uint64(o.machine))
			w.u(o.mask)
			w.i(o.price)
			w.i(o.resExpiry)
			w.i(o.startAt)
			w.i(o.notice)
		}
	}
	w.slots(e.freeOrder)
	return w.b
}

// Restore rebuilds the engine a snapshot was taken of, under cfg (whose
// timing may differ from the snapshot's; its regions may not, and its
// models must include every model a live offer or order names). A
// snapshot that does not decode, or does not describe a consistent
// engine, returns an error wrapping ErrBadSnapshot and no engine.
func Restore(cfg Config, b []byte) (*Engine, error) {
	e, err := NewEngine(cfg)
	if err != nil {
		return nil, err
	}
	if err := e.restore(b); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSnapshot, err)
	}
	return e, nil
}

func (e *Engine) restore(b []byte) error {
	if len(b) < len(snapshotMagic)+1 || string(b[:len(snapshotMagic)]) != snapshotMagic {
		return errors.New("not a market snapshot")
	}
	v := b[len(snapshotMagic)]
	if v < 1 || v > snapshotVersion {
		return fmt.Errorf("format version %d, this build reads 1 to %d", v, snapshotVersion)
	}
	r := snapReader{b: b[len(snapshotMagic)+1:]}
	regions := r.strs()
	if r.err == nil && !slices.Equal(regions, e.cfg.Regions) {
		return fmt.Errorf("taken with regions %v, the catalog has %v", regions, e.cfg.Regions)
	}
	models := r.strs()
	modelOf := make([]int32, len(models))
	for i, name := range models {
		modelOf[i] = -1
		if mi, ok := e.modelIdx[name]; ok {
			modelOf[i] = int32(mi)
		}
	}
	// mapModel turns a snapshot model index into the catalog's.
	mapModel := func(i uint64, what string) int32 {
		if r.err != nil {
			return 0
		}
		if i >= uint64(len(models)) {
			r.fail("%s: model %d of %d", what, i, len(models))
			return 0
		}
		if modelOf[i] < 0 {
			r.fail("%s: model %q is not in the catalog", what, models[i])
			return 0
		}
		return modelOf[i]
	}
	e.now = r.i()
	e.seq = r.u()

	nProv := r.count(1 << 24)
	for range nProv {
		id := r.str()
		suspended := r.flag()
		machines := r.slots()
		if r.err != nil {
			return r.err
		}
		if _, dup := e.providerIdx[id]; dup {
			return fmt.Errorf("provider %q twice", id)
		}
		e.providerIdx[id] = uint32(len(e.providers))
		e.providers = append(e.providers, provider{id: id, suspended: suspended, machines: machines})
	}

	nMach := r.count(1 << 30)
	for s := 0; s < nMach && r.err == nil; s++ {
		if e.nMachines&pageMask == 0 {
			e.pages = append(e.pages, make([]machine, pageSize))
		}
		e.nMachines++
		if !r.flag() {
			continue
		}
		m := e.mach(uint32(s))
		m.alive = true
		m.id = r.str()
		m.provider = uint32(r.u())
		f := r.u()
		m.verified, m.healthy, m.online, m.delisted = f&snapVerified != 0, f&snapHealthy != 0, f&snapOnline != 0, f&snapDelisted != 0
		m.model = uint16(mapModel(r.u(), "machine "+m.id))
		region := r.u()
		m.region = uint8(region)
		gpus := r.u()
		m.gpus = uint8(gpus)
		m.vram = uint16(r.u())
		m.rel = uint16(r.u())
		m.free = r.u()
		m.held = r.u()
		m.price = r.i()
		m.listedAt = r.i()
		m.lastBeat = r.i()
		m.deadline = r.i()
		for i := 0; i < e.nR; i++ {
			m.rtt[i] = uint16(r.u())
		}
		if v >= 2 {
			m.spotFloor, m.notice = r.i(), r.i()
		}
		switch {
		case r.err != nil:
		case int(m.provider) >= len(e.providers):
			r.fail("machine %s: provider %d of %d", m.id, m.provider, len(e.providers))
		case region >= uint64(e.nR):
			r.fail("machine %s: region %d of %d", m.id, region, e.nR)
		case m.spotFloor < 0 || m.spotFloor > m.price || (m.spotFloor == 0) != (m.notice == 0) ||
			m.spotFloor > 0 && (m.notice < MinNoticeMs || m.notice > MaxNoticeMs):
			r.fail("machine %s: interruptible floor %d, notice %d ms", m.id, m.spotFloor, m.notice)
		case gpus == 0 || gpus > MaxGPUs || (m.free|m.held)&^allMask(m.gpus) != 0:
			r.fail("machine %s: GPU masks outside its %d GPUs", m.id, gpus)
		default:
			if _, dup := e.machineSlot(m.id); dup {
				r.fail("machine %s twice", m.id)
			} else {
				e.name(uint32(s), m.id)
			}
		}
	}
	e.freeMachine = r.slots()
	if r.err != nil {
		return r.err
	}
	if err := e.checkMachineLists(); err != nil {
		return err
	}

	nOrd := r.count(1 << 30)
	e.orderPages, e.nOrders = nil, 0
	for s := 0; s < nOrd && r.err == nil; s++ {
		e.appendOrder()
		if !r.flag() {
			continue
		}
		o := e.ord(uint32(s))
		o.alive = true
		id := r.str()
		o.setID(id, hashID(id))
		o.buyer = r.str()
		o.typ = OrderType(r.u())
		o.state = uint8(r.u())
		o.latencyFirst = r.flag()
		region := r.u()
		o.region = uint8(region)
		o.model = int32(-1)
		if mi := r.i(); mi >= 0 {
			o.model = mapModel(uint64(mi), "order "+o.id)
		}
		o.count, o.minVRAM, o.maxPrice, o.maxRTT, o.hours, o.expiresAt = r.i(), r.i(), r.i(), r.i(), r.i(), r.i()
		o.seq = r.u()
		if v >= 2 {
			o.spot = r.flag()
		}
		if o.state != stResting {
			o.machine = uint32(r.u())
			o.mask = r.u()
			o.price = r.i()
			o.resExpiry = r.i()
			if v >= 2 {
				o.startAt, o.notice = r.i(), r.i()
			}
		}
		switch {
		case r.err != nil:
		case region >= uint64(e.nR):
			r.fail("order %s: region %d of %d", o.id, region, e.nR)
		case o.state < stResting || o.state > stLeased:
			r.fail("order %s: state %d", o.id, o.state)
		case o.state != stResting && (int(o.machine) >= e.nMachines || !e.mach(o.machine).alive || o.mask&^e.mach(o.machine).held != 0):
			r.fail("order %s: holds GPUs %#x of no such machine (slot %d)", o.id, o.mask, o.machine)
		default:
			if _, dup := e.orderSlot(o.id); dup {
				r.fail("order %s twice", o.id)
			} else {
				e.orderIDs.insert(o.idHash, uint32(s))
			}
		}
	}
	e.freeOrder = r.slots()
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%d bytes after the state", len(r.b))
	}
	if err := e.checkFree(e.freeOrder, e.nOrders, func(s uint32) bool { return e.ord(s).alive }); err != nil {
		return fmt.Errorf("order free list: %w", err)
	}
	// Every held GPU is held by exactly one reservation or lease.
	held := make(map[uint32]uint64)
	for s := range uint32(e.nOrders) {
		if o := e.ord(s); o.alive && o.state != stResting {
			if held[o.machine]&o.mask != 0 {
				return fmt.Errorf("order %s: GPUs %#x held twice", o.id, held[o.machine]&o.mask)
			}
			held[o.machine] |= o.mask
		}
	}
	for s := 0; s < e.nMachines; s++ {
		if m := e.mach(uint32(s)); m.alive && m.held != held[uint32(s)] {
			return fmt.Errorf("machine %s: held %#x, its orders hold %#x", m.id, m.held, held[uint32(s)])
		}
	}

	// The derived structures, from the restored state: interruptible
	// holds first, since the book counts them as available.
	for s := range uint32(e.nOrders) {
		if o := e.ord(s); o.alive && o.spot && o.state == stLeased {
			m := e.mach(o.machine)
			m.spot |= o.mask
			m.spots = append(m.spots, s)
		}
	}
	for s := 0; s < e.nMachines; s++ {
		if e.mach(uint32(s)).spotFloor > 0 {
			e.spotMachines = append(e.spotMachines, uint32(s))
		}
	}
	e.spotDirty = true
	for s := 0; s < e.nMachines; s++ {
		m := e.mach(uint32(s))
		if !m.alive {
			continue
		}
		m.suspended = e.providers[m.provider].suspended
		e.sync(uint32(s))
		if m.online {
			e.beats.set(uint32(s), m.deadline)
		}
	}
	for s := range uint32(e.nOrders) {
		o := e.ord(s)
		if !o.alive {
			continue
		}
		switch o.state {
		case stResting:
			if o.spot {
				e.restSpot(s)
			} else {
				l, k := e.restKeyOf(s)
				e.rest[l].insert(k)
			}
			e.gtc.set(s, o.expiresAt)
			e.resting++
		case stReserved:
			e.reservations.set(s, o.resExpiry)
		}
	}
	return nil
}

// checkMachineLists checks that the providers' machine lists and the
// machine free list account for every slot exactly once.
func (e *Engine) checkMachineLists() error {
	owner := make([]int, e.nMachines)
	for pi := range e.providers {
		for j, s := range e.providers[pi].machines {
			if int(s) >= e.nMachines || !e.mach(s).alive || e.mach(s).provider != uint32(pi) || owner[s] != 0 {
				return fmt.Errorf("provider %q lists machine slot %d wrongly", e.providers[pi].id, s)
			}
			owner[s] = pi + 1
			e.mach(s).provPos = uint32(j)
		}
	}
	for s := 0; s < e.nMachines; s++ {
		if e.mach(uint32(s)).alive && owner[s] == 0 {
			return fmt.Errorf("machine %s is on no provider's list", e.mach(uint32(s)).id)
		}
	}
	if err := e.checkFree(e.freeMachine, e.nMachines, func(s uint32) bool { return e.mach(s).alive }); err != nil {
		return fmt.Errorf("machine free list: %w", err)
	}
	return nil
}

// checkFree checks a free list: every slot below n that is not alive,
// each once, and nothing else.
func (e *Engine) checkFree(free []uint32, n int, alive func(uint32) bool) error {
	seen := make([]bool, n)
	for _, s := range free {
		if int(s) >= n || alive(s) || seen[s] {
			return fmt.Errorf("slot %d listed wrongly", s)
		}
		seen[s] = true
	}
	for s := range n {
		if !seen[s] && !alive(uint32(s)) {
			return fmt.Errorf("slot %d is neither live nor free", s)
		}
	}
	return nil
}

// ProviderSuspended reports whether the engine holds the provider
// suspended (the broker reads it after a restore, as it reads the
// suspensions off a replayed log).
func (e *Engine) ProviderSuspended(id string) bool {
	p, ok := e.providerIdx[id]
	return ok && e.providers[p].suspended
}

func bitIf(on bool, bit uint64) uint64 {
	if on {
		return bit
	}
	return 0
}

type snapWriter struct{ b []byte }

func (w *snapWriter) u(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *snapWriter) i(v int64)  { w.b = binary.AppendVarint(w.b, v) }
func (w *snapWriter) str(s string) {
	w.u(uint64(len(s)))
	w.b = append(w.b, s...)
}

func (w *snapWriter) strs(ss []string) {
	w.u(uint64(len(ss)))
	for _, s := range ss {
		w.str(s)
	}
}

func (w *snapWriter) flag(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}

func (w *snapWriter) slots(ss []uint32) {
	w.u(uint64(len(ss)))
	for _, s := range ss {
		w.u(uint64(s))
	}
}

// snapReader decodes what snapWriter wrote. The first failure sticks
// (err), and every later read returns zero, so decoding code reads
// straight through and checks once.
type snapReader struct {
	b   []byte
	err error
}

func (r *snapReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
	r.b = nil
}

func (r *snapReader) u() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("truncated")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// i reads what binary.AppendVarint wrote: the zig-zag of a uvarint.
func (r *snapReader) i() int64 {
	u := r.u()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

// count reads a length no larger than limit or than the bytes left (each
// element takes at least one).
func (r *snapReader) count(limit int) int {
	n := r.u()
	if r.err == nil && (n > uint64(limit) || n > uint64(len(r.b))) {
		r.fail("length %d beyond what is left", n)
		return 0
	}
	return int(n)
}

func (r *snapReader) str() string {
	n := r.count(MaxIDLen)
	if r.err != nil {
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *snapReader) strs() []string {
	n := r.count(1 << 16)
	out := make([]string, 0, n)
	for range n {
		out = append(out, r.str())
	}
	return out
}

func (r *snapReader) flag() bool {
	if r.err != nil {
		return false
	}
	if len(r.b) == 0 {
		r.fail("truncated")
		return false
	}
	v := r.b[0]
	r.b = r.b[1:]
	if v > 1 {
		r.fail("flag %d", v)
	}
	return v == 1
}

func (r *snapReader) slots() []uint32 {
	n := r.count(1 << 30)
	out := make([]uint32, 0, n)
	for range n {
		v := r.u()
		if v > 1<<32-1 {
			r.fail("slot %d", v)
		}
		out = append(out, uint32(v))
	}
	return out
}
