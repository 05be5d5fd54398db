package agent

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/highway-compute/highway/protocol"
	"github.com/highway-compute/highway/provider-agent/runner"
)

// replayAPI hands out its assignments on the first poll, as the
// marketplace does to a restarted agent polling from the beginning, and
// nothing after.
type replayAPI struct {
	beatRecorder
	mu    sync.Mutex
	first []protocol.Assignment
	polls int
}

func (r *replayAPI) Assignments(ctx context.Context, _ uint64, _ time.Duration) (protocol.AssignmentsResponse, error) {
	r.mu.Lock()
	r.polls++
	as := r.first
	r.first = nil
	r.mu.Unlock()
	if as == nil {
		sleep(ctx, 20*time.Millisecond)
	}
	return protocol.AssignmentsResponse{Assignments: as}, ctx.Err()
}

// adoptingDriver records what the agent asks of a driver that keeps a
// previous run's workloads for adoption.
type adoptingDriver struct {
	mu     sync.Mutex
	events []string
}

func (d *adoptingDriver) record(e string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.events = append(d.events, e)
}

func (d *adoptingDriver) log() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.events...)
}

func (d *adoptingDriver) Name() string                      { return "docker" }
func (d *adoptingDriver) Accepts(protocol.Workload) bool    { return true }
func (d *adoptingDriver) Reap(context.Context) (int, error) { d.record("reap"); return 1, nil }
func (d *adoptingDriver) Start(_ context.Context, spec runner.Spec, _ runner.Output) (runner.Process, error) {
	d.record("start " + spec.LeaseID)
	return &idleProc{stop: make(chan struct{})}, nil
}

type idleProc struct {
	once sync.Once
	stop chan struct{}
}

func (p *idleProc) Wait() (int, error) { <-p.stop; return 0, nil }
func (p *idleProc) Stop(time.Duration) error {
	p.once.Do(func() { close(p.stop) })
	return nil
}

// TestLeftoverWorkloadsReapedOnceCaughtUp: a restarted agent first gets
// its live leases again (their containers adopted by the driver), and only
// then, at its first poll that brings nothing, asks the driver to remove
// what no lease claimed, once.
func TestLeftoverWorkloadsReapedOnceCaughtUp(t *testing.T) {
	sess := fakeGPUs(t, "h100x1")
	inv, err := sess.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	api := &replayAPI{first: []protocol.Assignment{{ID: 1, LeaseID: "live", Action: protocol.ActionStart, GPUs: []string{inv.GPUs[0].UUID},
		Workload: protocol.Workload{Image: "example/train:1"}}}}
	drv := &adoptingDriver{}
	runFor(t, Config{AgentID: "agent-1", API: api, GPUs: sess, Drivers: []runner.Driver{drv},
		HeartbeatInterval: time.Hour, PollWait: time.Hour})
	waitFor(t, "the reap after the first empty poll", func() bool { return len(drv.log()) >= 2 })
	waitFor(t, "several more polls", func() bool {
		api.mu.Lock()
		defer api.mu.Unlock()
		return api.polls >= 5
	})
	if got := drv.log(); len(got) != 2 || got[0] != "start live" || got[1] != "reap" {
		t.Fatalf("driver saw %v, want the live lease started, then one reap", got)
	}
}
