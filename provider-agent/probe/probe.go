// Package probe measures TCP-connect round-trip time to the marketplace's
// region probe endpoints. A TCP handshake is one round trip, needs no
// privileges (unlike ICMP ping) and passes the same firewalls the buyer's
// traffic will; the median of several tries discards one-off spikes.
package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/highway-compute/highway/protocol"
)

// Dialer opens a TCP connection; *net.Dialer satisfies it.
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// Prober measures RTTs. The zero value is usable: 5 tries, 2 s timeout per
// try, a plain net.Dialer and the wall clock.
type Prober struct {
	Tries   int
	Timeout time.Duration
	Dialer  Dialer
	// Now is injectable so tests can make RTTs deterministic.
	Now func() time.Time
}

func (p *Prober) defaults() (int, time.Duration, Dialer, func() time.Time) {
	tries, timeout, dialer, now := p.Tries, p.Timeout, p.Dialer, p.Now
	if tries <= 0 {
		tries = 5
	}
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	if dialer == nil {
		dialer = &net.Dialer{}
	}
	if now == nil {
		now = time.Now
	}
	return tries, timeout, dialer, now
}

// Measure returns the median connect time to addr over the configured tries.
// Failed tries are skipped; if every try fails the last error is returned.
func (p *Prober) Measure(ctx context.Context, addr string) (time.Duration, error) {
	tries, timeout, dialer, now := p.defaults()
	var samples []time.Duration
	var lastErr error
	for i := 0; i < tries; i++ {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("probe %s: %w", addr, err)
		}
		tctx, cancel := context.WithTimeout(ctx, timeout)
		start := now()
		conn, err := dialer.DialContext(tctx, "tcp", addr)
		rtt := now().Sub(start)
		cancel()
		if err != nil {
			lastErr = err
			continue
		}
		_ = conn.Close()
		samples = append(samples, rtt)
	}
	if len(samples) == 0 {
		if lastErr == nil {
			lastErr = errors.New("no tries")
		}
		return 0, fmt.Errorf("probe %s: %w", addr, lastErr)
	}
	return Median(samples), nil
}

// Median returns the median (the lower middle for an even count, which
// errs towards the faster, less congested measurement).
func Median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// Millis rounds an RTT up to whole milliseconds, at least 1: zero would
// read as "unknown", and rounding up never flatters the provider.
func Millis(d time.Duration) int64 {
	ms := int64((d + time.Millisecond - 1) / time.Millisecond)
	return max(ms, 1)
}

// MeasureAll probes every region concurrently and returns region → ms for
// the ones that answered, and region → error for the ones that did not.
func (p *Prober) MeasureAll(ctx context.Context, regions []protocol.Region) (map[string]int64, map[string]error) {
	rtt := make(map[string]int64, len(regions))
	errs := make(map[string]error)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, r := range regions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := p.Measure(ctx, r.ProbeAddr)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[r.ID] = err
				return
			}
			rtt[r.ID] = Millis(d)
		}()
	}
	wg.Wait()
	return rtt, errs
}
