package broker

import (
	"slices"
	"strconv"

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
func (b *Broker) Offers(f OfferFilter) ([]Offer, string) {
	b.mu.Lock()
	all := make([]Offer, 0, len(b.machines))
	for _, id := range b.sortedMachineIDsLocked() {
		m := b.machines[id]
		if !m.inEngine || !m.verified || !m.online || m.suspended {
			continue
		}
		o := b.offerLocked(m)
		if o.GPUsFree == 0 {
			continue
		}
		all = append(all, o)
	}
	b.mu.Unlock()

	regionIdx := slices.Index(b.cfg.Regions, f.Region)
	// An unmeasured region counts as the farthest possible.
	rttTo := func(o *Offer) int64 {
		r := f.Region
		if regionIdx < 0 {
			r = o.Region
		}
		if v, ok := o.RTTms[r]; ok {
			return v
		}
		return market.MaxRTTms
	}
	out := all[:0]
	for i := range all {
		o := &all[i]
		switch {
		case f.Model != "" && o.Model != f.Model,
			o.VRAMGiB < f.MinVRAMGiB,
			o.GPUsFree < f.Count,
			f.MaxPrice > 0 && o.PricePerGPUHour > f.MaxPrice,
			f.MaxRTTms > 0 && rttTo(o) > f.MaxRTTms,
			o.ReliabilityBps < f.MinReliability:
			continue
		}
		out = append(out, *o)
	}
	// The default order is the matching rule's: price, RTT, reliability,
	// then id (the engine's listing time is not exposed; id is stable).
	slices.SortStableFunc(out, func(a, c Offer) int {
		keys := [][2]int64{{a.PricePerGPUHour, c.PricePerGPUHour}, {rttTo(&a), rttTo(&c)}, {c.ReliabilityBps, a.ReliabilityBps}}
		switch f.Sort {
		case "rtt":
			keys[0], keys[1] = keys[1], keys[0]
		case "reliability":
			keys[0], keys[2] = keys[2], keys[0]
		}
		for _, k := range keys {
			if k[0] != k[1] {
				if k[0] < k[1] {
					return -1
				}
				return 1
			}
		}
		if a.ID < c.ID {
			return -1
		}
		return 1
	})
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	start := min(max(f.Offset, 0), len(out))
	end := min(start+limit, len(out))
	next := ""
	if end < len(out) {
		next = strconv.Itoa(end)
	}
	return out[start:end], next
}

func (b *Broker) offerLocked(m *machineState) Offer {
	var free int64
	for i, idx := range m.offered {
		if g := gpuAt(m.gpus, idx); g != nil && g.Free && m.held&(1<<uint(i)) == 0 {
			free++
		}
	}
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
	b.mu.Lock()
	defer b.mu.Unlock()
	per := map[string]*ModelSummary{}
	asks := map[string][]int64{}
	var s Summary
	for _, id := range b.sortedMachineIDsLocked() {
		m := b.machines[id]
		if !m.online || !m.inEngine || m.model == "" {
			continue
		}
		s.MachinesOnline++
		ms := per[m.model]
		if ms == nil {
			ms = &ModelSummary{Model: m.model}
			per[m.model] = ms
		}
		o := b.offerLocked(m)
		ms.GPUsOnline += o.GPUsTotal
		if m.verified && !m.suspended {
			ms.GPUsFree += o.GPUsFree
			asks[m.model] = append(asks[m.model], o.PricePerGPUHour)
		}
		if milli, err := poc.H100Equivalents(m.model, uint32(o.GPUsTotal)); err == nil {
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
