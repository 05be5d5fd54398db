package broker

import (
	"math"
	"math/bits"
	"sort"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/market"
)

// referenceOffers is the browse rule restated over the machines' own
// state: filter each machine, sort everything.
func referenceOffers(b *Broker, f highway.OfferFilter) []string {
	var out []highway.Offer
	for _, m := range b.machines {
		free := int64(bits.OnesCount64(m.free &^ m.held))
		if m.model == "" || !m.inEngine || !m.verified || !m.online || m.suspended || free == 0 || free < f.Count ||
			(f.Model != "" && m.model != f.Model) || m.vramGiB < f.MinVRAMGiB ||
			(f.MaxPrice > 0 && m.listed.Price > f.MaxPrice) || m.listed.ReliabilityBps < f.MinReliability {
			continue
		}
		var backing highway.RTTs
		o := b.offerLocked(m, b.regionOrder(nil), &backing)
		if f.MaxRTTms > 0 && offerRTT(f, o) > f.MaxRTTms {
			continue
		}
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return offerKeyLess(f, out[i], out[j]) })
	ids := make([]string, len(out))
	for i, o := range out {
		ids[i] = o.ID
	}
	return ids
}

func offerRTT(f highway.OfferFilter, o highway.Offer) int64 {
	r := f.Region
	if r == "" {
		r = o.Region
	}
	if v, ok := o.RTTms.Get(r); ok {
		return v
	}
	return market.MaxRTTms
}

// offerKeyLess is the rule's order restated for the test.
func offerKeyLess(f highway.OfferFilter, a, c highway.Offer) bool {
	rtt := func(o highway.Offer) int64 { return offerRTT(f, o) }
	ka := []int64{int64(a.PricePerGPUHour), rtt(a), -a.ReliabilityBps}
	kc := []int64{int64(c.PricePerGPUHour), rtt(c), -c.ReliabilityBps}
	switch f.Sort {
	case "rtt":
		ka[0], ka[1], kc[0], kc[1] = ka[1], ka[0], kc[1], kc[0]
	case "reliability":
		ka = []int64{-a.ReliabilityBps, rtt(a), int64(a.PricePerGPUHour)}
		kc = []int64{-c.ReliabilityBps, rtt(c), int64(c.PricePerGPUHour)}
	case "price_per_h100":
		// price × 1000 / measured; unmeasured offers after every measured one.
		pph := func(o highway.Offer) int64 {
			if o.MeasuredMilliH100 == 0 {
				return math.MaxInt64
			}
			return int64(o.PricePerGPUHour) * 1000 / o.MeasuredMilliH100
		}
		ka = []int64{pph(a), rtt(a), -a.ReliabilityBps}
		kc = []int64{pph(c), rtt(c), -c.ReliabilityBps}
	}
	for i := range ka {
		if ka[i] != kc[i] {
			return ka[i] < kc[i]
		}
	}
	return a.ID < c.ID
}
