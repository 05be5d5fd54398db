package broker

import (
	"math/bits"
	"slices"
	"strconv"
	"strings"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/market"
	"github.com/highway-compute/highway/poc"
)

// Offers lists the offers a buyer could rent now: verified, online, not
// suspended, with free GPUs, filtered and sorted. The second result is the
// cursor of the next page ("" at the end).
//
// Browsing is the marketplace's hottest read: it walks each model's rows
// in the asked order (browse.go), filtering as it goes and stopping once
// the page and one more offer are found, and builds full Offer values
// (maps and strings) for that page alone.
//
// The default order is the matching rule's: price, RTT, reliability, then
// id (the engine's listing time is not exposed; id is stable).
func (b *Broker) Offers(f highway.OfferFilter) ([]highway.Offer, string) {
	var p OfferPage
	next := b.OffersInto(&p, f)
	return p.Offers, next
}

// OfferPage holds a page of offers and the storage behind it, reused
// from one call of OffersInto to the next so that a hot caller (the API)
// allocates nothing per page once warm. Not for concurrent use.
type OfferPage struct {
	Offers []highway.Offer
	rtts   highway.RTTs
	cands  []offerCand
}

// offerCand is a row that passed the filter, with its sort key.
type offerCand struct {
	ix   *modelIndex
	slot int32
	key  [3]int64
}

// MaxOfferOffset bounds a page's offset into the offers: far beyond any
// market (a page walks at most offset + limit offers), and far from
// overflowing an int.
const MaxOfferOffset = 1_000_000

// OffersInto is Offers writing into p (its previous page is overwritten).
func (b *Broker) OffersInto(p *OfferPage, f highway.OfferFilter) string {
	k := viewKey{region: slices.Index(b.cfg.Regions, f.Region)}
	switch f.Sort {
	case "rtt":
		k.sort = sortRTT
	case "reliability":
		k.sort = sortReliability
	case "price_per_h100":
		k.sort = sortPricePerH100
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	// A hostile offset (a crafted cursor) must not overflow offset+limit.
	offset := min(max(f.Offset, 0), MaxOfferOffset)
	// need is the offers up to the page's end, and one more to tell
	// whether there is a next page.
	need := offset + limit + 1
	n := len(b.cfg.Regions)
	b.mu.RLock()
	defer b.mu.RUnlock()
	cands := p.cands[:0]
	walk := func(ix *modelIndex) {
		if ix == nil {
			return
		}
		found := 0
		view := ix.view(k, n)
		for i := 0; i < len(view); i++ {
			s := view[i]
			key := ix.key(s, k, n)
			price, rtt, rel := key[0], key[1], -key[2]
			// A bound on the view's first key ends the walk; a bound on
			// its second skips the rest of the first key's group.
			first, second := false, false
			switch k.sort {
			case sortPrice:
				first, second = f.MaxPrice > 0 && price > f.MaxPrice, f.MaxRTTms > 0 && rtt > f.MaxRTTms
			case sortRTT:
				rtt, price = key[0], key[1]
				first, second = f.MaxRTTms > 0 && rtt > f.MaxRTTms, f.MaxPrice > 0 && price > f.MaxPrice
			case sortReliability:
				rel, rtt, price = -key[0], key[1], key[2]
				first, second = rel < f.MinReliability, f.MaxRTTms > 0 && rtt > f.MaxRTTms
			case sortPricePerH100:
				price = ix.rows[s].price
			}
			if first {
				return
			}
			if second {
				i = ix.groupEnd(view, i, k, n) - 1
				continue
			}
			r := &ix.rows[s]
			if r.free == 0 || r.free < f.Count || r.vramGiB < f.MinVRAMGiB || (f.MaxPrice > 0 && price > f.MaxPrice) ||
				rel < f.MinReliability || (f.MaxRTTms > 0 && rtt > f.MaxRTTms) {
				continue
			}
			cands = append(cands, offerCand{ix: ix, slot: s, key: key})
			if found++; found == need {
				return
			}
		}
	}
	if f.Model != "" {
		walk(b.byModel[f.Model])
	} else {
		// Each model's first `need` in order hold the first `need`
		// overall: merge them.
		for _, model := range b.cfg.Models {
			walk(b.byModel[model])
		}
		slices.SortFunc(cands, func(a, c offerCand) int {
			return compareOffers(a.key, c.key, a.ix.rows[a.slot].m.id, c.ix.rows[c.slot].m.id)
		})
	}
	start := min(offset, len(cands))
	end := min(offset+limit, len(cands))
	next := ""
	if len(cands) > end {
		next = strconv.Itoa(end)
	}
	// The RTT storage is sized first: offers point into it, so it must
	// not move while they are built.
	if need := (end - start) * n; cap(p.rtts) < need {
		p.rtts = make(highway.RTTs, 0, need)
	}
	p.Offers, p.rtts, p.cands = p.Offers[:0], p.rtts[:0], cands
	var buf [16]int
	order := b.regionOrder(buf[:0])
	for _, c := range cands[start:end] {
		p.Offers = append(p.Offers, b.offerLocked(c.ix.rows[c.slot].m, order, &p.rtts))
	}
	return next
}

// offerLocked builds m's offer; its RTTs are appended to backing (one
// array for a whole page) in order, the regions' names sorted.
func (b *Broker) offerLocked(m *machineState, order []int, backing *highway.RTTs) highway.Offer {
	free := int64(bits.OnesCount64(m.free &^ m.held))
	start := len(*backing)
	for _, i := range order {
		// Regions the agent could not measure are left out rather
		// than shown as 10 s.
		if i < len(m.rtts) && m.rtts[i] < market.MaxRTTms {
			*backing = append(*backing, highway.RegionRTT{Region: b.cfg.Regions[i], Ms: int64(m.rtts[i])})
		}
	}
	rtt := (*backing)[start:len(*backing):len(*backing)]
	return highway.Offer{ID: m.id, ProviderID: m.providerID, MachineID: m.id, Model: m.model, VRAMGiB: m.vramGiB,
		GPUsFree: free, GPUsTotal: m.listed.GPUs, PricePerGPUHour: highway.Amount(m.listed.Price), Region: m.region, RTTms: rtt,
		ReliabilityBps: m.listed.ReliabilityBps, CUDAVersion: m.cuda, DriverVersion: m.driver, Verified: m.verified, Simulated: m.simulated,
		SpotFloor: highway.Amount(m.listed.SpotFloor), NoticeS: m.listed.NoticeMs / 1000,
		MeasuredMilliH100: m.measured, PricePerH100Hour: highway.Amount(pricePerH100(m.listed.Price, m.measured))}
}

// regionOrder appends the regions' indexes, by name, to order.
func (b *Broker) regionOrder(order []int) []int {
	for i := range b.cfg.Regions {
		order = append(order, i)
	}
	slices.SortFunc(order, func(x, y int) int { return strings.Compare(b.cfg.Regions[x], b.cfg.Regions[y]) })
	return order
}

// Offer returns the offer of one machine while a buyer could rent it.
func (b *Broker) Offer(id string) (highway.Offer, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	m := b.machines[id]
	if m == nil || m.indexed == "" || b.byModel[m.indexed].rows[m.slot].free == 0 {
		return highway.Offer{}, false
	}
	var backing highway.RTTs
	return b.offerLocked(m, b.regionOrder(nil), &backing), true
}

// ModelSummary is one model's line of the market summary.
type ModelSummary struct {
	Model       string `json:"model"`
	GPUsOnline  int64  `json:"gpus_online"`
	GPUsFree    int64  `json:"gpus_free"`
	MedianPrice int64  `json:"-"`
}

// RegionSummary is one region's line: the machines whose fastest region
// it is, and their GPUs.
type RegionSummary struct {
	Region     string `json:"region"`
	Machines   int    `json:"machines_online"`
	GPUsOnline int64  `json:"gpus_online"`
	GPUsFree   int64  `json:"gpus_free"`
}

// Summary is the market at a glance.
type Summary struct {
	Models []ModelSummary
	// Regions are in the configured order, each listed even when empty.
	Regions []RegionSummary
	// H100EquivalentsMilli is the online capacity in thousandths of an
	// H100 (poc's calibration), the headline figure of compute networks.
	H100EquivalentsMilli uint64
	MachinesOnline       int
	Leases               int
}

// Summary computes GPUs online and free and the median ask per model.
func (b *Broker) Summary() Summary {
	b.mu.RLock()
	defer b.mu.RUnlock()
	per := map[string]*ModelSummary{}
	asks := map[string][]int64{}
	var s Summary
	s.Regions = make([]RegionSummary, len(b.cfg.Regions))
	for i, r := range b.cfg.Regions {
		s.Regions[i].Region = r
	}
	// Aggregates only (sums and a sorted list per model), so the map's
	// order does not matter; no Offer values are built.
	for _, m := range b.machines {
		if !m.online || !m.inEngine || m.model == "" {
			continue
		}
		s.MachinesOnline++
		ms := per[m.model]
		if ms == nil {
			ms = &ModelSummary{Model: m.model}
			per[m.model] = ms
		}
		total := m.listed.GPUs // what the engine lists, the same on a follower
		ms.GPUsOnline += total
		var rs *RegionSummary
		if i := slices.Index(b.cfg.Regions, m.region); i >= 0 {
			rs = &s.Regions[i]
			rs.Machines++
			rs.GPUsOnline += total
		}
		if m.verified && !m.suspended {
			free := int64(bits.OnesCount64(m.free &^ m.held))
			ms.GPUsFree += free
			if rs != nil {
				rs.GPUsFree += free
			}
			asks[m.model] = append(asks[m.model], m.listed.Price)
		}
		if milli, err := poc.H100Equivalents(m.model, uint32(total)); err == nil {
			s.H100EquivalentsMilli += milli
		}
	}
	for _, model := range b.cfg.Models {
		ms := per[model]
		if ms == nil {
			continue
		}
		if a := asks[model]; len(a) > 0 {
			slices.Sort(a)
			ms.MedianPrice = a[(len(a)-1)/2]
		}
		s.Models = append(s.Models, *ms)
	}
	s.Leases = b.w.engine.Stats().Leases
	return s
}
