package market

import (
	"fmt"
	"math/bits"
	"testing"
)

// checkInvariants verifies, from the engine's internals, what must hold
// after every command:
//   - no GPU is in two live reservations or leases: the masks of the live
//     orders on a machine are pairwise disjoint, their union is exactly the
//     machine's held mask, and it lies within the machine's GPUs;
//   - the book lists exactly the listed machines, with up-to-date rows;
//   - no resting order could match a listed offer (the sweep's invariant).
func checkInvariants(e *Engine) error {
	machines, orders := map[string]uint32{}, map[string]uint32{}
	for s := 0; s < e.nMachines; s++ {
		if m := e.mach(uint32(s)); m.alive {
			if got, ok := e.machineSlot(m.id); !ok || got != uint32(s) {
				return fmt.Errorf("machine %s: id table gives %d %v, want %d", m.id, got, ok, s)
			}
			machines[m.id] = uint32(s)
		}
	}
	for s := range uint32(e.nOrders) {
		if o := e.ord(s); o.alive {
			if got, ok := e.orderSlot(o.id); !ok || got != s {
				return fmt.Errorf("order %s: id table gives %d %v, want %d", o.id, got, ok, s)
			}
			orders[o.id] = s
		}
	}
	if len(machines) != e.machineIDs.n || len(orders) != e.orderIDs.n {
		return fmt.Errorf("id tables hold %d machines and %d orders, want %d and %d", e.machineIDs.n, e.orderIDs.n, len(machines), len(orders))
	}
	union := map[uint32]uint64{}
	for id, s := range orders {
		o := e.ord(s)
		if o.id != id || !o.alive || !o.is(id) || o.idHash != hashID(id) {
			return fmt.Errorf("order %s: slot holds %q (key %q, hash %#x)", id, o.id, o.key, o.idHash)
		}
		if o.state == stResting {
			continue
		}
		if bits.OnesCount64(o.mask) != int(o.count) {
			return fmt.Errorf("order %s holds %d GPUs, wants %d", id, bits.OnesCount64(o.mask), o.count)
		}
		if union[o.machine]&o.mask != 0 {
			return fmt.Errorf("order %s: GPU %#x of machine %s double-held", id, union[o.machine]&o.mask, e.mach(o.machine).id)
		}
		union[o.machine] |= o.mask
	}
	listed := 0
	for id, s := range machines {
		m := e.mach(s)
		if k, h := keyOf(id); m.id != id || !m.alive || m.idHash != h || !m.named(k, id) {
			return fmt.Errorf("machine %s: slot holds %q (hash %#x, key %x %x %d)", id, m.id, m.idHash, m.keyLo, m.keyHi, m.keyN)
		}
		if m.held != union[s] {
			return fmt.Errorf("machine %s: held %#x, live orders hold %#x", id, m.held, union[s])
		}
		if m.held&^allMask(m.gpus) != 0 || m.free&^allMask(m.gpus) != 0 {
			return fmt.Errorf("machine %s: masks beyond its %d GPUs", id, m.gpus)
		}
		if m.delisted && m.held == 0 {
			return fmt.Errorf("machine %s: delisted with nothing held but not forgotten", id)
		}
		if m.suspended != e.providers[m.provider].suspended {
			return fmt.Errorf("machine %s: suspended %v, its provider %v", id, m.suspended, e.providers[m.provider].suspended)
		}
		if e.present(m) != m.indexed {
			return fmt.Errorf("machine %s: present %v, indexed %v", id, e.present(m), m.indexed)
		}
		if e.listed(m) {
			listed++
		}
		if m.indexed {
			c, i := e.books[m.ixBook].find(m.ixPrice, s, nil)
			if hc, hi := e.books[m.ixBook].find(m.ixPrice, s, m.ixChunk); hc != c || hi != i {
				return fmt.Errorf("machine %s: its chunk hint finds another row", id)
			}
			stale := c.price[i] != m.price || c.vram[i] != m.vram || c.rel[i] != m.rel ||
				int(c.avail[i]) != bits.OnesCount64(m.avail())
			for r := 0; r < e.nR; r++ {
				stale = stale || c.rttAt(r, i) != m.rtt[r]
			}
			if stale || m.ixPrice != m.price || int(m.ixBook) != int(m.model)*e.nR+int(m.region) {
				return fmt.Errorf("machine %s: stale book row", id)
			}

		}
	}
	if got := e.Stats().Listed; got != listed {
		return fmt.Errorf("books hold %d rows with a free GPU, %d machines listed", got, listed)
	}
	for bi := range e.books {
		b := &e.books[bi]
		n, full := 0, 0
		for ci, c := range b.chunks {
			if c.n == 0 || c.n > chunkMax || b.lastPrice[ci] != c.price[c.n-1] || b.lastSlot[ci] != c.slot[c.n-1] {
				return fmt.Errorf("book %d chunk %d: bad shape or last key", bi, ci)
			}
			for j := 1; j*sampleStep < c.n; j++ {
				if c.skey[j] != c.price[j*sampleStep] || c.sslot[j] != c.slot[j*sampleStep] {
					return fmt.Errorf("book %d chunk %d: key sample %d stale", bi, ci, j)
				}
			}
			var seen [chunkMax]bool
			for _, at := range c.cell {
				if seen[at] {
					return fmt.Errorf("book %d chunk %d: RTT cell %d used twice", bi, ci, at)
				}
				seen[at] = true
			}
			for i := 0; i < c.n; i++ {
				if i > 0 && !keyLess(c.price[i-1], c.slot[i-1], c.price[i], c.slot[i]) ||
					i == 0 && ci > 0 && !keyLess(b.lastPrice[ci-1], b.lastSlot[ci-1], c.price[0], c.slot[0]) {
					return fmt.Errorf("book %d out of order", bi)
				}
			}
			n += c.n
			for _, a := range c.avail[:c.n] {
				if a == 0 {
					full++
				}
			}
		}
		for r := 0; r < e.nR; r++ {
			want := uint16(0xFFFF)
			if n > 0 {
				want = b.minRTT[r]
			}
			if got := e.bookRTT[r*len(e.books)+bi]; got != want {
				return fmt.Errorf("book %d region %d: mirrored min RTT %d, want %d", bi, r, got, want)
			}
		}
		if n != b.n || full != b.full {
			return fmt.Errorf("book %d: %d rows, %d of them full; counted %d and %d", bi, n, full, b.n, b.full)
		}
		for r := 0; n > 0 && r < e.nR; r++ {
			lo, cnt := uint16(0xFFFF), uint32(0)
			for _, c := range b.chunks {
				for i := 0; i < c.n; i++ {
					v := c.rttAt(r, i)
					if v < lo {
						lo, cnt = v, 0
					}
					if v == lo {
						cnt++
					}
				}
			}
			if b.minRTT[r] != lo || b.minCnt[r] != cnt {
				return fmt.Errorf("book %d region %d: min RTT %d×%d, want %d×%d", bi, r, b.minRTT[r], b.minCnt[r], lo, cnt)
			}
		}
	}
	nb := len(e.books)
	for bi := range e.books {
		for k, v := range e.books[bi].ask {
			if e.bookAsk[k*nb+bi] != v {
				return fmt.Errorf("book %d: mirrored ask for %d GPUs %d, want %d", bi, k+1, e.bookAsk[k*nb+bi], v)
			}
		}
	}
	for k := 1; k <= askMaxK; k++ {
		row := e.bookAsk[(k-1)*nb:]
		for m := 0; m < e.nM; m++ {
			want := int64(1<<63 - 1)
			for _, a := range row[m*e.nR : (m+1)*e.nR] {
				want = min(want, a)
			}
			if got := e.modelAsk[(k-1)*e.nM+m]; got != want {
				return fmt.Errorf("model %d: cheapest ask for %d GPUs %d, want %d", m, k, got, want)
			}
		}
	}
	for id, s := range machines {
		m := e.mach(s)
		inHeap := int(s) < len(e.beats.pos) && e.beats.pos[s] >= 0
		if m.online != inHeap || m.deadline != m.lastBeat+e.beatWindow {
			return fmt.Errorf("machine %s: online %v, queued %v, deadline %d", id, m.online, inHeap, m.deadline)
		}
		if l := e.providers[m.provider].machines; int(m.provPos) >= len(l) || l[m.provPos] != s {
			return fmt.Errorf("machine %s: not at its place %d in its provider's list", id, m.provPos)
		}
	}
	onLists := 0
	for _, p := range e.providers {
		onLists += len(p.machines)
	}
	if onLists != len(machines) {
		return fmt.Errorf("providers list %d machines, %d alive", onLists, len(machines))
	}
	if err := checkSpot(e, machines, orders); err != nil {
		return err
	}
	for _, s := range orders {
		o := e.ord(s)
		if o.state != stResting || o.spot {
			continue
		}
		for _, ms := range machines {
			if m := e.mach(ms); e.listed(m) && e.qualifies(o, m) {
				return fmt.Errorf("resting order %s could match machine %s", o.id, m.id)
			}
		}
	}
	return nil
}

// TestNoDoubleRent checks the invariants after every command of random
// runs (contention is high: 20 machines, 3 models, a third of all commands
// are orders, releases and cancels).
func TestNoDoubleRent(t *testing.T) {
	runs, per := propertyRuns, 25_000
	for seed := 0; seed < runs; seed++ {
		g := newGen(uint64(7000 + seed))
		if seed%2 == 1 {
			g = newWideGen(uint64(7000 + seed))
		}
		e, err := NewEngine(g.cfg)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < per; i++ {
			c := g.next()
			evs, _ := e.Apply(&c)
			g.observe(evs)
			if err := checkInvariants(e); err != nil {
				t.Fatalf("seed %d cmd %d %+v: %v", seed, i, c, err)
			}
		}
	}
}

// TestFailedCommandChangesNothing: every command that errors leaves the
// state digest as it was.
func TestFailedCommandChangesNothing(t *testing.T) {
	g := newGen(42)
	e, _ := NewEngine(g.cfg)
	failed := 0
	for i := 0; i < 30_000; i++ {
		c := g.next()
		before := e.StateDigest()
		evs, err := e.Apply(&c)
		g.observe(evs)
		if err != nil {
			failed++
			if e.StateDigest() != before {
				t.Fatalf("cmd %d %+v failed with %v but changed the state", i, c, err)
			}
		}
	}
	if failed < 1000 {
		t.Fatalf("only %d failures exercised", failed)
	}
}

// TestReplayIsExact: the encoded log, replayed into a fresh engine,
// reproduces every event byte for byte and the same final state; and
// Rebuild from the decoded log reaches the same digest.
func TestReplayIsExact(t *testing.T) {
	g := newGen(9)
	e, _ := NewEngine(g.cfg)
	var log [][]byte
	var out []string
	for i := 0; i < 100_000; i++ {
		c := g.next()
		log = append(log, MarshalCommand(nil, &c))
		evs, err := e.Apply(&c)
		g.observe(evs)
		out = append(out, fmt.Sprint(eventsString(evs), err))
	}
	r, _ := NewEngine(testConfig())
	var cmds []Command
	for i, b := range log {
		c, err := UnmarshalCommand(b)
		if err != nil {
			t.Fatal(err)
		}
		if again := MarshalCommand(nil, &c); string(again) != string(b) {
			t.Fatalf("cmd %d: re-encoding differs", i)
		}
		cmds = append(cmds, c)
		evs, err := r.Apply(&c)
		if got := fmt.Sprint(eventsString(evs), err); got != out[i] {
			t.Fatalf("cmd %d: replay gave\n%s\nwant\n%s", i, got, out[i])
		}
	}
	if r.StateDigest() != e.StateDigest() {
		t.Fatal("replayed state differs")
	}
	rb, err := Rebuild(testConfig(), cmds)
	if err != nil {
		t.Fatal(err)
	}
	if rb.StateDigest() != e.StateDigest() {
		t.Fatal("rebuilt state differs")
	}
}
