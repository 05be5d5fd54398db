//go:build cgo

package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"
	sdk "github.com/cosmos/cosmos-sdk/types"

	chainclient "github.com/highway-compute/highway/chain/client"
	"github.com/highway-compute/highway/protocol"
	"github.com/highway-compute/highway/provider-agent/agent"
	"github.com/highway-compute/highway/provider-agent/chainlink"
	"github.com/highway-compute/highway/provider-agent/client"
	"github.com/highway-compute/highway/provider-agent/gpu"
	"github.com/highway-compute/highway/provider-agent/prover"
	"github.com/highway-compute/highway/provider-agent/runner"
	"github.com/highway-compute/highway/provider-agent/state"
)

// fleetAgent is one simulated provider machine: the real agent code on
// go-nvml's mock devices, with RTTs configured rather than measured (all
// the demo machines share one host, so measured RTTs would all be ~0).
type fleetAgent struct {
	ServerURL string
	// Token enrolls the agent the first time; later runs reuse StateDir.
	Token       string
	StateDir    string
	Profile     string // gpu.FakeProfile name, e.g. h100x2
	Seed        string // makes GPU UUIDs unique per machine
	RTT         map[string]int64
	ProviderKey *secp256k1.PrivKey
	Chain       *chainclient.Client
	Prover      agent.Prover // nil: the honest local prover
	Interval    time.Duration
	Logger      *slog.Logger
	// Containers, when set, runs every workload in a container (commands
	// in its default image); else they run as processes (exec).
	Containers *runner.Docker
}

// start enrolls (once) and runs the agent until the returned stop is called.
func (f fleetAgent) start(ctx context.Context) (stop func(), err error) {
	fake, err := gpu.FakeProfileSeed(f.Profile, f.Seed)
	if err != nil {
		return nil, err
	}
	sess, err := gpu.Open(fake)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (func(), error) { sess.Close(); return nil, err }
	dir := state.Dir{Path: f.StateDir}
	st, err := dir.Load()
	if errors.Is(err, state.ErrNotEnrolled) {
		inv, serr := sess.Snapshot()
		if serr != nil {
			return fail(serr)
		}
		st, err = agent.Enroll(ctx, &client.Client{BaseURL: f.ServerURL}, dir, agent.EnrollRequest{
			ServerURL: f.ServerURL, Token: f.Token, Hostname: f.Seed, Version: version, Inventory: inv, Rand: rand.Reader})
	}
	if err != nil {
		return fail(fmt.Errorf("fleet machine %s: %w", f.Seed, err))
	}
	key, err := dir.LoadKey()
	if err != nil {
		return fail(err)
	}
	provider := sdk.AccAddress(f.ProviderKey.PubKey().Address())
	regions := make([]protocol.Region, 0, len(f.RTT))
	for r := range f.RTT {
		regions = append(regions, protocol.Region{ID: r, ProbeAddr: "127.0.0.1:1"})
	}
	p := f.Prover
	if p == nil {
		p = &prover.Local{}
	}
	logger := f.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var drivers []runner.Driver
	if f.Containers != nil {
		d := f.Containers.For(st.AgentID)
		// What a killed run of this machine left behind (make dev
		// survives kill -9; its containers do not die with it): running
		// ones are adopted when their lease comes back, the rest removed.
		if kept, removed, err := d.Survey(ctx); err != nil {
			logger.Warn("could not look for leftover containers", "err", err)
		} else if kept+removed > 0 {
			logger.Info("containers a previous run left", "running_kept_for_adoption", kept, "ended_removed", removed)
		}
		drivers = []runner.Driver{d}
	} else {
		drivers = []runner.Driver{&runner.Exec{WorkRoot: filepath.Join(f.StateDir, "work")}}
	}
	a, err := agent.New(agent.Config{
		AgentID: st.AgentID, Version: version, GPUs: sess, ProviderAddress: provider.String(),
		API: &client.Client{BaseURL: f.ServerURL, Signer: &protocol.Signer{AgentID: st.AgentID, Key: key}},
		// Without containers, buyers' commands run in a directory of their
		// own under the machine's state (.highway/fleet/…), never in the
		// checkout, with the runner's minimal environment and their own
		// process group.
		Drivers: drivers, Prober: staticProber(f.RTT), Regions: regions,
		Quotes: chainlink.QuoteSigner{Key: f.ProviderKey}, Proofs: &chainlink.Follower{Client: f.Chain, Provider: provider},
		Prover: p, Submitter: &chainlink.Submitter{Client: f.Chain, Key: f.ProviderKey},
		HeartbeatInterval: f.Interval, PollWait: 10 * time.Second, LogFlush: 200 * time.Millisecond, StopGrace: time.Second,
		Backoff: client.Backoff{Base: 100 * time.Millisecond, Max: 2 * time.Second}, Logger: logger,
	})
	if err != nil {
		return fail(err)
	}
	actx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = a.Run(actx); close(done) }()
	stopped := false
	return func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
			sess.Close()
		}
	}, nil
}

// staticProber reports configured RTTs in place of measuring them.
type staticProber map[string]int64

func (s staticProber) MeasureAll(context.Context, []protocol.Region) (map[string]int64, map[string]error) {
	out := make(map[string]int64, len(s))
	for k, v := range s {
		out[k] = v
	}
	return out, nil
}
