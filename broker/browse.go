package broker

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/highway-compute/highway/market"
)

// modelIndex is one model's machines laid out for browsing. Browsing is
// the marketplace's hottest read and scans every machine of a model: with
// 100 000 GPUs listed, following one pointer per machine into its full
// state (strings, maps, slices) costs several cache misses each, which was
// most of a browse request. The rows hold only what filtering and ordering
// read, densely, and are rewritten on every write to a machine (a
// heartbeat costs a few stores here).
//
// A browse walks a view: the rows' slots already in the order a sort asks
// for, so a page costs the rows up to its last offer rather than a pass
// over the model and a selection. Views are built the first time an order
// is asked for and then kept in order on every write; only a change of a
// sort key (price, RTT, reliability) moves a slot, so the heartbeats that
// change free GPUs cost nothing here.
type modelIndex struct {
	rows []browseRow
	// rtts holds row i's RTT to region r at i*len(regions)+r.
	rtts []uint16
	// viewMu guards views against readers (which hold the broker's read
	// lock) building one at the same time; writers hold the write lock
	// and need no more.
	viewMu sync.Mutex
	views  map[viewKey][]int32
}

// viewKey is an order: a sort and the region RTTs are measured to (-1:
// each machine's own region).
type viewKey struct {
	sort   uint8
	region int
}

const (
	sortPrice uint8 = iota
	sortRTT
	sortReliability
	// sortPricePerH100 is the price of a measured H100-hour: what a GPU
	// hour buys, by the machine's own proof rather than its class.
	sortPricePerH100
)

// key is row s's sort key in order k: the matching rule's price, RTT,
// reliability, with the asked-for field first.
func (ix *modelIndex) key(s int32, k viewKey, regions int) [3]int64 {
	r := &ix.rows[s]
	ri := k.region
	if ri < 0 {
		ri = r.region
	}
	// An unmeasured region counts as the farthest possible.
	rtt := int64(market.MaxRTTms)
	if ri >= 0 {
		rtt = int64(ix.rtts[int(s)*regions+ri])
	}
	switch k.sort {
	case sortRTT:
		return [3]int64{rtt, r.price, -r.rel}
	case sortReliability:
		return [3]int64{-r.rel, rtt, r.price}
	case sortPricePerH100:
		return [3]int64{r.pph, rtt, -r.rel}
	}
	return [3]int64{r.price, rtt, -r.rel}
}

// cmp orders slots by key, then by machine id (stable, and unique, so
// every slot has exactly one place in a view).
func (ix *modelIndex) cmp(a, c int32, k viewKey, regions int) int {
	return compareOffers(ix.key(a, k, regions), ix.key(c, k, regions), ix.rows[a].m.id, ix.rows[c].m.id)
}

// compareOffers orders two offers by sort key, then machine id (compared
// only on a tie: this runs for every step of a view's upkeep).
func compareOffers(ka, kc [3]int64, ida, idc string) int {
	if c := slices.Compare(ka[:], kc[:]); c != 0 {
		return c
	}
	return strings.Compare(ida, idc)
}

// view returns the slots in order k, building it on first use. The caller
// holds the broker's read lock.
func (ix *modelIndex) view(k viewKey, regions int) []int32 {
	ix.viewMu.Lock()
	defer ix.viewMu.Unlock()
	if v, ok := ix.views[k]; ok {
		return v
	}
	v := make([]int32, len(ix.rows))
	for i := range v {
		v[i] = int32(i)
	}
	slices.SortFunc(v, func(a, c int32) int { return ix.cmp(a, c, k, regions) })
	if ix.views == nil {
		ix.views = map[viewKey][]int32{}
	}
	ix.views[k] = v
	return v
}

// groupEnd is the position after view[i]'s group: the slots that share
// its first key.
func (ix *modelIndex) groupEnd(view []int32, i int, k viewKey, regions int) int {
	first := ix.key(view[i], k, regions)[0]
	return i + 1 + sort.Search(len(view)-i-1, func(j int) bool {
		return ix.key(view[i+1+j], k, regions)[0] > first
	})
}

// place finds slot s in view k (the rows hold the key it was placed by).
func (ix *modelIndex) place(k viewKey, s int32, regions int) (int, bool) {
	return slices.BinarySearchFunc(ix.views[k], s, func(e, t int32) int { return ix.cmp(e, t, k, regions) })
}

func (ix *modelIndex) unview(s int32, regions int) {
	for k, v := range ix.views {
		if i, ok := ix.place(k, s, regions); ok {
			ix.views[k] = slices.Delete(v, i, i+1)
		}
	}
}

func (ix *modelIndex) enview(s int32, regions int) {
	for k, v := range ix.views {
		i, _ := ix.place(k, s, regions)
		ix.views[k] = slices.Insert(v, i, s)
	}
}

type browseRow struct {
	m          *machineState
	price, rel int64
	// pph is the price per measured H100-hour (unmeasured: the most).
	pph     int64
	vramGiB int64
	// free is the GPUs a buyer could rent now; 0 when the machine is not
	// rentable (unverified, offline, suspended, not in the engine).
	free int64
	// region is the index of the machine's own region in Config.Regions.
	region int
}

// indexLocked brings m's browse row in line with its state: it moves the
// row when the machine's listed model changed and rewrites its fields.
// Every write to a field that browsing reads ends with a call to it.
func (b *Broker) indexLocked(m *machineState) {
	if m.indexed != m.model {
		if m.indexed != "" {
			b.unindexLocked(m)
		}
		if m.model != "" {
			ix := b.byModel[m.model]
			if ix == nil {
				ix = &modelIndex{}
				b.byModel[m.model] = ix
			}
			m.slot, m.indexed = len(ix.rows), m.model
			ix.rows = append(ix.rows, b.rowFor(m))
			ix.rtts = append(ix.rtts, make([]uint16, len(b.cfg.Regions))...)
			b.setRTTs(ix, m)
			ix.enview(int32(m.slot), len(b.cfg.Regions))
			return
		}
	}
	if m.indexed == "" {
		return
	}
	ix, n := b.byModel[m.indexed], len(b.cfg.Regions)
	row := b.rowFor(m)
	old := ix.rows[m.slot]
	moved := row.price != old.price || row.rel != old.rel || row.region != old.region || row.pph != old.pph
	for i := 0; i < n && !moved; i++ {
		moved = ix.rtts[m.slot*n+i] != rttOf(m, i)
	}
	if moved {
		ix.unview(int32(m.slot), n)
	}
	ix.rows[m.slot] = row
	b.setRTTs(ix, m)
	if moved {
		ix.enview(int32(m.slot), n)
	}
}

// pricePerH100 is the price of one measured H100-hour on a machine whose
// GPU hour costs price and measures milli thousandths of an H100: price ×
// 1000 / milli, rounded down; 0 when unmeasured or out of range.
func pricePerH100(price, milli int64) int64 {
	if milli <= 0 || price < 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(price), 1000)
	if hi >= uint64(milli) {
		return 0
	}
	q, _ := bits.Div64(hi, lo, uint64(milli))
	if q > math.MaxInt64 {
		return 0
	}
	return int64(q)
}

func rttOf(m *machineState, region int) uint16 {
	if region < len(m.rtts) {
		return m.rtts[region]
	}
	return market.MaxRTTms
}

func (b *Broker) setRTTs(ix *modelIndex, m *machineState) {
	n := len(b.cfg.Regions)
	for i := 0; i < n; i++ {
		ix.rtts[m.slot*n+i] = rttOf(m, i)
	}
}

func (b *Broker) rowFor(m *machineState) browseRow {
	r := browseRow{m: m, price: m.listed.Price, rel: m.listed.ReliabilityBps, vramGiB: m.vramGiB,
		region: slices.Index(b.cfg.Regions, m.region), pph: math.MaxInt64}
	if p := pricePerH100(m.listed.Price, m.measured); p > 0 {
		r.pph = p
	}
	if m.inEngine && m.verified && m.online && !m.suspended {
		r.free = int64(bits.OnesCount64(m.free &^ m.held))
	}
	return r
}

// unindexLocked removes m's row: the last row takes its slot (and its
// entries in the views are renamed, their keys unchanged).
func (b *Broker) unindexLocked(m *machineState) {
	ix, n := b.byModel[m.indexed], len(b.cfg.Regions)
	ix.unview(int32(m.slot), n)
	last := len(ix.rows) - 1
	if m.slot != last {
		for k, v := range ix.views {
			if i, ok := ix.place(k, int32(last), n); ok {
				v[i] = int32(m.slot)
			}
		}
		moved := ix.rows[last].m
		ix.rows[m.slot] = ix.rows[last]
		copy(ix.rtts[m.slot*n:(m.slot+1)*n], ix.rtts[last*n:])
		moved.slot = m.slot
	}
	ix.rows[last] = browseRow{}
	ix.rows, ix.rtts = ix.rows[:last], ix.rtts[:last*n]
	m.indexed, m.slot = "", 0
}

// CheckBrowseIndex compares every machine's browse row with its state. It
// is for tests: a write path that forgot indexLocked shows up here as a
// browse page that disagrees with the engine.
func (b *Broker) CheckBrowseIndex() error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	rows := 0
	for _, model := range b.cfg.Models {
		if ix := b.byModel[model]; ix != nil {
			rows += len(ix.rows)
		}
	}
	listed := 0
	for _, id := range b.sortedMachineIDsLocked() {
		m := b.machines[id]
		if m.indexed != m.model {
			return fmt.Errorf("machine %s: indexed under %q, listed model %q", id, m.indexed, m.model)
		}
		if m.model == "" {
			continue
		}
		listed++
		ix, n := b.byModel[m.model], len(b.cfg.Regions)
		if ix == nil || m.slot >= len(ix.rows) || ix.rows[m.slot].m != m {
			return fmt.Errorf("machine %s: not at its slot %d", id, m.slot)
		}
		if got, want := ix.rows[m.slot], b.rowFor(m); got != want {
			return fmt.Errorf("machine %s: browse row %+v, state says %+v", id, got, want)
		}
		for i := 0; i < n; i++ {
			if got, want := ix.rtts[m.slot*n+i], rttOf(m, i); got != want {
				return fmt.Errorf("machine %s: browse RTT %d to %s, state says %d", id, got, b.cfg.Regions[i], want)
			}
		}
	}
	if rows != listed {
		return fmt.Errorf("browse index has %d rows for %d machines with a model", rows, listed)
	}
	// Every view holds each slot once, in order.
	for _, model := range b.cfg.Models {
		if ix := b.byModel[model]; ix != nil {
			if err := ix.checkViews(len(b.cfg.Regions)); err != nil {
				return fmt.Errorf("%s %w", model, err)
			}
		}
	}
	return nil
}

func (ix *modelIndex) checkViews(regions int) error {
	ix.viewMu.Lock()
	defer ix.viewMu.Unlock()
	for k, v := range ix.views {
		if len(v) != len(ix.rows) {
			return fmt.Errorf("view %+v: %d slots for %d rows", k, len(v), len(ix.rows))
		}
		seen := make([]bool, len(v))
		for i, s := range v {
			if s < 0 || int(s) >= len(v) || seen[s] {
				return fmt.Errorf("view %+v: slot %d repeated or out of range", k, s)
			}
			seen[s] = true
			if i > 0 && ix.cmp(v[i-1], s, k, regions) >= 0 {
				return fmt.Errorf("view %+v: out of order at %d", k, i)
			}
		}
	}
	return nil
}
