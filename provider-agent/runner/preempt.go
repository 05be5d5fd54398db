package runner

import (
	"fmt"
	"time"

	"github.com/highway-compute/highway/protocol"
)

// Preempt gives an interruptible lease its preemption notice: a system
// line in its log (the buyer reads it live), SIGTERM to the workload now
// so it can write a checkpoint, and SIGKILL at at. It returns at once (the
// agent's poll loop must not wait out the notice) and reports whether the
// lease is known here. The GPUs go to the preempting lease at at, so the
// notice is never longer, whatever the agent's usual stop grace.
func (m *Manager) Preempt(leaseID string, at time.Time) bool {
	m.mu.Lock()
	l, ok := m.leases[leaseID]
	m.mu.Unlock()
	if !ok {
		return false
	}
	grace := max(at.Sub(m.now()), 0)
	l.emit(m, protocol.StreamSystem, fmt.Sprintf("preemption notice: this interruptible lease's GPUs were taken by an on-demand order or a higher bid. "+
		"The workload gets SIGTERM now and is stopped at %s (in %s): write your checkpoint. The epoch cut short is refunded.",
		at.UTC().Format(time.RFC3339), grace.Round(time.Second)))
	go func() { _ = m.stopWith(leaseID, grace) }()
	return true
}
