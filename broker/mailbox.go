package broker

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/protocol"
)

// The agent mailbox: assignments queued per agent and long-polled, quote
// requests handed over on the next poll, and heartbeats batched into one
// write a second. It has its own lock and its own narrow store; the
// broker's lock may be held when work is posted (lock order: broker, then
// mailbox), never taken while the mailbox's is held.

// mailboxStore is what the mailbox reads and writes.
type mailboxStore interface {
	AddAssignment(ctx context.Context, a models.AssignmentRow) error
	Assignments(ctx context.Context, agentID string, after int64) ([]models.AssignmentRow, error)
	MaxAssignmentID(ctx context.Context) (int64, error)
	ApplyHeartbeat(ctx context.Context, u models.HeartbeatUpdate) error
}

type mailbox struct {
	store mailboxStore

	mu      sync.Mutex
	nextAsg int64
	wake    map[string]chan struct{} // agent id → poll wake-up
	quotes  map[string][]protocol.QuoteRequest

	// beats are the latest heartbeat per machine, waiting to be stored.
	beatMu sync.Mutex
	beats  map[string]queuedBeat
}

type queuedBeat struct {
	update models.HeartbeatUpdate // GPUs filled in from gpus at the flush
	gpus   []protocol.GPU
	leases []protocol.RunningLease
}

func newMailbox(store mailboxStore) *mailbox {
	return &mailbox{store: store, wake: map[string]chan struct{}{}, quotes: map[string][]protocol.QuoteRequest{},
		beats: map[string]queuedBeat{}}
}

// load continues assignment ids after the last one stored.
func (m *mailbox) load(ctx context.Context) error {
	n, err := m.store.MaxAssignmentID(ctx)
	m.mu.Lock()
	m.nextAsg = n
	m.mu.Unlock()
	return err
}

// post stores work for an agent under the next id and wakes its poll. Ids
// are taken and stored under one lock, so an agent polling "after n" never
// skips one written late.
func (m *mailbox) post(ctx context.Context, agentID string, as protocol.Assignment) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nextAsg++
	as.ID = uint64(m.nextAsg)
	body, err := json.Marshal(as)
	if err != nil {
		return 0, err
	}
	if err := m.store.AddAssignment(ctx, models.AssignmentRow{ID: m.nextAsg, AgentID: agentID, LeaseID: as.LeaseID, Body: string(body)}); err != nil {
		return 0, err
	}
	m.wakeLocked(agentID)
	return as.ID, nil
}

// ask hands a quote request to the agent's next poll.
func (m *mailbox) ask(agentID string, q protocol.QuoteRequest) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.quotes[agentID] = append(m.quotes[agentID], q)
	m.wakeLocked(agentID)
}

func (m *mailbox) wakeLocked(agentID string) {
	if ch, ok := m.wake[agentID]; ok {
		close(ch)
		delete(m.wake, agentID)
	}
}

// poll returns the agent's assignments after id after that due still
// wants delivered, and its quote requests, waiting up to wait (or until
// stop closes) for some to appear.
func (m *mailbox) poll(ctx context.Context, agentID string, after uint64, wait time.Duration, due func(context.Context, *protocol.Assignment) bool, stop <-chan struct{}) (protocol.AssignmentsResponse, error) {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		// The wake-up is registered before the read, so work posted
		// between the read and the wait still wakes this poll.
		m.mu.Lock()
		ch, ok := m.wake[agentID]
		if !ok {
			ch = make(chan struct{})
			m.wake[agentID] = ch
		}
		m.mu.Unlock()
		rows, err := m.store.Assignments(ctx, agentID, int64(after))
		if err != nil {
			return protocol.AssignmentsResponse{}, err
		}
		resp := protocol.AssignmentsResponse{Assignments: []protocol.Assignment{}}
		for _, r := range rows {
			var as protocol.Assignment
			if err := json.Unmarshal([]byte(r.Body), &as); err != nil {
				return resp, fmt.Errorf("assignment %d: %w", r.ID, err)
			}
			if !due(ctx, &as) {
				// A restarted agent polls from the beginning: work that is
				// over (an answered challenge, a lease that ended) is not
				// handed out again. Its id still advances the agent's cursor.
				after = as.ID
				continue
			}
			resp.Assignments = append(resp.Assignments, as)
		}
		m.mu.Lock()
		if qs := m.quotes[agentID]; len(qs) > 0 {
			resp.QuoteRequests = qs
			delete(m.quotes, agentID)
		}
		m.mu.Unlock()
		if len(resp.Assignments) > 0 || len(resp.QuoteRequests) > 0 {
			return resp, nil
		}
		select {
		case <-ctx.Done():
			return resp, ctx.Err()
		case <-deadline.C:
			return resp, nil
		case <-stop:
			return resp, nil
		case <-ch:
		}
	}
}

// queueBeat keeps a machine's heartbeat to store behind: only the latest
// per machine is kept, and the tick loop writes them once a second, so
// heartbeats cost no database write on the request path (a machine's row
// lags by at most a second; the engine has the beat at once).
//
// gpus is the beat's own slice, kept as it is until the flush converts it
// for the row: nothing writes a decoded beat once Heartbeat has applied it.
func (m *mailbox) queueBeat(u models.HeartbeatUpdate, gpus []protocol.GPU, leases []protocol.RunningLease) {
	m.beatMu.Lock()
	defer m.beatMu.Unlock()
	// The machine's row takes the latest beat, but workload reports are
	// merged: an agent reports a finished lease in one accepted beat only,
	// so a later beat in the same second must not drop it.
	merged := slices.Clone(m.beats[u.MachineID].leases)
	for _, l := range leases {
		if i := slices.IndexFunc(merged, func(x protocol.RunningLease) bool { return x.LeaseID == l.LeaseID }); i >= 0 {
			merged[i] = l
		} else {
			merged = append(merged, l)
		}
	}
	m.beats[u.MachineID] = queuedBeat{update: u, gpus: gpus, leases: merged}
}

// flushBeats stores the queued heartbeats in machine id order and hands
// each stored beat's workload reports to reported.
func (m *mailbox) flushBeats(ctx context.Context, warn func(machineID string, err error), reported func(ctx context.Context, agentID string, leases []protocol.RunningLease)) {
	m.beatMu.Lock()
	pending := m.beats
	m.beats = make(map[string]queuedBeat, len(pending))
	m.beatMu.Unlock()
	ids := make([]string, 0, len(pending))
	for id := range pending {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		q := pending[id]
		q.update.GPUs = storedGPUs(q.gpus)
		if err := m.store.ApplyHeartbeat(ctx, q.update); err != nil {
			// A beat the database holds something newer than (seq) is
			// simply superseded; anything else is worth a warning.
			if highway.ErrorField(err) != "seq" {
				warn(id, err)
			}
			continue
		}
		reported(ctx, q.update.AgentID, q.leases)
	}
}

// Poll is the agent's long-poll: assignments after id after, and quote
// requests, waiting up to wait for some to appear.
func (b *Broker) Poll(ctx context.Context, agentID string, after uint64, wait time.Duration) (protocol.AssignmentsResponse, error) {
	return b.mail.poll(ctx, agentID, after, wait, b.stillDue, b.stopping)
}

// flushBeats stores the queued heartbeats and records their workload
// reports.
func (b *Broker) flushBeats(ctx context.Context) {
	b.mail.flushBeats(ctx, func(id string, err error) { b.log.Warn("store heartbeat", "machine", id, "err", err) }, b.leaseReports)
}

// stillDue reports whether an assignment is still worth delivering, and
// completes a start with what its stored body leaves out (the buyer's
// registry login).
func (b *Broker) stillDue(ctx context.Context, as *protocol.Assignment) bool {
	switch as.Action {
	case protocol.ActionVerify:
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.verifies[as.ID] != nil
	case protocol.ActionStart:
		l, err := b.store.LeaseByID(ctx, as.LeaseID)
		if err != nil {
			return true
		}
		if l.Status != models.LeaseActive {
			return false
		}
		// The lease's current end: an extension moved it after this start
		// was queued.
		as.EndsAt = l.EndsAt.UnixMilli()
		b.withLogin(ctx, l, as)
		return true
	case protocol.ActionShell:
		// A dial-back is wanted while its session waits: an agent that
		// restarts is not sent every tunnel it was ever asked for.
		return as.Shell != nil && b.waiting(as.Shell.Session)
	case protocol.ActionForward:
		return as.Forward != nil && b.waiting(as.Forward.Session)
	}
	return true
}

func randomUint64() uint64 {
	var x [8]byte
	_, _ = rand.Read(x[:])
	return uint64(x[0])<<56 | uint64(x[1])<<48 | uint64(x[2])<<40 | uint64(x[3])<<32 | uint64(x[4])<<24 | uint64(x[5])<<16 | uint64(x[6])<<8 | uint64(x[7])
}
