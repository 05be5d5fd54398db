package broker

import (
	"context"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/models"
)

// Depth is one GPU model's order book as buyers see it: the resting bids
// and the rentable asks by price level, the spread between the best of
// each, the last matches, and the clearing price hour by hour.
type Depth struct {
	Model, Region string
	// Bids are highest first, asks lowest first.
	Bids, Asks []DepthLevel
	// BestBid and BestAsk are 0 when that side is empty; Spread (best ask
	// − best bid) is set only when both sides hold something. A negative
	// spread is possible: a bid and an ask that cross but cannot match
	// (the bid's latency limit or minimum VRAM rules the ask out).
	BestBid, BestAsk int64
	Spread           *int64
	Matches          []models.Match // newest first
	Clearing         []ClearingHour // oldest first, DepthHours of them
	// Hidden counts price levels beyond DepthLevels on each side.
	HiddenBids, HiddenAsks int
}

// DepthLevel is a price (uhwy per GPU-hour) with the GPUs bid or offered
// at it and how many orders (bids) or machines (asks) make them up.
type DepthLevel struct {
	Price, GPUs int64
	Count       int
}

// ClearingHour is an hour of matches: the GPU-weighted median price of
// the leases made in it (0 with GPUs 0: none were).
type ClearingHour struct {
	Start       time.Time
	Price, GPUs int64
}

// Depth's bounds: price levels shown per side, last matches listed, hours
// of clearing prices, and the most leases one depth reads for them.
const (
	DepthLevels  = 50
	DepthMatches = 20
	DepthHours   = 24
	depthScan    = 100_000
)

// Depth returns a model's depth, in one region when region is set (asks:
// the machines in it; bids and matches: the orders that asked for it).
// An unknown model or region is EINVALID.
func (b *Broker) Depth(ctx context.Context, model, region string) (Depth, error) {
	if model == "" {
		return Depth{}, &highway.Error{Code: highway.EINVALID, Field: "model", Message: "Choose a GPU model."}
	}
	if !slices.Contains(b.cfg.Models, model) {
		return Depth{}, &highway.Error{Code: highway.EINVALID, Field: "model", Message: "Unknown GPU model " + model + "; listed models: " + strings.Join(b.cfg.Models, ", ") + "."}
	}
	regionIdx := -1
	if region != "" {
		if regionIdx = slices.Index(b.cfg.Regions, region); regionIdx < 0 {
			return Depth{}, &highway.Error{Code: highway.EINVALID, Field: "region", Message: "Unknown region " + region + "."}
		}
	}
	// A public endpoint and every open depth page's live refresh ask the
	// same question: answer it once per market change (and at least every
	// depthTTL, for the clock-driven clearing window). Models and regions
	// are the catalog's, so the cache stays small.
	key, gen, now := depthKey{model, region}, b.generation.Load(), b.now()
	b.depthMu.Lock()
	if e, ok := b.depthCache[key]; ok && e.gen == gen && now.Sub(e.at) < depthTTL && !now.Before(e.at) {
		b.depthMu.Unlock()
		return e.d, nil
	}
	b.depthMu.Unlock()
	d, err := b.depth(ctx, model, region, regionIdx)
	if err != nil {
		return Depth{}, err
	}
	b.depthMu.Lock()
	if b.depthCache == nil {
		b.depthCache = map[depthKey]depthEntry{}
	}
	b.depthCache[key] = depthEntry{gen: gen, at: now, d: d}
	b.depthMu.Unlock()
	return d, nil
}

// depthTTL bounds how long a cached depth is served without a change.
const depthTTL = 10 * time.Second

type depthKey struct{ model, region string }

type depthEntry struct {
	gen uint64
	at  time.Time
	d   Depth
}

// depth computes a depth (Depth caches it). Its slices are shared by
// every caller of the cached value: read them, never write.
func (b *Broker) depth(ctx context.Context, model, region string, regionIdx int) (Depth, error) {
	d := Depth{Model: model, Region: region}
	d.Asks, d.HiddenAsks = b.asks(model, regionIdx)
	bids, err := b.store.RestingBids(ctx, model, region, 10_000)
	if err != nil {
		return Depth{}, err
	}
	byPrice := map[int64]*DepthLevel{}
	for _, o := range bids {
		addLevel(byPrice, o.MaxPrice, o.GPUs)
	}
	d.Bids, d.HiddenBids = levels(byPrice, true)
	if len(d.Bids) > 0 {
		d.BestBid = d.Bids[0].Price
	}
	if len(d.Asks) > 0 {
		d.BestAsk = d.Asks[0].Price
	}
	if len(d.Bids) > 0 && len(d.Asks) > 0 {
		s := d.BestAsk - d.BestBid
		d.Spread = &s
	}
	now := b.now().UTC()
	first := now.Truncate(time.Hour).Add(-(DepthHours - 1) * time.Hour)
	ms, err := b.store.Matches(ctx, model, region, first, depthScan)
	if err != nil {
		return Depth{}, err
	}
	d.Matches = ms[:min(len(ms), DepthMatches)]
	d.Clearing = clearing(ms, first, DepthHours)
	return d, nil
}

// asks sums the rentable GPUs of a model's machines by price (and region
// index, when not -1).
func (b *Broker) asks(model string, region int) ([]DepthLevel, int) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	byPrice := map[int64]*DepthLevel{}
	if ix := b.byModel[model]; ix != nil {
		for _, r := range ix.rows {
			if r.free == 0 || (region >= 0 && r.region != region) {
				continue
			}
			addLevel(byPrice, r.price, r.free)
		}
	}
	return levels(byPrice, false)
}

// addLevel counts one order or machine of gpus at price.
func addLevel(byPrice map[int64]*DepthLevel, price, gpus int64) {
	l := byPrice[price]
	if l == nil {
		l = &DepthLevel{Price: price}
		byPrice[price] = l
	}
	l.GPUs += gpus
	l.Count++
}

// levels orders price levels (highest first for bids) and keeps the
// DepthLevels best, saying how many more there were.
func levels(byPrice map[int64]*DepthLevel, desc bool) ([]DepthLevel, int) {
	out := make([]DepthLevel, 0, len(byPrice))
	for _, l := range byPrice {
		out = append(out, *l)
	}
	sort.Slice(out, func(i, j int) bool {
		if desc {
			return out[i].Price > out[j].Price
		}
		return out[i].Price < out[j].Price
	})
	if len(out) > DepthLevels {
		return out[:DepthLevels], len(out) - DepthLevels
	}
	return out, 0
}

// clearing buckets matches into n hours from first and gives each hour
// its GPU-weighted median price: the price at which half the hour's GPUs
// were rented at or below (the lower one when the GPUs split evenly), so
// one large lease at an odd price moves it only as much as its size
// warrants, and it is an integer that was actually paid.
func clearing(ms []models.Match, first time.Time, n int) []ClearingHour {
	out := make([]ClearingHour, n)
	hours := make([][]models.Match, n)
	for i := range out {
		out[i].Start = first.Add(time.Duration(i) * time.Hour)
	}
	for _, m := range ms {
		i := int(m.At.Sub(first) / time.Hour)
		if m.At.Before(first) || i >= n || m.GPUs <= 0 {
			continue
		}
		hours[i] = append(hours[i], m)
	}
	for i, h := range hours {
		if len(h) == 0 {
			continue
		}
		sort.Slice(h, func(a, b int) bool { return h[a].PricePerHour < h[b].PricePerHour })
		var total int64
		for _, m := range h {
			total += m.GPUs
		}
		half, seen := (total+1)/2, int64(0)
		for _, m := range h {
			seen += m.GPUs
			if seen >= half {
				out[i].Price = m.PricePerHour
				break
			}
		}
		out[i].GPUs = total
	}
	return out
}
