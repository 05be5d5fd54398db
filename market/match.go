package market

import (
	"math/bits"
	"slices"
	"strings"
)

// The matching rule (docs/matching.md has it with worked examples).
//
// Among listed offers that meet every constraint of the order (model or
// any, VRAM per GPU ≥ min, free GPUs on the one machine ≥ count, ask ≤ max
// price, RTT to the buyer's region ≤ max RTT), the order takes:
//
//  1. the lowest ask: the buyer pays the ask, so cheapest first is what a
//     price-taking buyer wants and what makes providers compete on price;
//  2. then the lowest RTT to the buyer's region: among equal prices the
//     closer machine is strictly better for the buyer;
//  3. then the higher reliability: among equal price and latency, the
//     machine least likely to miss epochs;
//  4. then the earliest listing: time priority rewards providers who list
//     first, as in any order book;
//  5. then the machine id (byte order): listing times can tie, and the
//     rule must be a total order or the result would depend on storage.
//
// A latency-first order swaps 1 and 2 (RTT, then ask, then the rest): for
// interactive or distributed work a few milliseconds are worth more than a
// few cents. Resting orders are served when capacity appears or frees,
// highest max price first, then earliest placed: the buyer willing to pay
// most gets scarce capacity, as in a price-priority book, and pays only
// the ask.

// better reports whether offer a ranks before offer b for a (price-first
// or latency-first) order. rtt is the RTT to the order's region.
func (e *Engine) better(lf bool, ap int64, artt, arel uint16, as uint32, bp int64, brtt, brel uint16, bs uint32) bool {
	if lf {
		if artt != brtt {
			return artt < brtt
		}
		if ap != bp {
			return ap < bp
		}
	} else {
		if ap != bp {
			return ap < bp
		}
		if artt != brtt {
			return artt < brtt
		}
	}
	if arel != brel {
		return arel > brel
	}
	ma, mb := e.mach(as), e.mach(bs)
	if ma.listedAt != mb.listedAt {
		return ma.listedAt < mb.listedAt
	}
	return strings.Compare(ma.id, mb.id) < 0
}

// qualifies checks an order's constraints against a listed machine.
func (e *Engine) qualifies(o *order, m *machine) bool {
	return (o.model < 0 || int32(m.model) == o.model) && int64(m.vram) >= o.minVRAM &&
		int64(bits.OnesCount64(m.avail())) >= o.count && m.price <= o.maxPrice && int64(m.rtt[o.region]) <= o.maxRTT
}

// bestOffer finds the best listed offer for o through the books.
//
// Offers are indexed per (GPU model, machine region), each book ordered by
// ask. An order considers only the books of its model (all models for
// "any") whose cheapest ask with enough free GPUs (exact up to 8 GPUs) is
// within its max price and whose RTT lower
// bound to the buyer's region is within its max RTT: the machine region
// is the latency band, and a tight bound rules out most regions from the
// book headers alone.
//
// Price-first, the candidate books are then merged lazily in ask order:
// read the book with the cheapest unread ask (lowest RTT bound on a tie),
// only up to the next book's cheapest unread ask, and stop once no book
// can hold an ask below the best found, or an equal ask at a lower RTT.
// So a match reads the offers cheaper than its answer that fail a
// constraint, the ties at its answer's ask that could win, and nothing
// else. Latency-first, books are read whole (up to the max price) in order
// of their lowest RTT to the buyer (exact per book), scanning just that
// region's RTT row in ask order and stopping once an offer at the book's
// lowest RTT is held and the asks pass it; every book whose lowest RTT is
// worse than the best found is dropped. In practice: the buyer's own
// region, one book, read until the cheapest offer at its lowest RTT.
func (e *Engine) bestOffer(o *order) (uint32, bool) {
	lo, hi := 0, e.nM
	if o.model >= 0 {
		lo, hi = int(o.model), int(o.model)+1
	}
	br := int(o.region)
	maxRTT := uint16(o.maxRTT)
	cands := e.bookCands[:0]
	rtts := e.bookRTT[br*len(e.books):]
	// An order for k GPUs ranks each book by its cheapest offer with k
	// free GPUs (book.ask): a book without one within the max price is not
	// a candidate, and the partly taken offers below it, which cannot
	// serve the order, do not draw the merge into the book early.
	asks := e.bookAsk[int(min(max(o.count, 1), askMaxK)-1)*len(e.books):]
	var best scanBest
	if hi-lo > 1 && !o.latencyFirst {
		modelAsks := e.modelAsk[int(min(max(o.count, 1), askMaxK)-1)*e.nM:]
		cands = e.priceFirstWide(lo, hi, asks, modelAsks, rtts, o, &best)
	} else {
		for bi := lo * e.nR; bi < hi*e.nR; bi++ {
			if p := asks[bi]; p <= o.maxPrice && rtts[bi] <= maxRTT {
				cands = append(cands, cursor{book: uint32(bi), head: p, bound: rtts[bi]})
				// Start loading the book's cheap end, where the merge
				// starts reading (the chunk's header and the first line of
				// its ask, free-GPU and cell columns): the candidates'
				// loads overlap instead of queueing one book after another.
				if h := e.bookHead[bi]; h != nil { // always, for a candidate
					e.warmSink += uint64(h.price[0]) + uint64(h.n) + uint64(h.avail[0]) + uint64(h.cell[0])
				}
			}
		}
		if o.latencyFirst {
			e.latencyFirst(cands, o, &best)
		} else {
			e.priceFirst(cands, o, &best)
		}
	}
	e.bookCands = cands[:0]
	if best.found {
		e.hint = rowHint{ok: true, slot: best.slot, c: best.c, i: best.i}
	}
	return best.slot, best.found
}

// cursor is a candidate book and how far a price-first merge has read it.
type cursor struct {
	book  uint32
	bound uint16 // the book's lowest RTT to the buyer's region
	ci, i int    // next unread row
	head  int64  // its ask
}

// curHeap is a min-heap of candidate books: price-first by (next unread
// ask, RTT bound), latency-first by (RTT bound, cheapest ask). A heap
// rather than a scan for the minimum because an any-model order has
// hundreds of candidate books and may read dozens. Which of two tied books
// comes first does not change the answer: the best is the minimum of a
// total order over every offer the merge cannot rule out.
type curHeap struct {
	c  []cursor
	lf bool
}

func (h *curHeap) less(i, j int) bool {
	a, b := &h.c[i], &h.c[j]
	if h.lf {
		return a.bound < b.bound || a.bound == b.bound && a.head < b.head
	}
	return a.head < b.head || a.head == b.head && a.bound < b.bound
}

func (h *curHeap) down(i int) {
	n := len(h.c)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h.c[i], h.c[m] = h.c[m], h.c[i]
		i = m
	}
}

func (h *curHeap) init() {
	for i := len(h.c)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *curHeap) pop() {
	last := len(h.c) - 1
	h.c[0] = h.c[last]
	h.c = h.c[:last]
	h.down(0)
}

type scanBest struct {
	found bool
	price int64
	rtt   uint16
	rel   uint16
	slot  uint32
	// where its row is, so the match can refresh it without a search
	c *chunk
	i int
}

func (e *Engine) offer(best *scanBest, lf bool, c *chunk, i int, rt uint16) {
	if !best.found || e.better(lf, c.price[i], rt, c.rel[i], c.slot[i], best.price, best.rtt, best.rel, best.slot) {
		*best = scanBest{found: true, price: c.price[i], rtt: rt, rel: c.rel[i], slot: c.slot[i], c: c, i: i}
	}
}

func (e *Engine) priceFirst(cands []cursor, o *order, best *scanBest) {
	br, maxRTT, cnt, minV := int(o.region), uint16(o.maxRTT), uint8(o.count), uint16(o.minVRAM)
	h := curHeap{c: cands}
	h.init()
	for len(h.c) > 0 {
		// The book with the cheapest unread ask, lowest RTT bound on a tie;
		// and the cheapest unread ask among the others (the root's
		// children), up to which it is read.
		cur := &h.c[0]
		if best.found && (cur.head > best.price || cur.head == best.price && cur.bound > best.rtt) {
			return // the cheapest remaining ask cannot beat or tie the best
		}
		next := o.maxPrice
		for j := 1; j <= 2 && j < len(h.c); j++ {
			if h.c[j].head < next {
				next = h.c[j].head
			}
		}
		limit := next
		if best.found && best.price < limit {
			limit = best.price
		}
		done := true
		bk := &e.books[cur.book]
		if cur.ci == 0 && cur.i == 0 {
			// Unread: start at the book's ask for the order's GPU count.
			// The offers below it have too few free GPUs, and in a busy
			// book they are most of its cheap end (full machines keep
			// their rows).
			cur.ci, cur.i = bk.seek(cur.head)
		}
	scan:
		for ; ; cur.ci, cur.i = cur.ci+1, 0 {
			if cur.i == 0 && cur.ci < len(bk.top) && bk.top[cur.ci] < cnt {
				continue // no row in the chunk has enough free GPUs
			}
			var c *chunk
			if cur.ci == 0 {
				if c = e.bookHead[cur.book]; c == nil {
					break // never: a candidate has offers
				}
			} else if cur.ci < len(bk.chunks) {
				c = bk.chunks[cur.ci]
			} else {
				break
			}
			row := c.rttRow(br)
			for ; cur.i < c.n; cur.i++ {
				i := cur.i
				if i%8 == 0 && !anyAtLeast(c.avail[i:i+8], cnt) {
					// Eight rows without enough free GPUs: none can serve
					// the order, whatever they ask (the first row read
					// after them still stops the read at the limit).
					cur.i += 7
					continue
				}
				p := c.price[i]
				if p > limit {
					if p <= o.maxPrice && (!best.found || p <= best.price) {
						cur.head, done = p, false // read on later, in ask order
					}
					break scan
				}
				// Free GPUs first: the cheap end of a busy book is mostly
				// offers already partly taken, and testing them on the
				// avail column spares the RTT row and VRAM column lines.
				if c.avail[i] < cnt {
					continue
				}
				rt := row[c.cell[i]]
				if rt > maxRTT || c.vram[i] < minV || best.found && p == best.price && rt > best.rtt {
					continue
				}
				e.offer(best, false, c, i, rt)
				limit = best.price
			}
		}
		if done {
			h.pop()
		} else {
			h.down(0)
		}
	}
}

// priceFirstWide is the price-first search over the books of models [lo,
// hi) (an order for any model: a thousand books in a large catalog, most
// of them within its max price). Building and heapifying them all was
// most of such an order's time, so it reads the book with the cheapest
// ask first, alone, and then merges only the books that can still beat or
// tie what that found: usually none. A model whose cheapest ask (modelAsks,
// exact) is above the max price or the best so far is passed over whole.
// The answer is the same: the first read resolves its book entirely
// (priceFirst reads a book up to and including the best's ask), and the
// books left out are those priceFirst itself would stop before. It
// returns the candidate slice for reuse.
func (e *Engine) priceFirstWide(lo, hi int, asks, modelAsks []int64, rtts []uint16, o *order, best *scanBest) []cursor {
	maxRTT := uint16(o.maxRTT)
	first, fp, fb := -1, int64(0), uint16(0)
	for m := lo; m < hi; m++ {
		if ma := modelAsks[m]; ma > o.maxPrice || first >= 0 && ma > fp {
			continue
		}
		for bi := m * e.nR; bi < (m+1)*e.nR; bi++ {
			p, r := asks[bi], rtts[bi]
			if p <= o.maxPrice && r <= maxRTT && (first < 0 || p < fp || p == fp && r < fb) {
				first, fp, fb = bi, p, r
			}
		}
	}
	cands := e.bookCands[:0]
	if first < 0 {
		return cands
	}
	cands = append(cands, cursor{book: uint32(first), head: fp, bound: fb})
	e.priceFirst(cands, o, best)
	cands = cands[:0]
	for m := lo; m < hi; m++ {
		if ma := modelAsks[m]; ma > o.maxPrice || best.found && ma > best.price {
			continue
		}
		for bi := m * e.nR; bi < (m+1)*e.nR; bi++ {
			p, r := asks[bi], rtts[bi]
			if bi == first || p > o.maxPrice || r > maxRTT || best.found && (p > best.price || p == best.price && r > best.rtt) {
				continue
			}
			cands = append(cands, cursor{book: uint32(bi), head: p, bound: r})
		}
	}
	if len(cands) > 0 {
		e.priceFirst(cands, o, best)
	}
	return cands
}

func (e *Engine) latencyFirst(cands []cursor, o *order, best *scanBest) {
	br, cnt, minV := int(o.region), uint8(o.count), uint16(o.minVRAM)
	h := curHeap{c: cands, lf: true}
	h.init()
	for len(h.c) > 0 {
		bi, floor, ask := h.c[0].book, h.c[0].bound, h.c[0].head // no offer in the book is faster than floor
		h.pop()
		if best.found && floor > best.rtt {
			return // every remaining book is slower than the best
		}
		b := &e.books[bi]
		cut := uint16(o.maxRTT)
		if best.found {
			cut = best.rtt
		}
		// From the book's ask for the order's GPU count, as priceFirst.
		ci0, i0 := b.seek(ask)
	scan:
		for ci := ci0; ci < len(b.chunks); ci++ {
			if b.top[ci] < cnt {
				continue // no row in the chunk has enough free GPUs
			}
			c, from := b.chunks[ci], 0
			if ci == ci0 {
				from = i0
			}
			if c.price[0] > o.maxPrice {
				break
			}
			row := c.rttRow(br)
			for i := from; i < c.n; i++ {
				rt := row[c.cell[i]]
				if best.found && best.rtt == floor && c.price[i] > best.price {
					// The best already has the book's lowest RTT and every
					// later offer asks more: nothing after it can win.
					break scan
				}
				if rt > cut || c.price[i] > o.maxPrice || c.avail[i] < cnt || c.vram[i] < minV ||
					best.found && rt == cut && c.price[i] > best.price {
					continue
				}
				e.offer(best, true, c, i, rt)
				cut = best.rtt
			}
		}
	}
}

// sweep serves resting on-demand orders after a command that may have
// added or improved capacity on the changed machines.
//
// Invariant: after every command no resting order can match any listed
// offer (it would have matched when placed, or in an earlier sweep). So
// after a change only the changed machines can newly qualify, and the best
// offer for a resting order is the best among them: the sweep scans only
// the resting orders of those machines' models (and "any") whose max price
// reaches the machines' asks, takes them in priority order (highest max
// price, then earliest), and gives each the best changed machine that
// still fits. Matching reduces capacity, which keeps the invariant.
func (e *Engine) sweep(changed []uint32) {
	if len(changed) == 0 || e.resting == 0 {
		return
	}
	slices.Sort(changed)
	cands := e.cands[:0]
	for i, s := range changed {
		if i > 0 && changed[i-1] == s {
			continue
		}
		if m := e.mach(s); m.alive && e.listed(m) {
			cands = append(cands, s)
		}
	}
	if len(cands) == 0 {
		e.cands = cands
		return
	}
	// Group by model, cheapest first within a model.
	slices.SortFunc(cands, func(a, b uint32) int {
		ma, mb := e.mach(a), e.mach(b)
		if ma.model != mb.model {
			return int(ma.model) - int(mb.model)
		}
		if ma.price != mb.price {
			if ma.price < mb.price {
				return -1
			}
			return 1
		}
		return int(a) - int(b)
	})
	coll := e.coll[:0]
	runs := 0
	minAll := e.mach(cands[0]).price
	for i := 0; i < len(cands); {
		md := e.mach(cands[i]).model
		j := i
		for j < len(cands) && e.mach(cands[j]).model == md {
			j++
		}
		group := cands[i:j]
		if p := e.mach(group[0]).price; p < minAll {
			minAll = p
		}
		n := len(coll)
		coll = e.collect(coll, &e.rest[md], e.mach(group[0]).price, group)
		if len(coll) > n {
			runs++
		}
		i = j
	}
	n := len(coll)
	coll = e.collect(coll, &e.rest[e.nM], minAll, cands)
	if len(coll) > n {
		runs++
	}
	// Each list is read in priority order, so one run needs no sort (the
	// usual case: one model's orders, none for any model).
	if runs > 1 {
		slices.SortFunc(coll, func(a, b restKey) int {
			if restLess(a, b) {
				return -1
			}
			if restLess(b, a) {
				return 1
			}
			return 0
		})
	}
	listed := len(cands)
	for _, k := range coll {
		if listed == 0 {
			break // every candidate is taken: no later order can match
		}
		o := e.ord(k.slot)
		var (
			found bool
			bs    uint32
		)
		for _, s := range cands {
			m := e.mach(s)
			if !e.listed(m) || !e.qualifies(o, m) {
				continue
			}
			if !found || e.better(o.latencyFirst, m.price, m.rtt[o.region], m.rel, s, e.mach(bs).price, e.mach(bs).rtt[o.region], e.mach(bs).rel, bs) {
				found, bs = true, s
			}
		}
		if found {
			e.unrest(k.slot)
			e.match(k.slot, bs)
			if !e.listed(e.mach(bs)) {
				listed--
			}
		}
	}
	e.cands, e.coll = cands, coll[:0]
}

// collect appends the resting orders of l, in priority order, whose max
// price reaches minPrice and that fit at least one of the machines.
func (e *Engine) collect(coll []restKey, l *restList, minPrice int64, ms []uint32) []restKey {
	for _, c := range l.chunks {
		for _, k := range c {
			if -k.neg < minPrice {
				return coll
			}
			for _, s := range ms {
				m := e.mach(s) // listed, of the list's model (or any)
				if m.price <= -k.neg && m.rtt[k.region] <= k.maxRTT && m.vram >= k.minVRAM &&
					bits.OnesCount64(m.avail()) >= int(k.count) {
					coll = append(coll, k)
					break
				}
			}
		}
	}
	return coll
}
