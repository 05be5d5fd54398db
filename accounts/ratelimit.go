package accounts

import (
	"sync"
	"time"
)

// Limiter allows at most Limit events per key within any Window (a sliding
// log, exact rather than bucketed, so a burst at a window edge cannot double
// the allowance). It lives in memory: each replica limits on its own, which
// docs/deploy.md accounts for. The clock is an argument so tests are exact.
type Limiter struct {
	Limit  int
	Window time.Duration

	mu     sync.Mutex
	events map[string][]time.Time
	sweep  time.Time
}

// NewLimiter returns a limiter of limit events per window.
func NewLimiter(limit int, window time.Duration) *Limiter {
	return &Limiter{Limit: limit, Window: window, events: map[string][]time.Time{}}
}

// Allow records an event for key at now if it fits, and otherwise reports
// how long until it would.
func (l *Limiter) Allow(key string, now time.Time) (bool, time.Duration) {
	q := l.Take(key, now)
	return q.OK, q.Retry
}

// Quota is one Take's outcome, with what rate-limit headers report.
type Quota struct {
	OK        bool
	Limit     int
	Remaining int           // events left in the window after this one
	Reset     time.Time     // when the oldest counted event leaves the window
	Retry     time.Duration // when refused: how long until one would fit (≥ 1 s)
}

// Take is Allow with the quota's state.
func (l *Limiter) Take(key string, now time.Time) Quota {
	if l == nil || l.Limit <= 0 {
		return Quota{OK: true}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	ev := l.current(key, now)
	if len(ev) >= l.Limit {
		retry := max(ev[0].Add(l.Window).Sub(now), time.Second)
		return Quota{Limit: l.Limit, Reset: ev[0].Add(l.Window), Retry: retry}
	}
	ev = append(ev, now)
	l.events[key] = ev
	return Quota{OK: true, Limit: l.Limit, Remaining: l.Limit - len(ev), Reset: ev[0].Add(l.Window)}
}

// Count reports how many events key has in the window ending at now,
// recording nothing.
func (l *Limiter) Count(key string, now time.Time) int {
	if l == nil || l.Limit <= 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.current(key, now))
}

// current drops key's events that left the window and returns the rest.
func (l *Limiter) current(key string, now time.Time) []time.Time {
	l.maybeSweep(now)
	cut := now.Add(-l.Window)
	ev := l.events[key]
	i := 0
	for i < len(ev) && !ev[i].After(cut) {
		i++
	}
	ev = ev[i:]
	if len(ev) == 0 {
		delete(l.events, key)
	} else {
		l.events[key] = ev
	}
	return ev
}

// maybeSweep drops idle keys once per window so memory stays bounded by the
// keys active in the last window.
func (l *Limiter) maybeSweep(now time.Time) {
	if now.Sub(l.sweep) < l.Window {
		return
	}
	l.sweep = now
	cut := now.Add(-l.Window)
	for k, ev := range l.events {
		if len(ev) == 0 || !ev[len(ev)-1].After(cut) {
			delete(l.events, k)
		}
	}
}
