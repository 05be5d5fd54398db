package broker

import (
	"math/bits"
	"slices"
	"strconv"
	"strings"

	"github.com/highway-compute/highway/market"
	"github.com/highway-compute/highway/poc"
)

// Offer is a live listing as pages and the API show it.
type Offer struct {
	ID              string           `json:"id"`
	ProviderID      string           `json:"provider_id"`
	MachineID       string           `json:"machine_id"`
	Model           string           `json:"model"`
	VRAMGiB         int64            `json:"vram_gib"`
	GPUsFree        int64            `json:"gpus_free"`
	GPUsTotal       int64            `json:"gpus_total"`
	PricePerGPUHour int64            `json:"-"`
	Region          string           `json:"region"`
	RTTms           map[string]int64 `json:"rtt_ms"`
	ReliabilityBps  int64            `json:"reliability_bps"`
	CUDAVersion     string           `json:"cuda_version"`
	DriverVersion   string           `json:"driver_version"`
	Verified        bool             `json:"verified"`
	Simulated       bool             `json:"simulated"`
}

// OfferFilter selects and orders offers; zero fields do not filter.
type OfferFilter struct {
	Model          string
	MinVRAMGiB     int64
	Count          int64
	MaxPrice       int64
	Region         string // RTTs are measured to it; MaxRTTms applies to it
	MaxRTTms       int64
	MinReliability int64
	Sort           string // price (default), rtt, reliability
	Offset, Limit  int
}

// Offers lists the offers a buyer could rent now: verified, online, not
// suspended, with free GPUs, filtered and sorted. The second result is the
// cursor of the next page ("" at the end).
//
// Browsing is the marketplace's hottest read, so it filters on the
// machines' plain fields in one pass without allocating, sorts only what
// passed, and builds full Offer values (maps and strings) for the one page
// it returns.
func (b *Broker) Offers(f OfferFilter) ([]Offer, string) {
	regionIdx := slices.Index(b.cfg.Regions, f.Region)
	// A candidate carries its sort key, in the order the buyer asked for.
	type cand struct {
		m   *machineState
		key [3]int64
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	cands := make([]cand, 0, 256)
	pool := b.machines
	if f.Model != "" {
		pool = b.byModel[f.Model] // only that model's machines are scanned
	}
	for _, m := range pool {
		if !m.inEngine || !m.verified || !m.online || m.suspended {
			continue
		}
		free := int64(bits.OnesCount64(m.free &^ m.held))
		if free == 0 || free < f.Count || (f.Model != "" && m.model != f.Model) || m.vramGiB < f.MinVRAMGiB {
			continue
		}
		price, rel := m.listed.Price, m.listed.ReliabilityBps
		if (f.MaxPrice > 0 && price > f.MaxPrice) || rel < f.MinReliability {
			continue
		}
		// An unmeasured region counts as the farthest possible.
		rtt := int64(market.MaxRTTms)
		ri := regionIdx
		if ri < 0 {
			ri = slices.Index(b.cfg.Regions, m.region)
		}
		if ri >= 0 && ri < len(m.rtts) {
			rtt = int64(m.rtts[ri])
		}
		if f.MaxRTTms > 0 && rtt > f.MaxRTTms {
			continue
		}
		key := [3]int64{price, rtt, -rel}
		switch f.Sort {
		case "rtt":
			key = [3]int64{rtt, price, -rel}
		case "reliability":
			key = [3]int64{-rel, rtt, price}
		}
		cands = append(cands, cand{m: m, key: key})
	}
	// The default order is the matching rule's: price, RTT, reliability,
	// then id (the engine's listing time is not exposed; id is stable).
	less := func(a, c cand) int {
		for i := range a.key {
			if a.key[i] != c.key[i] {
				if a.key[i] < c.key[i] {
					return -1
				}
				return 1
			}
		}
		return strings.Compare(a.m.id, c.m.id)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	total := len(cands)
	start := min(max(f.Offset, 0), total)
	end := min(start+limit, total)
	if need := end; need*4 < total {
		// Only the first `need` in order are shown: keep the best `need`
		// in a sorted buffer instead of sorting everything.
		best := make([]cand, 0, need)
		for _, c := range cands {
			if len(best) == need && less(c, best[need-1]) >= 0 {
				continue
			}
			i, _ := slices.BinarySearchFunc(best, c, less)
			if len(best) < need {
				best = append(best, cand{})
			}
			copy(best[i+1:], best[i:len(best)-1])
			best[i] = c
		}
		cands = best
	} else {
		slices.SortFunc(cands, less)
	}
	next := ""
	if end < total {
		next = strconv.Itoa(end)
	}
	out := make([]Offer, 0, end-start)
	for _, c := range cands[start:end] {
		out = append(out, b.offerLocked(c.m))
	}
	return out, next
}

func (b *Broker) offerLocked(m *machineState) Offer {
	free := int64(bits.OnesCount64(m.free &^ m.held))
	rtt := make(map[string]int64, len(b.cfg.Regions))
	for i, r := range b.cfg.Regions {
		// Regions the agent could not measure are left out rather
		// than shown as 10 s.
		if i < len(m.rtts) && m.rtts[i] < market.MaxRTTms {
			rtt[r] = int64(m.rtts[i])
		}
	}
	return Offer{ID: m.id, ProviderID: m.providerID, MachineID: m.id, Model: m.model, VRAMGiB: m.vramGiB,
		GPUsFree: free, GPUsTotal: int64(len(m.offered)), PricePerGPUHour: m.listed.Price, Region: m.region, RTTms: rtt,
		ReliabilityBps: m.listed.ReliabilityBps, CUDAVersion: m.cuda, DriverVersion: m.driver, Verified: m.verified, Simulated: m.simulated}
}

// ModelSummary is one model's line of the market summary.
type ModelSummary struct {
	Model       string `json:"model"`
	GPUsOnline  int64  `json:"gpus_online"`
	GPUsFree    int64  `json:"gpus_free"`
	MedianPrice int64  `json:"-"`
}

// Summary is the market at a glance.
type Summary struct {
	Models []ModelSummary
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
		total := int64(len(m.offered))
		ms.GPUsOnline += total
		if m.verified && !m.suspended {
			ms.GPUsFree += int64(bits.OnesCount64(m.free &^ m.held))
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
	s.Leases = b.engine.Stats().Leases
	return s
}
