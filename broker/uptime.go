package broker

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/highway-compute/highway/market"
	"github.com/highway-compute/highway/models"
)

// Uptime for reliability (docs/reliability.md) is counted per machine per
// UTC day and stored, so the 30-day figure survives a marketplace restart
// and forgets what is older than the window. Before, online time was one
// in-memory total since the process started: every restart dropped all
// machines' uptime to nearly zero (their window still began at first
// sight), and time online more than 30 days ago never aged out.

// uptimeDays is how many UTC days of online time a machine keeps: the
// window's 29 whole days and today, and the day before them, which a
// beat just after midnight may still finish.
const uptimeDays = 31

// windowDays is the whole days before today that reliability looks at.
const windowDays = 29

// uptimeRing holds a machine's online milliseconds for its last days,
// slot day % uptimeDays; a slot holding another day counts as empty.
type uptimeRing struct {
	day [uptimeDays]int32
	ms  [uptimeDays]uint32 // ≤ 86 400 000, one day
}

// dayOf is t's UTC day number (days since 1970-01-01).
func dayOf(t time.Time) int32 { return int32(t.Unix() / 86400) }

// dayStart is the first instant of UTC day d.
func dayStart(d int32) time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

func (r *uptimeRing) get(d int32) uint32 {
	i := d % uptimeDays
	if r.day[i] != d {
		return 0
	}
	return r.ms[i]
}

func (r *uptimeRing) set(d int32, ms uint32) {
	i := d % uptimeDays
	r.day[i], r.ms[i] = d, min(ms, 86_400_000)
}

// credit adds the online span [from, to), split at UTC midnights.
func (r *uptimeRing) credit(from, to time.Time) {
	for from.Before(to) {
		d := dayOf(from)
		end := dayStart(d + 1)
		if to.Before(end) {
			end = to
		}
		r.set(d, r.get(d)+uint32(end.Sub(from).Milliseconds()))
		from = end
	}
}

// sum is the online time on days from..to, inclusive.
func (r *uptimeRing) sum(from, to int32) time.Duration {
	var ms int64
	for i, d := range r.day {
		if d >= from && d <= to {
			ms += int64(r.ms[i])
		}
	}
	return time.Duration(ms) * time.Millisecond
}

// uptimeBps is the share of the reliability window the machine was online,
// in basis points. The window runs from the start of the UTC day 29 days
// ago (or the machine's first sighting, if later) to now.
func (b *Broker) uptimeBps(m *machineState) int64 {
	now := b.now()
	today := dayOf(now)
	start := dayStart(today - windowDays)
	if m.firstSeen.After(start) {
		start = m.firstSeen
	}
	window := now.Sub(start)
	// A machine seen for less than an hour has no history to judge yet:
	// count the unobserved part of that first hour as up, so a newcomer
	// is not ranked below long-flaky machines.
	if window < time.Hour {
		return market.MaxReliabilityBps
	}
	// The current beat counts for one interval: it says the machine is up
	// now, and the gap it will close is not credited yet.
	up := min(m.uptime.sum(today-windowDays, today)+b.cfg.HeartbeatInterval, window)
	return int64(up) * market.MaxReliabilityBps / int64(window)
}

// creditBeatLocked credits the gap since the machine's previous beat as
// online when it was within the offline threshold, and marks the machine's
// days for the next flush.
func (b *Broker) creditBeatLocked(m *machineState, now time.Time) {
	if m.lastBeat.IsZero() || now.Sub(m.lastBeat) > time.Duration(b.cfg.OfflineMisses)*b.cfg.HeartbeatInterval {
		return
	}
	if d := dayOf(m.lastBeat); m.uptimeFrom == 0 || d < m.uptimeFrom {
		m.uptimeFrom = d
	}
	m.uptime.credit(m.lastBeat, now)
	b.uptimeDirty[m.id] = struct{}{}
}

// flushUptime stores the days credited since the last flush: the whole
// day's figure (not an increment), so a write repeated after an error or a
// restart cannot count twice. Days a failed write did not store are
// marked for the next flush.
func (b *Broker) flushUptime(ctx context.Context) {
	b.mu.Lock()
	if len(b.uptimeDirty) == 0 {
		b.mu.Unlock()
		return
	}
	today := dayOf(b.now())
	rows := make([]models.MachineUptime, 0, len(b.uptimeDirty))
	for id := range b.uptimeDirty {
		m := b.machines[id]
		if m == nil {
			continue
		}
		for d := max(m.uptimeFrom, today-uptimeDays+1); d <= today; d++ {
			if ms := m.uptime.get(d); ms > 0 {
				rows = append(rows, models.MachineUptime{MachineID: id, Day: d, OnlineMS: int64(ms)})
			}
		}
		m.uptimeFrom = 0
	}
	clear(b.uptimeDirty)
	b.mu.Unlock()
	// In key order: reproducible statements, and no lock-order surprises
	// if another writer ever joins.
	slices.SortFunc(rows, func(a, c models.MachineUptime) int {
		return cmp.Or(strings.Compare(a.MachineID, c.MachineID), cmp.Compare(a.Day, c.Day))
	})
	if err := b.store.PutUptime(ctx, rows); err != nil {
		b.log.Warn("store machine uptime", "rows", len(rows), "err", err)
		b.mu.Lock()
		for _, r := range rows {
			if m := b.machines[r.MachineID]; m != nil {
				if m.uptimeFrom == 0 || r.Day < m.uptimeFrom {
					m.uptimeFrom = r.Day
				}
				b.uptimeDirty[r.MachineID] = struct{}{}
			}
		}
		b.mu.Unlock()
		return
	}
	if today := dayOf(b.now()); today != b.uptimePruned {
		if err := b.store.DeleteUptimeBefore(ctx, today-uptimeDays+1); err != nil {
			b.log.Warn("prune machine uptime", "err", err)
		} else {
			b.uptimePruned = today
		}
	}
}

// loadUptimeLocked reads the stored days of the window at start.
func (b *Broker) loadUptimeLocked(ctx context.Context) error {
	today := dayOf(b.now())
	rows, err := b.store.UptimeSince(ctx, today-uptimeDays+1)
	if err != nil {
		return err
	}
	b.setUptimeLocked(rows)
	return nil
}

// setUptimeLocked sets the machines' online time per day from stored rows.
func (b *Broker) setUptimeLocked(rows []models.MachineUptime) {
	for _, r := range rows {
		if m := b.machines[r.MachineID]; m != nil && r.OnlineMS > 0 {
			m.uptime.set(r.Day, uint32(min(r.OnlineMS, 86_400_000)))
		}
	}
}

// MachineReliability is a machine's reliability as the market ranks it,
// with its parts, so a provider can see why (docs/reliability.md).
type MachineReliability struct {
	ReliabilityBps, UptimeBps   int64
	EpochsCleared, EpochsMissed int64
}

// Reliability reports a machine's reliability now; false when the broker
// does not know the machine.
func (b *Broker) Reliability(machineID string) (MachineReliability, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := b.machines[machineID]
	if m == nil {
		return MachineReliability{}, false
	}
	up := b.uptimeBps(m)
	return MachineReliability{ReliabilityBps: m.scaleByEpochs(up), UptimeBps: up,
		EpochsCleared: m.epochsCleared, EpochsMissed: m.epochsMissed}, true
}

// reliabilityBps is the share of the reliability window during which the
// machine was beating, in basis points, scaled by the share of its settled
// epochs that cleared. docs/reliability.md has the formula and why.
func (b *Broker) reliabilityBps(m *machineState) int64 {
	return m.scaleByEpochs(b.uptimeBps(m))
}

// scaleByEpochs scales an uptime by the share of the machine's settled
// epochs that cleared: online but not proving is not reliable. Rounded
// down, integers only.
func (m *machineState) scaleByEpochs(uptimeBps int64) int64 {
	if settled := m.epochsCleared + m.epochsMissed; settled > 0 {
		return uptimeBps * m.epochsCleared / settled
	}
	return uptimeBps
}

// reliabilityWindow is how far back reliability looks.
const reliabilityWindow = 30 * 24 * time.Hour

// countEpochs re-reads a machine's settled epochs in the reliability
// window (a re-read, not an increment: the indexer may see an event twice).
func (b *Broker) countEpochs(ctx context.Context, machineID string) error {
	counts, err := b.store.EpochCounts(ctx, b.now().Add(-reliabilityWindow), machineID)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if m := b.machines[machineID]; m != nil {
		m.epochsCleared, m.epochsMissed = 0, 0 // none settled in the window: no row
		b.setEpochCountsLocked(counts)
		b.relistLocked(ctx, m)
	}
	return nil
}

// setEpochCountsLocked stores counted epochs on their machines.
func (b *Broker) setEpochCountsLocked(counts []models.EpochCount) {
	for _, c := range counts {
		if m := b.machines[c.MachineID]; m != nil {
			m.epochsCleared, m.epochsMissed = c.Cleared, c.Missed
		}
	}
}
