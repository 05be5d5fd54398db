package broker

import (
	"context"
	"sync"
	"time"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/models"
)

// The network at a glance, cached for the public pages.

// NetworkStats are the network's all-time figures: leases, epochs settled,
// escrow locked and paid.
type NetworkStats struct {
	models.NetworkTotals
	Escrowed, Paid highway.Total
	// At is when they were counted.
	At time.Time
}

// NetworkStats returns the figures counted at the last snapshot. They sum
// over every lease and epoch ever recorded, so a dashboard request reads
// the count the snapshot loop keeps rather than scanning the tables
// itself; before the first snapshot they are counted now.
func (b *Broker) NetworkStats(ctx context.Context) (NetworkStats, error) {
	if st, ok := b.stats.get(); ok {
		return st, nil
	}
	return b.CountNetwork(ctx)
}

// CountNetwork counts the network's figures now and keeps them for
// NetworkStats: the snapshot loop calls it once a minute, the only
// place that sums over every lease.
func (b *Broker) CountNetwork(ctx context.Context) (NetworkStats, error) {
	st := NetworkStats{At: b.now().UTC()}
	var err error
	if st.NetworkTotals, err = b.store.Totals(ctx); err != nil {
		return st, err
	}
	if st.Escrowed, st.Paid, err = b.store.Volumes(ctx); err != nil {
		return st, err
	}
	b.stats.set(st)
	return st, nil
}

// statsCache holds the last count under its own lock: a dashboard reads
// it without waiting for the market's writer.
type statsCache struct {
	mu   sync.Mutex
	last *NetworkStats
}

func (c *statsCache) get() (NetworkStats, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		return NetworkStats{}, false
	}
	return *c.last, true
}

func (c *statsCache) set(st NetworkStats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = &st
}
