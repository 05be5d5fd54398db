// Package runner starts and stops buyers' workloads on the leased GPUs and
// captures their output as numbered log lines.
//
// Two drivers: Exec runs a shell command directly on the host in its own
// process group (only for operators who trust their buyers: see
// docs/provider.md), Docker runs an image with `docker run --gpus`. The
// Manager tracks leases, refuses to hand one GPU to two leases, stops a
// workload on request, at its end time, or when the agent shuts down, and
// remembers how each one ended until the agent has reported it.
package runner

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/highway-compute/highway/protocol"
)

// Spec is one workload to start.
type Spec struct {
	LeaseID  string
	GPUs     []string // UUIDs
	Workload protocol.Workload
}

// Output receives the workload's output one line at a time.
type Output func(stream, text string)

// Process is a running workload.
type Process interface {
	// Wait blocks until the workload ends and returns its exit code
	// (-1 when killed by a signal).
	Wait() (int, error)
	// Stop asks the workload to end (SIGTERM), and kills it after grace.
	Stop(grace time.Duration) error
}

// Driver starts workloads of one kind.
type Driver interface {
	// Name is "exec" or "docker"; it is reported with each lease.
	Name() string
	// Accepts reports whether the driver can run w.
	Accepts(w protocol.Workload) bool
	Start(ctx context.Context, spec Spec, out Output) (Process, error)
}

// LogSink receives every numbered line of every lease.
type LogSink func(leaseID string, line protocol.LogLine)

// ErrGPUBusy: a GPU of the assignment is held by another lease.
var ErrGPUBusy = errors.New("GPU already leased")

// ErrNoDriver: no enabled driver can run the workload.
var ErrNoDriver = errors.New("no enabled driver for this workload")

// ErrEnded is returned by Start for a known lease whose workload already
// ended: a late extension must not look like it moved anything.
var ErrEnded = errors.New("the lease's workload already ended")

// Manager runs leases. Create it with NewManager.
type Manager struct {
	drivers []Driver
	sink    LogSink
	now     func() time.Time
	grace   time.Duration

	changed func()

	mu     sync.Mutex
	leases map[string]*lease
	wg     sync.WaitGroup
}

type lease struct {
	mu     sync.Mutex
	status protocol.RunningLease
	proc   Process
	seq    uint64
	timer  *time.Timer
	endsAt time.Time          // when timer stops the lease (zero: never)
	cancel context.CancelFunc // ends a preparation (Preparer)
	done   chan struct{}
	// spec and drv are what runs, once launched; shells are the open
	// terminals into it (shell.go), ended with it.
	spec   Spec
	drv    Driver
	shells map[*shell]struct{}
	conns  map[*portConn]struct{} // connections into its ports (ports.go)
}

// extend moves a running lease's end to endsAt when that is later.
func (l *lease) extend(m *Manager, endsAt time.Time) {
	l.mu.Lock()
	// A lease whose end already fired (Stop returns false) is stopping.
	moved := l.timer != nil && endsAt.After(l.endsAt) && l.timer.Stop()
	if moved {
		l.endsAt = endsAt
		l.timer.Reset(endsAt.Sub(m.now()))
	}
	l.mu.Unlock()
	if moved {
		l.emit(m, protocol.StreamSystem, "lease extended: it now ends at "+endsAt.UTC().Format(time.RFC3339))
	}
}

// NewManager returns a Manager using the given drivers (in order of
// preference). Grace is how long a stopped workload gets between SIGTERM
// and SIGKILL; now may be nil.
func NewManager(drivers []Driver, sink LogSink, grace time.Duration, now func() time.Time) *Manager {
	if now == nil {
		now = time.Now
	}
	if sink == nil {
		sink = func(string, protocol.LogLine) {}
	}
	return &Manager{drivers: drivers, sink: sink, now: now, grace: grace, leases: make(map[string]*lease)}
}

// Drivers names the enabled drivers.
func (m *Manager) Drivers() []string {
	var out []string
	for _, d := range m.drivers {
		out = append(out, d.Name())
	}
	return out
}

// emit numbers a line and hands it to the sink under one lock, so the
// sink sees a lease's lines in sequence order. Numbered under the lock but
// sunk after it, the stdout and stderr readers (or a reader and the
// "workload started" line) could swap two lines; the marketplace refuses
// a batch whose sequence does not increase, and the agent resent that
// batch for ever: the lease's logs stopped for good.
func (l *lease) emit(m *Manager, stream, text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	m.sink(l.status.LeaseID, protocol.LogLine{Seq: l.seq, Time: m.now().UnixMilli(), Stream: stream, Text: text})
}

// Preparer is a driver with work to do before a workload can start (Docker
// pulls the image). The Manager runs it off the caller's goroutine, since
// the agent's poll loop must keep taking stops meanwhile; it reports the
// progress with the lease and cancels the work on a stop or at the lease's
// end.
type Preparer interface {
	Prepare(ctx context.Context, spec Spec, progress func(protocol.PullProgress), out Output) (Spec, error)
}

// OnChange sets f to be called when a lease's report changes between its
// state changes (an image pull's progress), so the agent can send it
// before its next heartbeat. Call it before Start.
func (m *Manager) OnChange(f func()) { m.changed = f }

// Start starts a lease's workload. Starting a lease that is already known
// only moves its end later (an extension: the marketplace sends the start
// again with the new end); an older or repeated delivery changes nothing,
// so a lease is never cut short by a late copy. A lease that cannot
// start is recorded as failed, with the reason; the error is returned
// when the failure is known at once, and reported with the lease when it
// comes from a driver's preparation (a pull), which runs in the
// background.
func (m *Manager) Start(spec Spec, endsAt time.Time) error {
	m.mu.Lock()
	if known, ok := m.leases[spec.LeaseID]; ok {
		m.mu.Unlock()
		known.mu.Lock()
		state := known.status.State
		known.mu.Unlock()
		if state != protocol.LeaseStarting && state != protocol.LeaseRunning {
			return fmt.Errorf("lease %s is %s: %w", spec.LeaseID, state, ErrEnded)
		}
		known.extend(m, endsAt)
		return nil
	}
	l := &lease{
		status: protocol.RunningLease{LeaseID: spec.LeaseID, State: protocol.LeaseStarting, GPUs: append([]string(nil), spec.GPUs...), StartedAt: m.now().UnixMilli()},
		done:   make(chan struct{}),
	}
	busy := m.busyLocked()
	m.leases[spec.LeaseID] = l // reserves the GPUs, whatever happens next
	refuse := func(err error) error {
		m.mu.Unlock()
		return m.failed(l, err)
	}
	for _, g := range spec.GPUs {
		if other, ok := busy[g]; ok {
			return refuse(fmt.Errorf("%w: %s is held by lease %s", ErrGPUBusy, g, other))
		}
	}
	var drv Driver
	for _, d := range m.drivers {
		if d.Accepts(spec.Workload) {
			drv = d
			break
		}
	}
	if drv == nil {
		kind := "image"
		if spec.Workload.Command != "" {
			kind = "command (the exec driver is off unless the operator passes --allow-exec)"
		}
		return refuse(fmt.Errorf("%w: %s", ErrNoDriver, kind))
	}
	l.status.Driver = drv.Name()
	m.mu.Unlock()

	l.mu.Lock()
	if !endsAt.IsZero() {
		// From the reservation, not the start: a pull still running when
		// the lease ends is cancelled like a workload.
		l.endsAt = endsAt
		l.timer = time.AfterFunc(endsAt.Sub(m.now()), func() {
			l.emit(m, protocol.StreamSystem, "lease ended: stopping workload")
			_ = m.Stop(spec.LeaseID)
		})
	}
	p, prepares := drv.(Preparer)
	if !prepares {
		l.mu.Unlock()
		return m.launch(l, drv, spec)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	l.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer cancel()
		progress := func(pp protocol.PullProgress) {
			l.mu.Lock()
			l.status.Pull = &pp // a fresh value each time: Leases copies the pointer
			l.mu.Unlock()
			if m.changed != nil {
				m.changed()
			}
		}
		ready, err := p.Prepare(ctx, spec, progress, func(stream, text string) { l.emit(m, stream, text) })
		if err != nil {
			_ = m.failed(l, err)
			return
		}
		_ = m.launch(l, drv, ready)
	}()
	return nil
}

// failed records that l could not start (or, when a stop came first, that
// it was stopped before it started) and releases its GPUs.
func (m *Manager) failed(l *lease, err error) error {
	l.mu.Lock()
	if l.timer != nil {
		l.timer.Stop()
	}
	stopped := l.status.State == protocol.LeaseStopped
	if !stopped {
		l.status.State, l.status.Error = protocol.LeaseFailed, err.Error()
	}
	l.mu.Unlock()
	if stopped {
		l.emit(m, protocol.StreamSystem, "workload stopped before it started")
	} else {
		l.emit(m, protocol.StreamSystem, "workload failed to start: "+err.Error())
	}
	close(l.done)
	return fmt.Errorf("start lease %s: %w", l.status.LeaseID, err)
}

// launch starts l's workload with drv and watches it end. A stop that
// arrived while it was starting stops it at once.
func (m *Manager) launch(l *lease, drv Driver, spec Spec) error {
	l.mu.Lock()
	stopped := l.status.State == protocol.LeaseStopped
	l.mu.Unlock()
	if stopped {
		return m.failed(l, errors.New("stopped"))
	}
	proc, err := drv.Start(context.Background(), spec, func(stream, text string) { l.emit(m, stream, text) })
	if err != nil {
		return m.failed(l, err)
	}
	l.mu.Lock()
	l.proc, l.spec, l.drv = proc, spec, drv
	stopped = l.status.State == protocol.LeaseStopped
	if !stopped {
		l.status.State = protocol.LeaseRunning
	}
	l.mu.Unlock()
	l.emit(m, protocol.StreamSystem, fmt.Sprintf("workload started (driver %s, GPUs %s)", drv.Name(), strings.Join(spec.GPUs, ",")))
	if stopped {
		go func() { _ = proc.Stop(m.grace) }()
	}

	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		code, werr := proc.Wait()
		l.mu.Lock()
		if l.timer != nil {
			l.timer.Stop()
		}
		if l.status.State == protocol.LeaseRunning {
			l.status.State = protocol.LeaseExited
		}
		l.status.ExitCode = &code
		if werr != nil {
			l.status.Error = werr.Error()
		}
		state := l.status.State
		l.mu.Unlock()
		l.emit(m, protocol.StreamSystem, fmt.Sprintf("workload %s, exit code %d", state, code))
		close(l.done)
	}()
	return nil
}

// Fail records a lease that the caller refused to start (for example
// because it names a GPU this machine does not have), so the refusal is
// reported like any other outcome.
func (m *Manager) Fail(spec Spec, reason error) error {
	m.mu.Lock()
	if _, ok := m.leases[spec.LeaseID]; ok {
		m.mu.Unlock()
		return nil
	}
	l := &lease{
		status: protocol.RunningLease{LeaseID: spec.LeaseID, State: protocol.LeaseFailed, GPUs: append([]string(nil), spec.GPUs...), StartedAt: m.now().UnixMilli(), Error: reason.Error()},
		done:   make(chan struct{}),
	}
	close(l.done)
	m.leases[spec.LeaseID] = l
	m.mu.Unlock()
	l.emit(m, protocol.StreamSystem, "workload refused: "+reason.Error())
	return fmt.Errorf("start lease %s: %w", spec.LeaseID, reason)
}

// Stop stops a lease's workload and waits for it to end. Unknown or
// finished leases are a no-op, so a repeated stop is harmless.
func (m *Manager) Stop(leaseID string) error { return m.stopWith(leaseID, m.grace) }

// stopWith is Stop with the time between SIGTERM and SIGKILL.
func (m *Manager) stopWith(leaseID string, grace time.Duration) error {
	m.mu.Lock()
	l, ok := m.leases[leaseID]
	m.mu.Unlock()
	if !ok {
		return nil
	}
	l.mu.Lock()
	proc, cancel := l.proc, l.cancel
	switch {
	case proc != nil && l.status.State == protocol.LeaseRunning:
	case proc == nil && l.status.State == protocol.LeaseStarting:
		// Still preparing (pulling) or starting: the preparation is
		// cancelled, or launch stops what it started.
		l.status.State = protocol.LeaseStopped
		l.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		<-l.done
		return nil
	default:
		l.mu.Unlock()
		return nil
	}
	l.status.State = protocol.LeaseStopped
	l.mu.Unlock()
	l.endShells()
	l.endConns()
	err := proc.Stop(grace)
	<-l.done
	if err != nil {
		return fmt.Errorf("stop lease %s: %w", leaseID, err)
	}
	return nil
}

// Reaper is a driver that can remove the workloads a previous run of the
// agent left that no lease claimed (Docker.Reap).
type Reaper interface {
	Reap(ctx context.Context) (int, error)
}

// Reap asks every driver that keeps a previous run's workloads for
// adoption to remove those no lease claimed; it returns how many went.
func (m *Manager) Reap(ctx context.Context) (int, error) {
	n := 0
	var errs []error
	for _, d := range m.drivers {
		if r, ok := d.(Reaper); ok {
			k, err := r.Reap(ctx)
			n += k
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// StopAll stops every running workload (agent shutdown) and waits.
func (m *Manager) StopAll() {
	m.mu.Lock()
	ids := make([]string, 0, len(m.leases))
	for id := range m.leases {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() { defer wg.Done(); _ = m.Stop(id) }()
	}
	wg.Wait()
	m.wg.Wait()
}

// Live reports a lease's end (zero: none) and GPUs while its workload is
// starting or running and its end has not fired; ok is false otherwise.
// The agent consents to extend only such a lease.
func (m *Manager) Live(leaseID string) (endsAt time.Time, gpus []string, ok bool) {
	m.mu.Lock()
	l, known := m.leases[leaseID]
	m.mu.Unlock()
	if !known {
		return time.Time{}, nil, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.status.State != protocol.LeaseStarting && l.status.State != protocol.LeaseRunning {
		return time.Time{}, nil, false
	}
	if !l.endsAt.IsZero() && !l.endsAt.After(m.now()) {
		return time.Time{}, nil, false // its timer is firing
	}
	return l.endsAt, append([]string(nil), l.status.GPUs...), true
}

// Leases returns every known lease, sorted by id.
func (m *Manager) Leases() []protocol.RunningLease {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]protocol.RunningLease, 0, len(m.leases))
	for _, l := range m.leases {
		l.mu.Lock()
		s := l.status
		s.GPUs = append([]string(nil), s.GPUs...)
		l.mu.Unlock()
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LeaseID < out[j].LeaseID })
	return out
}

// Forget drops finished leases once their outcome has been reported.
// Running leases are kept whatever ids are passed.
func (m *Manager) Forget(reported []protocol.RunningLease) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range reported {
		switch r.State {
		case protocol.LeaseExited, protocol.LeaseStopped, protocol.LeaseFailed:
		default:
			continue
		}
		l, ok := m.leases[r.LeaseID]
		if !ok {
			continue
		}
		select {
		case <-l.done:
			delete(m.leases, r.LeaseID)
		default:
		}
	}
}

// Busy maps each GPU UUID held by a live lease to that lease.
func (m *Manager) Busy() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.busyLocked()
}

func (m *Manager) busyLocked() map[string]string {
	busy := make(map[string]string)
	for id, l := range m.leases {
		select {
		case <-l.done:
			continue
		default:
		}
		for _, g := range l.status.GPUs {
			busy[g] = id
		}
	}
	return busy
}

// Wait returns when a lease has finished (for tests and shutdown).
func (m *Manager) Wait(ctx context.Context, leaseID string) error {
	m.mu.Lock()
	l, ok := m.leases[leaseID]
	m.mu.Unlock()
	if !ok {
		return nil
	}
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
