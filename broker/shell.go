package broker

import (
	"context"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/protocol"
)

// Shells into leases' workloads (protocol/shell.go). A buyer's WebSocket
// opens a session; the lease's agent is asked, through its long-poll, to
// dial back for it; the handler relays frames between the two sockets.
// Only the lease's buyer may open one, only the lease's agent may answer
// it, a session is answered once, and the lease's end ends its sessions.

// ShellDialBack is how long a session waits for the agent to dial back.
const ShellDialBack = 15 * time.Second

// maxShellsPerLease bounds the sessions open at once into one lease.
const maxShellsPerLease = 4

// ShellSession is an open session, between its buyer's socket and the
// agent's. A forwarded port's tunnel (forward.go) is one too, with its
// port set: both are dialled back the same way and end with the lease.
type ShellSession struct {
	ID, LeaseID, UserID, agentID string
	port                         uint16 // a tunnel's workload port; 0 for a shell
	// Agent delivers the agent's socket once it dialed back.
	Agent chan *websocket.Conn
	// Done ends the session (the lease ended, or the relay finished).
	Done    <-chan struct{}
	end     context.CancelFunc
	claimed bool
}

// shellHub holds the open sessions.
type shellHub struct {
	mu       sync.Mutex
	sessions map[string]*ShellSession
}

// OpenShell opens a session into lease leaseID's running workload for its
// buyer and asks the agent to dial back.
func (b *Broker) OpenShell(ctx context.Context, userID, leaseID string, size protocol.ShellSize) (*ShellSession, error) {
	l, err := b.ownLease(ctx, userID, leaseID)
	if err != nil {
		return nil, err
	}
	switch {
	case !size.Valid():
		return nil, &highway.Error{Code: highway.EINVALID, Field: "cols", Message: "A terminal is 1 to 1000 columns and rows."}
	case l.Status != models.LeaseActive:
		return nil, &highway.Error{Code: highway.ECONFLICT, Message: "Only an active lease has a shell (this one is " + l.Status + ")."}
	case l.PreemptAt != nil:
		return nil, &highway.Error{Code: highway.ECONFLICT, Message: "This lease was preempted; its workload is stopping."}
	case l.WorkloadStatus != protocol.LeaseRunning:
		return nil, &highway.Error{Code: highway.ECONFLICT, Message: "The workload is not running (it is " + l.WorkloadStatus + ")."}
	}
	id := models.NewID()
	done, end := context.WithCancel(context.Background())
	s := &ShellSession{ID: id, LeaseID: l.ID, UserID: userID, agentID: l.AgentID, Agent: make(chan *websocket.Conn, 1), Done: done.Done(), end: end}
	// Counted and reserved under one lock: opens racing for the last slot
	// get one each, not all.
	b.shells.mu.Lock()
	open := 0
	for _, o := range b.shells.sessions {
		if o.LeaseID == l.ID && o.port == 0 {
			open++
		}
	}
	if open < maxShellsPerLease {
		b.shells.sessions[id] = s
	}
	b.shells.mu.Unlock()
	if open >= maxShellsPerLease {
		end()
		return nil, &highway.Error{Code: highway.ECONFLICT, Message: "This lease already has 4 shells open; close one first."}
	}
	if err := b.store.CreateShellSession(ctx, &models.ShellSession{ID: id, LeaseID: l.ID, UserID: userID, StartedAt: b.now().UTC()}); err != nil {
		end()
		b.shells.mu.Lock()
		delete(b.shells.sessions, id)
		b.shells.mu.Unlock()
		return nil, err
	}
	if _, err := b.mail.post(ctx, l.AgentID, protocol.Assignment{LeaseID: l.ID, Action: protocol.ActionShell,
		Shell: &protocol.ShellRequest{Session: id, Cols: size.Cols, Rows: size.Rows}}); err != nil {
		b.EndShell(ctx, s, 0, 0, "the agent could not be asked")
		return nil, err
	}
	return s, nil
}

// ClaimShell gives session id to the agent that dials back for it: only
// the lease's own agent, only once, and only as what it was asked for (a
// shell, or a tunnel: tunnel says which the agent dialled).
func (b *Broker) ClaimShell(agentID, id string, tunnel bool) (*ShellSession, error) {
	b.shells.mu.Lock()
	defer b.shells.mu.Unlock()
	s := b.shells.sessions[id]
	if s == nil || s.agentID != agentID || s.claimed || (s.port != 0) != tunnel {
		return nil, &highway.Error{Code: highway.ENOTFOUND, Field: "session", Message: "No shell session " + id + " is waiting for this agent."}
	}
	s.claimed = true
	return s, nil
}

// EndShell closes a session and records how it went.
func (b *Broker) EndShell(ctx context.Context, s *ShellSession, bytesIn, bytesOut int64, reason string) {
	s.end()
	b.shells.mu.Lock()
	delete(b.shells.sessions, s.ID)
	b.shells.mu.Unlock()
	if err := b.store.EndShellSession(context.WithoutCancel(ctx), s.ID, bytesIn, bytesOut, reason); err != nil {
		b.log.Error("record shell session end", "session", s.ID, "err", err)
	}
}

// waiting says whether session id still waits for its agent to dial
// back: an assignment for one that does not is not worth delivering.
func (b *Broker) waiting(id string) bool {
	b.shells.mu.Lock()
	defer b.shells.mu.Unlock()
	s := b.shells.sessions[id]
	return s != nil && !s.claimed
}

// endShellsOf ends a lease's open sessions: it closed, expired or was
// preempted.
func (b *Broker) endShellsOf(leaseID string) {
	b.shells.mu.Lock()
	defer b.shells.mu.Unlock()
	for _, s := range b.shells.sessions {
		if s.LeaseID == leaseID {
			s.end()
		}
	}
}
