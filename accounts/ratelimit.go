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
	if l == nil || l.Limit <= 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.maybeSweep(now)
	cut := now.Add(-l.Window)
	ev := l.events[key]
	i := 0
	for i < len(ev) && !ev[i].After(cut) {
		i++
	}
	ev = ev[i:]
	if len(ev) >= l.Limit {
		l.events[key] = ev
		retry := ev[0].Add(l.Window).Sub(now)
		if retry < time.Second {
			retry = time.Second
		}
		return false, retry
	}
	l.events[key] = append(ev, now)
	return true, 0
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
