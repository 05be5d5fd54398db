package probe

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/highway-compute/highway/protocol"
)

func listen(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	return ln.Addr().String()
}

// scriptedClock advances by the next scripted step on every second call
// (start, end of a dial), so each dial "takes" one scripted duration.
type scriptedClock struct {
	mu    sync.Mutex
	t     time.Time
	steps []time.Duration
	calls int
}

func (c *scriptedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.calls%2 == 0 && len(c.steps) > 0 {
		c.t = c.t.Add(c.steps[0])
		c.steps = c.steps[1:]
	}
	return c.t
}

func TestMeasureMedian(t *testing.T) {
	addr := listen(t)
	clock := &scriptedClock{t: time.Unix(0, 0), steps: []time.Duration{9 * time.Millisecond, 3 * time.Millisecond, 250 * time.Millisecond, 4 * time.Millisecond, 5 * time.Millisecond}}
	p := &Prober{Tries: 5, Now: clock.Now}
	d, err := p.Measure(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	if d != 5*time.Millisecond {
		t.Fatalf("median = %v, want 5ms (the 250ms spike must not count)", d)
	}
}

func TestMeasureAll(t *testing.T) {
	up := listen(t)
	// A port nobody listens on: grab one and close it.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	down := ln.Addr().String()
	_ = ln.Close()
	p := &Prober{Tries: 3, Timeout: time.Second}
	rtt, errs := p.MeasureAll(context.Background(), []protocol.Region{{ID: "local", ProbeAddr: up}, {ID: "gone", ProbeAddr: down}})
	if ms, ok := rtt["local"]; !ok || ms < 1 || ms > 1000 {
		t.Fatalf("rtt %v", rtt)
	}
	if _, ok := errs["gone"]; !ok {
		t.Fatalf("closed port measured: %v", rtt)
	}
	if _, ok := rtt["gone"]; ok {
		t.Fatal("failed region reported")
	}
}

func TestMillisAndMedian(t *testing.T) {
	if Millis(0) != 1 || Millis(time.Millisecond) != 1 || Millis(1001*time.Microsecond) != 2 {
		t.Fatal("Millis rounding")
	}
	if Median([]time.Duration{4, 1, 3, 2}) != 2 || Median(nil) != 0 {
		t.Fatal("Median")
	}
}
