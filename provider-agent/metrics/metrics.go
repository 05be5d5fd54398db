// Package metrics exposes the agent's Prometheus metrics on a local port.
// Per-GPU gauges reuse dcgm-exporter's names where they mean the same thing
// (DCGM_FI_DEV_GPU_UTIL, DCGM_FI_DEV_FB_USED, ...) with its gpu, UUID and
// modelName labels, so existing Grafana dashboards work unchanged; agent
// health uses highway_agent_* names. Metrics live in their own registry,
// never the global one, so tests and the demo fleet (many agents in one
// process) do not collide.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/highway-compute/highway/protocol"
)

// Metrics holds every collector of one agent.
type Metrics struct {
	Registry *prometheus.Registry

	gpuUtil, gpuTemp, power, powerLimit, fbUsed, fbFree, ecc, gpuFree *prometheus.GaugeVec

	HeartbeatLatency  prometheus.Histogram
	HeartbeatFailures prometheus.Counter
	HeartbeatsSent    prometheus.Counter
	LastHeartbeat     prometheus.Gauge
	RTT               *prometheus.GaugeVec
	Leases            *prometheus.GaugeVec
	ProofsSubmitted   prometheus.Counter
	ProofsCleared     prometheus.Counter
	ProofsFailed      prometheus.Counter
	LogLinesDropped   prometheus.Counter
}

var gpuLabels = []string{"gpu", "UUID", "modelName"}

// New builds the collectors. simulated is exported as a label of
// highway_agent_info, so a dashboard can never mistake a fake GPU for a
// real one.
func New(version string, simulated bool) *Metrics {
	r := prometheus.NewRegistry()
	g := func(name, help string) *prometheus.GaugeVec {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, gpuLabels)
		r.MustRegister(v)
		return v
	}
	m := &Metrics{
		Registry:   r,
		gpuUtil:    g("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %)."),
		gpuTemp:    g("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C)."),
		power:      g("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W)."),
		powerLimit: g("DCGM_FI_DEV_POWER_MGMT_LIMIT", "Enforced power limit (in W)."),
		fbUsed:     g("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB)."),
		fbFree:     g("DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB)."),
		ecc:        g("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "Uncorrectable (double-bit) volatile ECC errors."),
		gpuFree:    g("highway_agent_gpu_free", "1 when the GPU is free to lease, 0 when leased."),
		HeartbeatLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "highway_agent_heartbeat_latency_seconds", Help: "Round trip of accepted heartbeats.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		HeartbeatFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "highway_agent_heartbeat_failures_total", Help: "Heartbeats that failed (network, 4xx, 5xx)."}),
		HeartbeatsSent:    prometheus.NewCounter(prometheus.CounterOpts{Name: "highway_agent_heartbeats_total", Help: "Heartbeats accepted by the marketplace."}),
		LastHeartbeat:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "highway_agent_last_heartbeat_timestamp_seconds", Help: "Unix time of the last accepted heartbeat."}),
		RTT:               prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "highway_agent_region_rtt_milliseconds", Help: "Median TCP connect RTT to each region's probe."}, []string{"region"}),
		Leases:            prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "highway_agent_leases", Help: "Leases known to the agent by state."}, []string{"state"}),
		ProofsSubmitted:   prometheus.NewCounter(prometheus.CounterOpts{Name: "highway_agent_proofs_submitted_total", Help: "PoC proofs submitted to the chain."}),
		ProofsCleared:     prometheus.NewCounter(prometheus.CounterOpts{Name: "highway_agent_proofs_cleared_total", Help: "PoC proofs the chain accepted."}),
		ProofsFailed:      prometheus.NewCounter(prometheus.CounterOpts{Name: "highway_agent_proofs_failed_total", Help: "PoC epochs that could not be proven or were rejected."}),
		LogLinesDropped:   prometheus.NewCounter(prometheus.CounterOpts{Name: "highway_agent_log_lines_dropped_total", Help: "Workload log lines dropped because the buffer was full."}),
	}
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "highway_agent_info", Help: "Agent build and mode."}, []string{"version", "simulated"})
	info.WithLabelValues(version, strconv.FormatBool(simulated)).Set(1)
	r.MustRegister(info, m.HeartbeatLatency, m.HeartbeatFailures, m.HeartbeatsSent, m.LastHeartbeat, m.RTT, m.Leases,
		m.ProofsSubmitted, m.ProofsCleared, m.ProofsFailed, m.LogLinesDropped,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveGPUs replaces the per-GPU gauges with a fresh snapshot (GPUs that
// disappeared stop being exported).
func (m *Metrics) ObserveGPUs(gpus []protocol.GPU) {
	for _, v := range []*prometheus.GaugeVec{m.gpuUtil, m.gpuTemp, m.power, m.powerLimit, m.fbUsed, m.fbFree, m.ecc, m.gpuFree} {
		v.Reset()
	}
	for _, g := range gpus {
		l := prometheus.Labels{"gpu": strconv.Itoa(g.Index), "UUID": g.UUID, "modelName": g.Name}
		m.gpuUtil.With(l).Set(float64(g.UtilizationPct))
		m.gpuTemp.With(l).Set(float64(g.TemperatureC))
		m.power.With(l).Set(float64(g.PowerMW) / 1000)
		m.powerLimit.With(l).Set(float64(g.PowerLimitMW) / 1000)
		m.fbUsed.With(l).Set(float64(g.MemoryUsedMiB))
		m.fbFree.With(l).Set(float64(g.MemoryTotalMiB - g.MemoryUsedMiB))
		m.ecc.With(l).Set(float64(g.ECCUncorrected))
		free := 0.0
		if g.Free {
			free = 1
		}
		m.gpuFree.With(l).Set(free)
	}
}

// ObserveLeases sets the lease-state gauge.
func (m *Metrics) ObserveLeases(leases []protocol.RunningLease) {
	m.Leases.Reset()
	for _, l := range leases {
		m.Leases.WithLabelValues(l.State).Inc()
	}
}

// ObserveRTT sets the per-region RTT gauge.
func (m *Metrics) ObserveRTT(rtt map[string]int64) {
	m.RTT.Reset()
	for region, ms := range rtt {
		m.RTT.WithLabelValues(region).Set(float64(ms))
	}
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// Serve listens on addr (127.0.0.1:9400 by default: metrics say what a
// machine runs and for whom, so they are not published to the world unless
// the operator asks) and serves /metrics until ctx ends. It returns the
// bound address through ready (useful with port 0) before serving.
func (m *Metrics) Serve(ctx context.Context, addr string, ready func(net.Addr)) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("metrics serve: %w", err)
	}
}
