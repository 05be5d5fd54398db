package runner

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/highway-compute/highway/protocol"
)

// Pauser is a workload that can be frozen and thawed: its processes keep
// their memory (and GPU memory) but get no time, so a proof window can
// have the GPUs to itself.
type Pauser interface {
	Pause() error
	Resume() error
}

// ErrNotPausable: the lease has no running workload that can be paused.
var ErrNotPausable = errors.New("the lease's workload cannot be paused")

// Pause freezes a lease's workload for a proof window and says so in its
// log, so the buyer sees why it stalled. Resume thaws it.
func (m *Manager) Pause(leaseID, why string) error {
	p, l, err := m.pauser(leaseID)
	if err != nil {
		return err
	}
	if err := p.Pause(); err != nil {
		return fmt.Errorf("pause lease %s: %w", leaseID, err)
	}
	l.emit(m, protocol.StreamSystem, "workload paused: "+why)
	return nil
}

// Resume thaws a workload Pause froze.
func (m *Manager) Resume(leaseID string) error {
	p, l, err := m.pauser(leaseID)
	if err != nil {
		return err
	}
	if err := p.Resume(); err != nil {
		return fmt.Errorf("resume lease %s: %w", leaseID, err)
	}
	l.emit(m, protocol.StreamSystem, "workload resumed")
	return nil
}

func (m *Manager) pauser(leaseID string) (Pauser, *lease, error) {
	m.mu.Lock()
	l, ok := m.leases[leaseID]
	m.mu.Unlock()
	if !ok {
		return nil, nil, ErrNotPausable
	}
	l.mu.Lock()
	proc, running := l.proc, l.status.State == protocol.LeaseRunning
	l.mu.Unlock()
	p, ok := proc.(Pauser)
	if !running || !ok {
		return nil, nil, ErrNotPausable
	}
	return p, l, nil
}

// Pause implements Pauser: SIGSTOP to the workload's process group.
func (p *proc) Pause() error { return signalGroup(p.cmd.Process.Pid, sigStop) }

// Resume implements Pauser: SIGCONT to the group.
func (p *proc) Resume() error { return signalGroup(p.cmd.Process.Pid, sigCont) }

// Pause implements Pauser through the engine (the cgroup freezer): the
// CLI's own process group holds only the client, not the container.
func (c *containerProc) Pause() error { return c.engine("pause") }

// Resume implements Pauser.
func (c *containerProc) Resume() error { return c.engine("unpause") }

func (c *containerProc) engine(verb string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, c.bin, verb, c.name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", verb, c.name, err, strings.TrimSpace(string(out)))
	}
	return nil
}
