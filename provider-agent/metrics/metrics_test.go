package metrics

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/highway-compute/highway/protocol"
)

func TestServeMetrics(t *testing.T) {
	m := New("test", true)
	m.ObserveGPUs([]protocol.GPU{{Index: 0, UUID: "GPU-a", Name: "NVIDIA H100 80GB HBM3", UtilizationPct: 42, TemperatureC: 50, PowerMW: 350_000, MemoryTotalMiB: 81559, MemoryUsedMiB: 1000, Free: true}})
	m.ObserveRTT(map[string]int64{"eu": 12})
	m.ObserveLeases([]protocol.RunningLease{{LeaseID: "l", State: protocol.LeaseRunning}})
	m.HeartbeatFailures.Inc()
	m.ProofsSubmitted.Inc()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx, "127.0.0.1:0", func(a net.Addr) { addrc <- a }) }()
	addr := <-addrc
	resp, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	text := string(body)
	for _, want := range []string{
		`DCGM_FI_DEV_GPU_UTIL{UUID="GPU-a",gpu="0",modelName="NVIDIA H100 80GB HBM3"} 42`,
		`DCGM_FI_DEV_POWER_USAGE{UUID="GPU-a",gpu="0",modelName="NVIDIA H100 80GB HBM3"} 350`,
		`DCGM_FI_DEV_FB_FREE{UUID="GPU-a",gpu="0",modelName="NVIDIA H100 80GB HBM3"} 80559`,
		`highway_agent_info{simulated="true",version="test"} 1`,
		`highway_agent_heartbeat_failures_total 1`,
		`highway_agent_proofs_submitted_total 1`,
		`highway_agent_region_rtt_milliseconds{region="eu"} 12`,
		`highway_agent_leases{state="running"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %s", want)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}
