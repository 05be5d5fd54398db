package market

import (
	"encoding/binary"
	"math/bits"
)

// Storage is designed for a million offers with little garbage-collector
// work: offers live in one slice of structs indexed by a uint32 slot (freed
// slots are reused from a free list), index entries are pointer-free values
// stored in chunks, and heaps are slices of (time, slot) pairs. The GC then
// scans a few thousand chunk headers and the id strings, not millions of
// pointers.

// chunkMax bounds a chunk: an insert shifts at most chunkMax rows, and a
// book of n offers has about 2n/chunkMax chunks to binary-search. Measured
// at 1M offers with the columns and cells below: 64 against 128, about 5 %
// more ops/s and a lower match p99 (3.1–3.6 against 3.6–4.3 µs), since a
// price or listing change shifts half the bytes and a match rarely reads
// past a book's first chunk either way; 32 was no faster than 64, and
// latency-first scans chase more chunk pointers.
const chunkMax = 64

// chunk holds up to chunkMax offers of one book in (price, slot) order,
// column by column: everything the matcher needs to reject or rank an
// offer without touching the machine struct. Columns keep a scan on
// contiguous memory and let it read only what it tests: a price-first scan
// walks the price column, a latency-first scan walks the one RTT row of
// the buyer's region (2 bytes an offer). Kept in step with the machines by
// Engine.sync.
type chunk struct {
	n int
	// rtt holds one row of chunkMax RTTs per catalog region: row r is
	// rtt[r*chunkMax : (r+1)*chunkMax], indexed by cell, not by position.
	// Its header shares n's cache line, and the columns follow in the
	// order a scan tests them, so reading the head of a chunk costs as
	// few lines as it can.
	rtt []uint16
	// skey and sslot sample the keys of every sampleStep-th row (row
	// j*sampleStep at j; j = 0 unused), beside the header: a row search
	// picks its 16-row stretch from these two lines and then binary-
	// searches 2 lines of the ask column, where a search of the whole
	// column chased 4 or 5 lines in turn. Kept by resample.
	skey  [chunkMax / sampleStep]int64
	sslot [chunkMax / sampleStep]uint32
	price [chunkMax]int64
	avail [chunkMax]uint8
	vram  [chunkMax]uint16
	rel   [chunkMax]uint16
	slot  [chunkMax]uint32
	// cell[i] is where row i's RTTs sit in each RTT row; cell[n:] are the
	// free cells (cell is always a permutation of 0..chunkMax-1). The RTT
	// rows are most of a chunk (2 bytes an offer per region, 40 of its 57
	// at 20 regions), so keeping them in place and moving this byte
	// instead makes an insert or removal move a third of the bytes it
	// would: measured at 1M offers, the shifts were a sixth of the run.
	cell [chunkMax]uint8
}

// rttRow is region r's RTT row, indexed by cell.
func (c *chunk) rttRow(r int) []uint16 { return c.rtt[r*chunkMax : (r+1)*chunkMax] }

// rttAt is row i's RTT to region r.
func (c *chunk) rttAt(r, i int) uint16 { return c.rtt[r*chunkMax+int(c.cell[i])] }

// set writes machine m's row i.
func (c *chunk) set(i int, m *machine, s uint32, nR int) {
	c.price[i], c.slot[i], c.vram[i], c.rel[i] = m.price, s, m.vram, m.rel
	c.avail[i] = uint8(bits.OnesCount64(m.avail()))
	at := int(c.cell[i])
	for r := 0; r < nR; r++ {
		c.rtt[r*chunkMax+at] = m.rtt[r]
	}
}

// shift opens (d = 1) or closes (d = -1) row p. An opened row takes the
// first free cell; a closed row's cell becomes free.
func (c *chunk) shift(p, d int) {
	n := c.n
	if d > 0 {
		copy(c.price[p+1:n+1], c.price[p:n])
		copy(c.slot[p+1:n+1], c.slot[p:n])
		copy(c.vram[p+1:n+1], c.vram[p:n])
		copy(c.rel[p+1:n+1], c.rel[p:n])
		copy(c.avail[p+1:n+1], c.avail[p:n])
		f := c.cell[n]
		copy(c.cell[p+1:n+1], c.cell[p:n])
		c.cell[p] = f
		c.n++
		c.resample(p + 1) // row p is the caller's to set
		return
	}
	copy(c.price[p:n-1], c.price[p+1:n])
	copy(c.slot[p:n-1], c.slot[p+1:n])
	copy(c.vram[p:n-1], c.vram[p+1:n])
	copy(c.rel[p:n-1], c.rel[p+1:n])
	copy(c.avail[p:n-1], c.avail[p+1:n])
	f := c.cell[p]
	copy(c.cell[p:n-1], c.cell[p+1:n])
	c.cell[n-1] = f
	c.n--
	c.resample(p)
}

// sampleStep is the row distance between two key samples of a chunk.
const sampleStep = 16

// resample refreshes the key samples of rows from on.
func (c *chunk) resample(from int) {
	for j := max((from+sampleStep-1)/sampleStep, 1); j*sampleStep < c.n; j++ {
		c.skey[j], c.sslot[j] = c.price[j*sampleStep], c.slot[j*sampleStep]
	}
}

// pos is the first row whose key is ≥ (price, slot), or n.
func (c *chunk) pos(price int64, slot uint32) int {
	lo, hi := 0, c.n
	for j := 1; j*sampleStep < c.n; j++ {
		if !keyLess(c.skey[j], c.sslot[j], price, slot) {
			hi = j * sampleStep
			break
		}
		lo = j*sampleStep + 1
	}
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if keyLess(c.price[mid], c.slot[mid], price, slot) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// book is one (model, machine region) list of listed offers in (ask,
// slot) order: a two-level sorted list of chunks. The header fields a
// match reads first (cheapest ask, RTT bounds) sit together, and the books
// of one model are adjacent in Engine.books, so choosing which books to
// read touches a few cache lines.
type book struct {
	n int
	// full counts the rows with no free GPU (Stats: n - full are listed).
	full int
	// chunks sits on the header's first cache line: a scan reads nothing
	// else of the header.
	chunks []*chunk
	// minRTT[r] is the lowest RTT from any offer in the book to region r,
	// exact, and minCnt[r] how many offers have it. A match skips a whole
	// book that cannot meet the order's max RTT (a latency band: most
	// regions are out of reach of a tight bound) or beat the best RTT found
	// so far; and a latency-first scan stops once it holds an offer at the
	// book's minimum and the asks pass it. Kept exact by counting: only
	// when the last offer at the minimum leaves is a row rescanned.
	minRTT [MaxRegions]uint16
	minCnt [MaxRegions]uint32
	// ask[k-1] is the cheapest ask among offers with at least k free GPUs
	// (MaxInt64 when none), k = 1..askMaxK, exact. Busy books fill their
	// cheap end with offers already partly or wholly taken (a machine
	// with no free GPU keeps its row: see Engine.present): for an order of
	// k GPUs a book without such an offer within the max price is not a
	// candidate, and the merge ranks the book by this ask, not by offers
	// that cannot serve the order. Kept exact by availChanged; mirrored
	// into Engine.bookAsk.
	ask [askMaxK]int64
	// askMoved: ask changed since the engine last mirrored it.
	askMoved bool
	// last key of each chunk, contiguous so the chunk search does not
	// chase a pointer per probe.
	lastPrice []int64
	lastSlot  []uint32
	// top[ci] bounds the free GPUs of chunk ci's rows from above (raised
	// at once when a row's free GPUs rise past it, lowered when a repair
	// of ask reads the whole chunk): fixAsks and both scans pass over a
	// chunk that cannot serve them without loading it, so the full
	// machines that fill a busy book's cheap end cost a byte a chunk.
	top []uint8
}

// askMaxK bounds the counts book.ask is kept for: orders for more GPUs
// use ask[askMaxK-1], a lower bound for them.
const askMaxK = 8

// availChanged updates ask for a row at price whose free GPUs went from
// a0 to a1 (0 for a row that was not, or is no longer, in the book); the
// row must already hold a1. Only when the row was the cheapest with k
// free GPUs and drops below k is the book rescanned, from its cheap end.
func (b *book) availChanged(price int64, a0, a1 uint8) {
	var stale uint8 // bit k-1
	for k := uint8(1); k <= askMaxK; k++ {
		switch {
		case a1 >= k && price < b.ask[k-1]:
			b.ask[k-1], b.askMoved = price, true
		case a0 >= k && a1 < k && price == b.ask[k-1]:
			stale |= 1 << (k - 1)
		}
	}
	if stale != 0 {
		b.fixAsks(stale, price)
		b.askMoved = true
	}
}

// rowAvail is availChanged for a row that stays in the book.
func (b *book) rowAvail(price int64, a0, a1 uint8) {
	switch {
	case a0 == 0 && a1 != 0:
		b.full--
	case a0 != 0 && a1 == 0:
		b.full++
	}
	b.availChanged(price, a0, a1)
}

// fixAsks recomputes the stale entries of ask: the first offer in ask
// order with enough free GPUs. Each stale entry held price, so every
// offer cheaper than it has too few free GPUs, and the search starts
// there: a busy book's cheap end is full machines (they keep their rows),
// and reading them all from the book's head on every change made a book
// whose cheapest offers were rented cost its whole length a match.
func (b *book) fixAsks(stale uint8, price int64) {
	ci0, i0 := b.seek(price)
	for ci := ci0; ci < len(b.chunks); ci++ {
		kmin := uint8(bits.TrailingZeros8(stale)) + 1
		if b.top[ci] < kmin {
			continue // no row here has enough free GPUs for any entry
		}
		c, i := b.chunks[ci], 0
		if ci == ci0 {
			i = i0
		}
		whole, before := i == 0, stale
		for ; i < c.n && stale != 0; i++ {
			if i%8 == 0 && !anyAtLeast(c.avail[i:i+8], uint8(bits.TrailingZeros8(stale))+1) {
				i += 7 // eight rows, none with enough free GPUs for any entry
				continue
			}
			a := c.avail[i]
			for x := stale; x != 0; x &= x - 1 {
				j := bits.TrailingZeros8(x)
				if a >= uint8(j+1) {
					b.ask[j] = c.price[i]
					stale &^= 1 << j
				}
			}
		}
		if whole && stale == before {
			// Read whole and nothing had kmin free GPUs: every row has
			// fewer.
			b.top[ci] = kmin - 1
		}
		if stale == 0 {
			return
		}
	}
	for x := stale; x != 0; x &= x - 1 {
		b.ask[bits.TrailingZeros8(x)] = 1<<63 - 1
	}
}

// anyAtLeast reports whether any of the eight free-GPU counts in a is at
// least k (1..MaxGPUs), eight at a time: counts and k are at most
// MaxGPUs = 64, so adding 0x80-k to each byte gives 0x40..0xBF, carries
// into no other byte and sets its top bit exactly when the count is ≥ k.
// Bytes past a chunk's n are stale rows: a false yes there only sends
// the caller to its row-by-row test, which stops at n.
func anyAtLeast(a []uint8, k uint8) bool {
	w := binary.LittleEndian.Uint64(a[:8])
	return (w+0x0101010101010101*uint64(0x80-k))&0x8080808080808080 != 0
}

func keyLess(p1 int64, s1 uint32, p2 int64, s2 uint32) bool {
	return p1 < p2 || (p1 == p2 && s1 < s2)
}

// chunkFor is the first chunk whose last key is ≥ (price, slot), or the
// last chunk.
func (b *book) chunkFor(price int64, slot uint32) int {
	lo, hi := 0, len(b.chunks)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if keyLess(b.lastPrice[mid], b.lastSlot[mid], price, slot) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == len(b.chunks) {
		lo--
	}
	return lo
}

// seek is where a book's first offer asking at least price is: chunk
// ci, row i (i = the chunk's n when there is none). Every offer before
// it asks less.
func (b *book) seek(price int64) (ci, i int) {
	if len(b.chunks) == 0 || b.lastPrice[0] >= price {
		return 0, 0 // within the first chunk: scanning it is as cheap
	}
	ci = b.chunkFor(price, 0)
	return ci, b.chunks[ci].pos(price, 0)
}

func (b *book) relast(ci int) {
	c := b.chunks[ci]
	b.lastPrice[ci], b.lastSlot[ci] = c.price[c.n-1], c.slot[c.n-1]
}

func (b *book) newChunk(nR int) *chunk {
	c := &chunk{rtt: make([]uint16, nR*chunkMax)}
	for i := range c.cell {
		c.cell[i] = uint8(i)
	}
	return c
}

// insert adds machine m (slot s) at its ask, and returns the chunk it
// put the row in (machine.ixChunk).
func (b *book) insert(m *machine, s uint32, nR int) *chunk {
	if b.n == 0 {
		for i := range b.minRTT {
			b.minRTT[i], b.minCnt[i] = 0xFFFF, 0
		}
	}
	b.addRTTs(m, nR)
	b.n++
	a := uint8(bits.OnesCount64(m.avail()))
	if a == 0 {
		b.full++
	}
	if len(b.chunks) == 0 {
		c := b.newChunk(nR)
		c.n = 1
		c.set(0, m, s, nR)
		b.chunks = append(b.chunks, c)
		b.lastPrice = append(b.lastPrice, 0)
		b.lastSlot = append(b.lastSlot, 0)
		b.top = append(b.top, a)
		b.relast(0)
		b.availChanged(m.price, 0, a)
		return c
	}
	ci := b.chunkFor(m.price, s)
	c := b.chunks[ci]
	if c.n == chunkMax {
		// Split in halves, then insert into the half that holds the key.
		half := chunkMax / 2
		right := b.newChunk(nR)
		right.n = chunkMax - half
		copy(right.price[:], c.price[half:])
		copy(right.slot[:], c.slot[half:])
		copy(right.vram[:], c.vram[half:])
		copy(right.rel[:], c.rel[half:])
		copy(right.avail[:], c.avail[half:])
		// The right half's rows take its cells in order; the left's cells
		// for them become its free cells.
		for r := 0; r < nR; r++ {
			src, dst := c.rttRow(r), right.rttRow(r)
			for j, at := range c.cell[half:] {
				dst[j] = src[at]
			}
		}
		c.n = half // its samples below half stand
		right.resample(0)
		b.chunks = append(b.chunks, nil)
		copy(b.chunks[ci+2:], b.chunks[ci+1:])
		b.chunks[ci+1] = right
		b.lastPrice = append(b.lastPrice, 0)
		copy(b.lastPrice[ci+2:], b.lastPrice[ci+1:])
		b.lastSlot = append(b.lastSlot, 0)
		copy(b.lastSlot[ci+2:], b.lastSlot[ci+1:])
		b.top = append(b.top, 0)
		copy(b.top[ci+2:], b.top[ci+1:])
		b.top[ci+1] = b.top[ci] // the halves' rows are the chunk's
		b.relast(ci)
		b.relast(ci + 1)
		if !keyLess(b.lastPrice[ci], b.lastSlot[ci], m.price, s) {
			// stays in the left half
		} else {
			ci, c = ci+1, right
		}
	}
	p := c.pos(m.price, s)
	c.shift(p, 1)
	c.set(p, m, s, nR)
	b.top[ci] = max(b.top[ci], a)
	if p%sampleStep == 0 {
		c.resample(p)
	}
	b.relast(ci)
	b.availChanged(m.price, 0, a)
	return c
}

// find returns the chunk and row of (price, slot), which must be there,
// trying hint first: the chunk the row was put in (machine.ixChunk). It
// still holds the row unless a split moved it, and then the row test
// fails and the book is searched; a chunk dropped from the book is empty
// for good, and a machine has one row, so a stale hint never finds a
// wrong one. A hit spares the search of the book's chunk keys, a chain of
// dependent cache misses at scale.
func (b *book) find(price int64, slot uint32, hint *chunk) (*chunk, int) {
	if c := hint; c != nil {
		if p := c.pos(price, slot); p < c.n && c.slot[p] == slot && c.price[p] == price {
			return c, p
		}
	}
	c := b.chunks[b.chunkFor(price, slot)]
	p := c.pos(price, slot)
	if p == c.n || c.slot[p] != slot || c.price[p] != price {
		panic("market: index out of step with machines")
	}
	return c, p
}

// addRTTs counts machine m's RTTs into the per-region minima.
func (b *book) addRTTs(m *machine, nR int) {
	for r, v := range m.rtt[:nR] {
		switch {
		case v < b.minRTT[r]:
			b.minRTT[r], b.minCnt[r] = v, 1
		case v == b.minRTT[r]:
			b.minCnt[r]++
		}
	}
}

// dropRTTs uncounts row i of c and returns the regions whose minimum it
// was the last holder of: the caller rescans them (fixMins) once the row
// is gone or rewritten. held, when not nil, is a copy of the row's RTTs
// (the machine's own, when they have not changed since the row was
// written): one cache line instead of the row's nR cells, which lie in nR
// lines of the chunk.
func (b *book) dropRTTs(c *chunk, i, nR int, held []uint16) uint64 {
	var stale uint64
	at := int(c.cell[i])
	for r := 0; r < nR; r++ {
		var v uint16
		if held != nil {
			v = held[r] // the chunk's cell is not read at all
		} else {
			v = c.rtt[r*chunkMax+at]
		}
		if v == b.minRTT[r] {
			if b.minCnt[r]--; b.minCnt[r] == 0 {
				stale |= 1 << r
			}
		}
	}
	return stale
}

// fixMins recomputes the minima of the stale regions.
func (b *book) fixMins(stale uint64) {
	for stale != 0 {
		r := bits.TrailingZeros64(stale)
		stale &= stale - 1
		lo, n := uint16(0xFFFF), uint32(0)
		for _, c := range b.chunks {
			row := c.rttRow(r)
			for _, at := range c.cell[:c.n] {
				v := row[at]
				switch {
				case v < lo:
					lo, n = v, 1
				case v == lo:
					n++
				}
			}
		}
		b.minRTT[r], b.minCnt[r] = lo, n
	}
}

// update rewrites the row of machine m (slot s, same ask) in place; held
// is as for dropRTTs.
func (b *book) update(m *machine, s uint32, nR int, held []uint16) {
	c, i := b.find(m.price, s, m.ixChunk)
	stale := b.dropRTTs(c, i, nR, held)
	a0 := c.avail[i]
	c.set(i, m, s, nR)
	b.addRTTs(m, nR)
	b.fixMins(stale &^ b.nonZeroMins(stale))
	b.raise(m.price, s, a0, c.avail[i])
	b.rowAvail(m.price, a0, c.avail[i])
}

// raise keeps top for row (price, slot), whose free GPUs went from a0 to
// a1, in place.
func (b *book) raise(price int64, slot uint32, a0, a1 uint8) {
	if a1 <= a0 {
		return // a bound stays a bound
	}
	if ci := b.chunkFor(price, slot); a1 > b.top[ci] {
		b.top[ci] = a1
	}
}

// nonZeroMins is the subset of regions whose minimum is still held.
func (b *book) nonZeroMins(regions uint64) uint64 {
	var held uint64
	for x := regions; x != 0; x &= x - 1 {
		if r := bits.TrailingZeros64(x); b.minCnt[r] != 0 {
			held |= 1 << r
		}
	}
	return held
}

// remove takes row (price, slot) out of the book; held is as for
// dropRTTs, hint as for find.
func (b *book) remove(price int64, slot uint32, nR int, held []uint16, hint *chunk) {
	c, p := b.find(price, slot, hint)
	// The chunk's place in the list matters only when its last key
	// changes or it empties: the row is its last. The chunk keys still
	// hold the row's key then, so the search finds this chunk.
	ci := -1
	if p == c.n-1 {
		ci = b.chunkFor(price, slot)
	}
	stale := b.dropRTTs(c, p, nR, held)
	a0 := c.avail[p]
	c.shift(p, -1)
	b.n--
	if a0 == 0 {
		b.full--
	}
	if c.n > 0 {
		if ci >= 0 {
			b.relast(ci)
		}
	} else {
		b.chunks = append(b.chunks[:ci], b.chunks[ci+1:]...)
		b.chunks[:len(b.chunks)+1][len(b.chunks)] = nil // drop the freed chunk
		b.lastPrice = append(b.lastPrice[:ci], b.lastPrice[ci+1:]...)
		b.lastSlot = append(b.lastSlot[:ci], b.lastSlot[ci+1:]...)
		b.top = append(b.top[:ci], b.top[ci+1:]...)
	}
	if b.n > 0 {
		b.fixMins(stale)
	}
	b.availChanged(price, a0, 0)
}

// deadlines is an indexed min-heap of (at, slot): heartbeat deadlines,
// reservation expiries and order expiries. Indexed (pos per slot) so that
// a confirmed, cancelled or released reservation or a cancelled order
// leaves it at once, and each slot is in it at most once (a lazy heap
// would keep stale entries, millions at scale). Heartbeats do not touch it
// at all, and a forgotten machine's entry stays until it comes up: see
// machine.deadline. At most one entry per slot bounds that too.
type deadlines struct {
	h   []dl
	pos []int32 // slot → index in h, -1 when absent
}

type dl struct {
	at   int64
	slot uint32
}

func (d *deadlines) less(i, j int) bool {
	a, b := d.h[i], d.h[j]
	return a.at < b.at || (a.at == b.at && a.slot < b.slot)
}

func (d *deadlines) swap(i, j int) {
	d.h[i], d.h[j] = d.h[j], d.h[i]
	d.pos[d.h[i].slot] = int32(i)
	d.pos[d.h[j].slot] = int32(j)
}

func (d *deadlines) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !d.less(i, p) {
			return
		}
		d.swap(i, p)
		i = p
	}
}

func (d *deadlines) down(i int) {
	n := len(d.h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && d.less(r, l) {
			m = r
		}
		if !d.less(m, i) {
			return
		}
		d.swap(i, m)
		i = m
	}
}

func (d *deadlines) grow(slot uint32) {
	for int(slot) >= len(d.pos) {
		d.pos = append(d.pos, -1)
	}
}

func (d *deadlines) has(slot uint32) bool { return int(slot) < len(d.pos) && d.pos[slot] >= 0 }

// set inserts slot or moves it to at.
func (d *deadlines) set(slot uint32, at int64) {
	d.grow(slot)
	if i := d.pos[slot]; i >= 0 {
		d.h[i].at = at
		d.up(int(i))
		d.down(int(d.pos[slot]))
		return
	}
	d.h = append(d.h, dl{at: at, slot: slot})
	d.pos[slot] = int32(len(d.h) - 1)
	d.up(len(d.h) - 1)
}

func (d *deadlines) remove(slot uint32) {
	if int(slot) >= len(d.pos) || d.pos[slot] < 0 {
		return
	}
	i := int(d.pos[slot])
	last := len(d.h) - 1
	if i != last {
		d.swap(i, last)
	}
	d.h = d.h[:last]
	d.pos[slot] = -1
	if i != last {
		moved := d.h[i].slot
		d.up(i)
		d.down(int(d.pos[moved]))
	}
}

// popDue removes and appends to out every entry with at ≤ now.
func (d *deadlines) popDue(now int64, out []dl) []dl {
	for len(d.h) > 0 && d.h[0].at <= now {
		top := d.h[0]
		out = append(out, top)
		d.remove(top.slot)
	}
	return out
}
