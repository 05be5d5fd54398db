package agent

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/highway-compute/highway/protocol"
	"github.com/highway-compute/highway/provider-agent/gpu"
)

// beatRecorder is the marketplace side of heartbeats only: it records the
// beats and answers the first with the regions to probe.
type beatRecorder struct {
	mu      sync.Mutex
	beats   []protocol.Heartbeat
	regions []protocol.Region
}

func (r *beatRecorder) Heartbeat(_ context.Context, hb protocol.Heartbeat) (protocol.HeartbeatResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.beats = append(r.beats, hb)
	return protocol.HeartbeatResponse{Regions: r.regions}, nil
}

func (r *beatRecorder) Assignments(ctx context.Context, _ uint64, wait time.Duration) (protocol.AssignmentsResponse, error) {
	sleep(ctx, wait)
	return protocol.AssignmentsResponse{}, ctx.Err()
}
func (r *beatRecorder) SendLogs(context.Context, protocol.LogBatch) error       { return nil }
func (r *beatRecorder) SendQuote(context.Context, protocol.QuoteResponse) error { return nil }
func (r *beatRecorder) SendVerification(context.Context, protocol.VerificationResponse) error {
	return nil
}

func (r *beatRecorder) snapshot() []protocol.Heartbeat {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]protocol.Heartbeat(nil), r.beats...)
}

// regionProber reports a fixed RTT for every region it is asked about and
// remembers what it was asked.
type regionProber struct {
	mu    sync.Mutex
	asked [][]protocol.Region
}

func (p *regionProber) MeasureAll(_ context.Context, regions []protocol.Region) (map[string]int64, map[string]error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.asked = append(p.asked, regions)
	rtt := map[string]int64{}
	for _, r := range regions {
		rtt[r.ID] = 7
	}
	return rtt, nil
}

func (p *regionProber) calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.asked)
}

// TestNewRegionsAndRTTsAreSentAtOnce: with hour-long heartbeat and probe
// intervals, regions learnt from a heartbeat are probed at once and the
// RTTs reach the marketplace in the next beat, not an hour later. Before
// the wake-ups, a machine's first beats listed it with no latency, and an
// order with max_rtt_ms found no capacity until the next interval (the
// CI failure of TestEndToEnd: "order: 409 no_capacity").
func TestNewRegionsAndRTTsAreSentAtOnce(t *testing.T) {
	sess := fakeGPUs(t, "h100x1")
	api := &beatRecorder{regions: []protocol.Region{{ID: "eu-west", ProbeAddr: "127.0.0.1:9"}}}
	prober := &regionProber{}
	runFor(t, Config{AgentID: "agent-1", API: api, GPUs: sess, Prober: prober,
		HeartbeatInterval: time.Hour, ProbeInterval: time.Hour, PollWait: time.Hour})

	waitFor(t, "a beat carrying the RTT to the region the first beat named", func() bool {
		beats := api.snapshot()
		return len(beats) >= 2 && beats[len(beats)-1].RTTms["eu-west"] == 7
	})
	beats := api.snapshot()
	if len(beats[0].RTTms) != 0 {
		t.Fatalf("first beat had RTTs %v before any region was known", beats[0].RTTms)
	}
	// The same regions again wake nothing: two beats, and one probe (two
	// when the regions arrived between the probe loop's first look and
	// its first wait; the second finds the same RTTs and wakes no beat).
	time.Sleep(100 * time.Millisecond)
	if n, b := prober.calls(), len(api.snapshot()); n < 1 || n > 2 || b != 2 {
		t.Fatalf("%d probes and %d beats, want 1 or 2 and 2", n, b)
	}
}

// fakeGPUs opens go-nvml's mock with a profile's GPUs for the test.
func fakeGPUs(t *testing.T, profile string) *gpu.Session {
	t.Helper()
	fake, err := gpu.FakeProfile(profile)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := gpu.Open(fake)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sess.Close() })
	return sess
}

// runFor runs an agent on cfg until the test ends.
func runFor(t *testing.T, cfg Config) {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("agent: %v", err)
		}
	})
}
