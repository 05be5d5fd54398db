// Package agent is the provider agent's run loop: heartbeats, the
// assignment long-poll, workload log shipping, latency probes, quote
// signing and the proof hook, each in its own goroutine with its own
// backoff, so a slow or absent marketplace delays reports but never stops
// a running lease. Everything it talks to is injected (Config), so tests
// drive it against an httptest server with mock GPUs.
package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/highway-compute/highway/poc"
	"github.com/highway-compute/highway/protocol"
	"github.com/highway-compute/highway/provider-agent/client"
	"github.com/highway-compute/highway/provider-agent/gpu"
	"github.com/highway-compute/highway/provider-agent/metrics"
	"github.com/highway-compute/highway/provider-agent/prover"
	"github.com/highway-compute/highway/provider-agent/runner"
)

// API is the marketplace as the agent sees it; *client.Client implements it.
type API interface {
	Heartbeat(ctx context.Context, hb protocol.Heartbeat) (protocol.HeartbeatResponse, error)
	Assignments(ctx context.Context, after uint64, wait time.Duration) (protocol.AssignmentsResponse, error)
	SendLogs(ctx context.Context, b protocol.LogBatch) error
	SendQuote(ctx context.Context, r protocol.QuoteResponse) error
	SendVerification(ctx context.Context, r protocol.VerificationResponse) error
}

// GPUSource takes GPU snapshots; *gpu.Session implements it.
type GPUSource interface {
	Snapshot() (gpu.Inventory, error)
}

// Prober measures region RTTs; *probe.Prober implements it.
type Prober interface {
	MeasureAll(ctx context.Context, regions []protocol.Region) (map[string]int64, map[string]error)
}

// QuoteSigner signs a price quote with the provider's secp256k1 chain key
// (chain/x/escrow/types.SignQuote), filling in PubKey and Signature. The
// chain side plugs it in; the agent itself never imports the Cosmos SDK.
type QuoteSigner interface {
	SignQuote(ctx context.Context, chainID string, q protocol.Quote) (protocol.Quote, error)
}

// ProofSource yields the epochs to prove: the chain follower watches the
// agent's leases and sends a Job when an epoch's proof window opens. The
// channel closes when ctx ends.
type ProofSource interface {
	Jobs(ctx context.Context) <-chan prover.Job
}

// Prover proves one epoch; *prover.Local implements it.
type Prover interface {
	Prove(ctx context.Context, job prover.Job) (prover.Result, error)
}

// ProofSubmitter sends MsgSubmitProof with the provider's own key. The
// chain takes one proof per epoch and judges it a few blocks after it
// lands: Submit returns once it landed, Verdict waits for the judgment.
type ProofSubmitter interface {
	Submit(ctx context.Context, job prover.Job, res prover.Result) (prover.Submitted, error)
	Verdict(ctx context.Context, job prover.Job, sub prover.Submitted) (prover.Verdict, error)
}

// Config is everything the agent needs. API, GPUs and AgentID are required;
// nil hooks disable their loop (no Prober: no RTTs; no QuoteSigner: quote
// requests are answered with an error; no ProofSource: no proving).
type Config struct {
	AgentID string
	Version string
	// ProviderAddress is the chain address of the provider key (reported
	// with heartbeats so the marketplace can ask for quotes under it).
	ProviderAddress string
	API             API
	GPUs            GPUSource
	Drivers         []runner.Driver
	Prober          Prober
	Regions         []protocol.Region
	Quotes          QuoteSigner
	Proofs          ProofSource
	Prover          Prover
	Submitter       ProofSubmitter
	Metrics         *metrics.Metrics
	Logger          *slog.Logger

	HeartbeatInterval time.Duration // default 10 s
	ProbeInterval     time.Duration // default 5 min
	PollWait          time.Duration // long-poll wait, default 25 s
	LogFlush          time.Duration // default 1 s
	StopGrace         time.Duration // SIGTERM → SIGKILL, default 10 s
	MaxQuoteTTL       time.Duration // refuse quotes valid longer, default 10 min
	Extensions        ExtendPolicy
	Backoff           client.Backoff
	Now               func() time.Time
}

// ExtendPolicy is the operator's consent to extensions of the leases the
// machine runs: the agent signs an extension quote only within it.
type ExtendPolicy struct {
	// Refuse signs no extension (ahead of maintenance: the leases run to
	// their end and the machine is then free).
	Refuse bool
	// MaxEpochs bounds one extension; 0 leaves it to the chain's
	// max_epochs_per_lease.
	MaxEpochs uint64
	// MinLead refuses to extend a lease ending sooner (default 30 s): the
	// extension must reach the runner before the lease's timer stops the
	// workload, or the buyer would pay for epochs with nothing running.
	MinLead time.Duration
}

// Agent is a running provider agent. Create it with New, run it with Run.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	runner *runner.Manager
	bootID string
	seq    atomic.Uint64

	mu        sync.Mutex
	interval  time.Duration
	regions   []protocol.Region
	rtt       map[string]int64
	inventory gpu.Inventory
	haveInv   bool

	// beatNow wakes the heartbeat loop when the RTTs changed, and
	// probeNow the probe loop when the regions did: a machine's first
	// beats would otherwise list it with no latency until the next
	// interval (a buyer's max_rtt_ms then rules it out), and new regions
	// would wait for the 5-minute probe. Both hold one pending wake-up.
	beatNow, probeNow chan struct{}

	logs *logBuffer

	// Leases this agent proves for: the chain follower reports every
	// lease of the provider's address, and a provider with several
	// machines shares that address. A lease is this machine's when the
	// agent signed its quote (nonce) or was assigned it (chain id, which
	// also covers a restart, as active leases are assigned again).
	ownMu     sync.Mutex
	ownNonces map[uint64]bool
	ownLeases map[string]bool
	// leaseOf maps a chain lease id to the marketplace lease the runner
	// knows it by, for extension quotes.
	leaseOf map[uint64]string

	// proving counts the epochs being proved, submitted and judged.
	proving sync.WaitGroup
}

// New checks cfg and fills in defaults.
func New(cfg Config) (*Agent, error) {
	switch {
	case cfg.AgentID == "":
		return nil, errors.New("agent: AgentID is required (enroll first)")
	case cfg.API == nil:
		return nil, errors.New("agent: API is required")
	case cfg.GPUs == nil:
		return nil, errors.New("agent: GPUs is required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.HeartbeatInterval, 10*time.Second)
	def(&cfg.ProbeInterval, 5*time.Minute)
	def(&cfg.PollWait, 25*time.Second)
	def(&cfg.LogFlush, time.Second)
	def(&cfg.StopGrace, 10*time.Second)
	def(&cfg.MaxQuoteTTL, 10*time.Minute)
	def(&cfg.Extensions.MinLead, 30*time.Second)
	if cfg.Backoff.Base <= 0 {
		cfg.Backoff = client.DefaultBackoff()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("agent: boot id: %w", err)
	}
	a := &Agent{
		cfg:      cfg,
		log:      cfg.Logger,
		bootID:   hex.EncodeToString(b[:]),
		interval: cfg.HeartbeatInterval,
		regions:  append([]protocol.Region(nil), cfg.Regions...),
		logs:     newLogBuffer(50_000),
		beatNow:  make(chan struct{}, 1), probeNow: make(chan struct{}, 1),
		ownNonces: map[uint64]bool{}, ownLeases: map[string]bool{}, leaseOf: map[uint64]string{},
	}
	a.runner = runner.NewManager(cfg.Drivers, a.logs.add, cfg.StopGrace, cfg.Now)
	// A pull's progress goes out before the next 10-second beat, so the
	// lease page's bar moves; at most one early beat a second.
	var lastEarly atomic.Int64
	a.runner.OnChange(func() {
		now := time.Now().UnixMilli()
		if last := lastEarly.Load(); now-last >= 1000 && lastEarly.CompareAndSwap(last, now) {
			wake(a.beatNow)
		}
	})
	return a, nil
}

// Runner exposes the workload manager (for status output and tests).
func (a *Agent) Runner() *runner.Manager { return a.runner }

// Run runs every loop until ctx ends, then stops the workloads (an agent
// that is not running cannot report on them or prove for them), makes a
// last attempt to ship their logs, and returns. No request is sent after
// Run returns.
func (a *Agent) Run(ctx context.Context) error {
	a.log.Info("agent starting", "agent_id", a.cfg.AgentID, "boot_id", a.bootID, "drivers", a.runner.Drivers())
	var wg sync.WaitGroup
	loops := []func(context.Context){a.heartbeatLoop, a.pollLoop, a.logLoop}
	if a.cfg.Prober != nil {
		loops = append(loops, a.probeLoop)
	}
	if a.cfg.Proofs != nil && a.cfg.Prover != nil {
		loops = append(loops, a.proofLoop)
	}
	for _, loop := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop(ctx)
		}()
	}
	wg.Wait()
	a.runner.StopAll()
	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	_ = a.flushLogs(flushCtx)
	a.log.Info("agent stopped")
	return nil
}

// sleep waits d or until ctx ends; it reports whether to go on.
func sleep(ctx context.Context, d time.Duration) bool {
	return sleepOrWake(ctx, d, nil)
}

// sleepOrWake is sleep that also ends early on a wake-up.
func sleepOrWake(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	case <-wake:
		return true
	}
}

// wake leaves a wake-up for a loop; one is enough, so a second is dropped.
func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// snapshot reads the GPUs and marks which are leased.
func (a *Agent) snapshot() (gpu.Inventory, error) {
	inv, err := a.cfg.GPUs.Snapshot()
	if err != nil {
		return gpu.Inventory{}, err
	}
	busy := a.runner.Busy()
	for i := range inv.GPUs {
		if lease, ok := busy[inv.GPUs[i].UUID]; ok {
			inv.GPUs[i].Free, inv.GPUs[i].LeaseID = false, lease
		}
	}
	a.mu.Lock()
	a.inventory, a.haveInv = inv, true
	a.mu.Unlock()
	return inv, nil
}

// Heartbeat builds the next heartbeat (exported for tests and the status
// command). A GPU read failure is reported honestly: the beat carries no
// GPUs, so the marketplace stops offering them, and the error is logged.
func (a *Agent) Heartbeat() protocol.Heartbeat {
	inv, err := a.snapshot()
	if err != nil {
		a.log.Error("GPU snapshot failed; reporting no GPUs", "err", err)
	}
	a.mu.Lock()
	rtt := make(map[string]int64, len(a.rtt))
	for k, v := range a.rtt {
		rtt[k] = v
	}
	a.mu.Unlock()
	leases := a.runner.Leases()
	if len(leases) > protocol.MaxLeases {
		leases = leases[:protocol.MaxLeases]
	}
	hb := protocol.Heartbeat{
		AgentID: a.cfg.AgentID, Seq: a.seq.Add(1), BootID: a.bootID, SentAt: a.cfg.Now().UnixMilli(),
		AgentVersion: a.cfg.Version, DriverVersion: inv.DriverVersion, CUDAVersion: inv.CUDAVersion,
		Simulated: inv.Simulated, GPUs: inv.GPUs, RTTms: rtt, Leases: leases, ProviderAddress: a.cfg.ProviderAddress,
	}
	if hb.GPUs == nil {
		hb.GPUs = []protocol.GPU{}
	}
	if hb.Leases == nil {
		hb.Leases = []protocol.RunningLease{}
	}
	return hb
}

func (a *Agent) heartbeatLoop(ctx context.Context) {
	r := a.retry("heartbeat")
	for {
		hb := a.Heartbeat()
		if m := a.cfg.Metrics; m != nil {
			m.ObserveGPUs(hb.GPUs)
			m.ObserveLeases(hb.Leases)
		}
		start := time.Now()
		resp, err := a.cfg.API.Heartbeat(ctx, hb)
		if ctx.Err() != nil {
			return
		}
		var wait time.Duration
		if err != nil {
			if m := a.cfg.Metrics; m != nil {
				m.HeartbeatFailures.Inc()
			}
			wait = r.failed(ctx, err, "seq", hb.Seq)
		} else {
			r.ok()
			if m := a.cfg.Metrics; m != nil {
				m.HeartbeatLatency.Observe(time.Since(start).Seconds())
				m.HeartbeatsSent.Inc()
				m.LastHeartbeat.Set(float64(a.cfg.Now().Unix()))
			}
			a.runner.Forget(hb.Leases) // finished leases have been reported
			wait = a.apply(resp)
		}
		if !sleepOrWake(ctx, wait, a.beatNow) {
			return
		}
	}
}

// apply takes in what a heartbeat response changes and returns the
// interval to the next beat.
func (a *Agent) apply(resp protocol.HeartbeatResponse) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	if resp.HeartbeatIntervalS > 0 {
		a.interval = time.Duration(resp.HeartbeatIntervalS) * time.Second
	}
	if len(resp.Regions) > 0 && !slices.Equal(resp.Regions, a.regions) {
		a.regions = resp.Regions
		wake(a.probeNow)
	}
	if resp.ServerTime > 0 {
		skew := a.cfg.Now().Sub(time.UnixMilli(resp.ServerTime))
		if skew > 30*time.Second || skew < -30*time.Second {
			a.log.Warn("clock differs from the marketplace's; signed requests fail beyond 60 s: check NTP", "skew", skew.Round(time.Second))
		}
	}
	return a.interval
}

func (a *Agent) probeLoop(ctx context.Context) {
	for {
		// This round probes the regions as they are now, so a wake-up
		// left before it is spent (one that arrives after the read below
		// brings the next round).
		select {
		case <-a.probeNow:
		default:
		}
		a.mu.Lock()
		regions := append([]protocol.Region(nil), a.regions...)
		a.mu.Unlock()
		if len(regions) > 0 {
			rtt, errs := a.cfg.Prober.MeasureAll(ctx, regions)
			for region, err := range errs {
				a.log.Warn("latency probe failed", "region", region, "err", err)
			}
			a.mu.Lock()
			changed := !maps.Equal(a.rtt, rtt)
			a.rtt = rtt
			a.mu.Unlock()
			if changed {
				wake(a.beatNow)
			}
			if m := a.cfg.Metrics; m != nil {
				m.ObserveRTT(rtt)
			}
		}
		if !sleepOrWake(ctx, a.cfg.ProbeInterval, a.probeNow) {
			return
		}
	}
}

// RTT returns the latest probe results.
func (a *Agent) RTT() map[string]int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]int64, len(a.rtt))
	for k, v := range a.rtt {
		out[k] = v
	}
	return out
}

func (a *Agent) pollLoop(ctx context.Context) {
	var after uint64
	r := a.retry("assignment poll")
	reaped := false
	for {
		resp, err := a.cfg.API.Assignments(ctx, after, a.cfg.PollWait)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if !sleep(ctx, r.failed(ctx, err)) {
				return
			}
			continue
		}
		r.ok()
		for _, as := range resp.Assignments {
			if as.ID <= after {
				continue // delivered twice
			}
			a.assign(ctx, as)
			after = as.ID
		}
		for _, qr := range resp.QuoteRequests {
			a.quote(ctx, qr)
		}
		if !reaped && len(resp.Assignments) == 0 {
			// Caught up: every live lease has been handed out again, and
			// its container, if a previous run left one, adopted. What
			// no lease claimed belongs to leases that ended meanwhile.
			reaped = true
			if n, err := a.runner.Reap(ctx); err != nil {
				a.log.Warn("removing containers no lease claimed", "removed", n, "err", err)
			} else if n > 0 {
				a.log.Info("removed containers of leases that ended while the agent was down", "count", n)
			}
		}
	}
}

// assign applies one assignment. Failures are recorded on the lease and
// reported with the next heartbeat; they never stop the loop.
func (a *Agent) assign(ctx context.Context, as protocol.Assignment) {
	switch as.Action {
	case protocol.ActionVerify:
		// Proving takes the challenge's work time: off the poll loop, so
		// a stop that arrives meanwhile is not delayed.
		go a.verify(ctx, as)
	case protocol.ActionStop:
		a.log.Info("stopping lease", "lease", as.LeaseID)
		if err := a.runner.Stop(as.LeaseID); err != nil {
			a.log.Error("stop lease", "lease", as.LeaseID, "err", err)
		}
	case protocol.ActionShell:
		go a.shell(ctx, as)
	case protocol.ActionForward:
		go a.forward(ctx, as)
	case protocol.ActionPreempt:
		at := time.UnixMilli(as.PreemptAt)
		a.log.Info("preemption notice", "lease", as.LeaseID, "stop_at", at)
		a.runner.Preempt(as.LeaseID, at)
	case protocol.ActionStart:
		spec := runner.Spec{LeaseID: as.LeaseID, GPUs: as.GPUs, Workload: as.Workload}
		if err := a.checkGPUs(as.GPUs); err != nil {
			_ = a.runner.Fail(spec, err)
			a.log.Error("refusing lease", "lease", as.LeaseID, "err", err)
			return
		}
		var endsAt time.Time
		if as.EndsAt > 0 {
			endsAt = time.UnixMilli(as.EndsAt)
		}
		if as.ChainLeaseID != 0 {
			a.ownMu.Lock()
			a.ownLeases[strconv.FormatUint(as.ChainLeaseID, 10)] = true
			a.leaseOf[as.ChainLeaseID] = as.LeaseID
			a.ownMu.Unlock()
		}
		a.log.Info("starting lease", "lease", as.LeaseID, "gpus", as.GPUs)
		if err := a.runner.Start(spec, endsAt); err != nil {
			a.log.Error("start lease", "lease", as.LeaseID, "err", err)
		}
	}
	_ = ctx
}

// verify proves a verification challenge and sends the proof. Without a
// configured prover it uses the local CPU one: verification must work on a
// freshly enrolled machine before anything else is set up.
func (a *Agent) verify(ctx context.Context, as protocol.Assignment) {
	v := as.Verify
	resp := protocol.VerificationResponse{AssignmentID: as.ID}
	var p Prover = &prover.Local{}
	if a.cfg.Prover != nil {
		p = a.cfg.Prover
	}
	seed, _ := hex.DecodeString(v.Seed) // validated with the assignment
	job := prover.Job{LeaseID: "verify", Params: v.Params, Target: poc.Target{Difficulty: v.Difficulty, Required: v.Required},
		Deadline: a.cfg.Now().Add(time.Duration(v.WorkSeconds) * time.Second)}
	copy(job.Seed[:], seed)
	// The challenge is one GPU's work, and what the proof finds is the
	// machine's measured rate per GPU: a GPU prover proves it on one.
	if inv, err := a.snapshot(); err == nil && len(inv.GPUs) > 0 {
		job.GPUs = []string{inv.GPUs[0].UUID}
	}
	a.log.Info("proving verification challenge", "assignment", as.ID, "work_seconds", v.WorkSeconds)
	res, err := p.Prove(ctx, job)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		resp.Error = err.Error()
		a.log.Warn("verification proof failed", "nonces", res.Nonces, "err", err)
	} else {
		resp.Proof = res.Proof
		a.log.Info("verification proof done", "nonces", res.Nonces, "evaluated", res.Evaluated)
	}
	if err := a.cfg.API.SendVerification(ctx, resp); err != nil {
		a.log.Warn("sending verification failed", "err", err)
	}
}

// checkGPUs refuses assignments naming GPUs this machine does not have:
// a buyer must get exactly the hardware the lease names.
func (a *Agent) checkGPUs(uuids []string) error {
	inv, err := a.snapshot()
	if err != nil {
		return fmt.Errorf("read GPUs: %w", err)
	}
	have := make(map[string]bool, len(inv.GPUs))
	for _, g := range inv.GPUs {
		have[g.UUID] = true
	}
	for _, u := range uuids {
		if !have[u] {
			return fmt.Errorf("GPU %s is not on this machine", u)
		}
	}
	return nil
}

// quote answers a quote request. Before asking the signer it checks the
// request against the machine: the class must be one it has, with that
// many GPUs free now, and the quote must expire soon. The price comes from
// the marketplace (the provider's console settings); the chain still
// enforces that only this provider's key can bind it.
func (a *Agent) quote(ctx context.Context, qr protocol.QuoteRequest) {
	resp := protocol.QuoteResponse{RequestID: qr.RequestID}
	signed, err := a.signQuote(ctx, qr)
	if err != nil {
		resp.Error = err.Error()
		a.log.Warn("quote refused", "request", qr.RequestID, "err", err)
	} else {
		resp.Quote = &signed
	}
	if err := a.cfg.API.SendQuote(ctx, resp); err != nil {
		a.log.Warn("sending quote failed", "request", qr.RequestID, "err", err)
	}
}

func (a *Agent) signQuote(ctx context.Context, qr protocol.QuoteRequest) (protocol.Quote, error) {
	if a.cfg.Quotes == nil {
		return protocol.Quote{}, errors.New("quote signing is not configured on this agent")
	}
	now := a.cfg.Now()
	exp := time.Unix(qr.Quote.ExpiresAt, 0)
	if !exp.After(now) {
		return protocol.Quote{}, errors.New("quote already expired")
	}
	if exp.Sub(now) > a.cfg.MaxQuoteTTL {
		return protocol.Quote{}, fmt.Errorf("quote expiry %s is beyond the agent's limit of %s", exp.Sub(now).Round(time.Second), a.cfg.MaxQuoteTTL)
	}
	if qr.Quote.ExtendsLease != 0 {
		if err := a.mayExtend(qr.Quote, now); err != nil {
			return protocol.Quote{}, err
		}
		return a.sign(ctx, qr)
	}
	inv, err := a.snapshot()
	if err != nil {
		return protocol.Quote{}, fmt.Errorf("read GPUs: %w", err)
	}
	free := 0
	for _, g := range inv.GPUs {
		if g.Class == qr.Quote.GPUClass && g.Free {
			free++
		}
	}
	if uint32(free) < qr.Quote.GPUs {
		return protocol.Quote{}, fmt.Errorf("%d free %s GPUs, quote asks for %d", free, qr.Quote.GPUClass, qr.Quote.GPUs)
	}
	return a.sign(ctx, qr)
}

// mayExtend decides whether the agent consents to an extension quote. An
// extension keeps the lease's own GPUs, which are busy with it: the agent
// signs only for a lease whose workload it is running, not about to end,
// on as many GPUs of the quoted class as the quote names, and within the
// operator's policy. The price is the lease's own: the chain refuses any
// other.
func (a *Agent) mayExtend(q protocol.Quote, now time.Time) error {
	pol := a.cfg.Extensions
	if pol.Refuse {
		return errors.New("this provider is not extending leases now")
	}
	if pol.MaxEpochs > 0 && q.Epochs > pol.MaxEpochs {
		return fmt.Errorf("this provider extends by at most %d epochs at a time", pol.MaxEpochs)
	}
	a.ownMu.Lock()
	leaseID, mine := a.leaseOf[q.ExtendsLease]
	a.ownMu.Unlock()
	if !mine {
		return fmt.Errorf("lease %d does not run on this machine", q.ExtendsLease)
	}
	endsAt, gpus, live := a.runner.Live(leaseID)
	if !live {
		return fmt.Errorf("lease %d's workload is not running here", q.ExtendsLease)
	}
	if !endsAt.IsZero() && endsAt.Sub(now) < pol.MinLead {
		return fmt.Errorf("lease %d ends in under %s", q.ExtendsLease, pol.MinLead)
	}
	if uint32(len(gpus)) != q.GPUs {
		return fmt.Errorf("lease %d runs on %d GPUs, the quote names %d", q.ExtendsLease, len(gpus), q.GPUs)
	}
	inv, err := a.snapshot()
	if err != nil {
		return fmt.Errorf("read GPUs: %w", err)
	}
	class := map[string]string{}
	for _, g := range inv.GPUs {
		class[g.UUID] = g.Class
	}
	for _, u := range gpus {
		if class[u] != q.GPUClass {
			return fmt.Errorf("lease %d's GPU %s is not a %s", q.ExtendsLease, u, q.GPUClass)
		}
	}
	return nil
}

// sign signs a checked quote request and remembers its nonce, so the
// lease it creates is proven here.
func (a *Agent) sign(ctx context.Context, qr protocol.QuoteRequest) (protocol.Quote, error) {
	q := qr.Quote
	q.PubKey, q.Signature = nil, nil
	signed, err := a.cfg.Quotes.SignQuote(ctx, qr.ChainID, q)
	if err != nil {
		return protocol.Quote{}, fmt.Errorf("sign quote: %w", err)
	}
	a.ownMu.Lock()
	a.ownNonces[q.Nonce] = true
	a.ownMu.Unlock()
	return signed, nil
}

// proofLoop proves each epoch the follower reports, each in its own
// goroutine: every lease's proof must run for its work window from the
// moment its seed exists, so a machine with several leases proves them
// side by side (each on its own GPUs), never one after another, which
// would make every lease but the first late.
func (a *Agent) proofLoop(ctx context.Context) {
	for job := range a.cfg.Proofs.Jobs(ctx) {
		a.ownMu.Lock()
		mine := a.ownNonces[job.QuoteNonce] || a.ownLeases[job.LeaseID]
		a.ownMu.Unlock()
		if !mine {
			a.log.Debug("not proving another machine's lease", "lease", job.LeaseID, "epoch", job.Epoch)
			continue
		}
		a.proving.Add(1)
		go func() {
			defer a.proving.Done()
			a.proveEpoch(ctx, job)
		}()
	}
	a.proving.Wait()
}

// proveEpoch proves one epoch, submits it and waits for its verdict.
func (a *Agent) proveEpoch(ctx context.Context, job prover.Job) {
	job.GPUs = a.leaseGPUs(job)
	resume := a.pauseFor(job)
	res, err := a.cfg.Prover.Prove(ctx, job)
	resume()
	if ctx.Err() != nil {
		return
	}
	m := a.cfg.Metrics
	if err != nil {
		if m != nil {
			m.ProofsFailed.Inc()
		}
		a.log.Error("proof failed", "lease", job.LeaseID, "epoch", job.Epoch, "nonces", res.Nonces, "err", err)
		return
	}
	if a.cfg.Submitter == nil {
		a.log.Warn("proof ready but no submitter configured", "lease", job.LeaseID, "epoch", job.Epoch)
		return
	}
	sub, err := a.cfg.Submitter.Submit(ctx, job, res)
	switch {
	case err != nil:
		if m != nil {
			m.ProofsFailed.Inc()
		}
		a.log.Error("proof submission failed", "lease", job.LeaseID, "epoch", job.Epoch, "err", err)
	case sub.Missed:
		if m != nil {
			m.ProofsSubmitted.Inc()
			m.ProofsFailed.Inc()
		}
		a.log.Error("proof refused on arrival: epoch missed", "lease", job.LeaseID, "epoch", job.Epoch, "reason", sub.Reason)
	default:
		if m != nil {
			m.ProofsSubmitted.Inc()
		}
		a.log.Info("proof submitted", "lease", job.LeaseID, "epoch", job.Epoch, "nonces", res.Nonces,
			"height", sub.Height, "judge_height", sub.JudgeHeight)
		a.awaitVerdict(ctx, job, sub)
	}
}

// awaitVerdict logs and counts an epoch's verdict.
func (a *Agent) awaitVerdict(ctx context.Context, job prover.Job, sub prover.Submitted) {
	v, err := a.cfg.Submitter.Verdict(ctx, job, sub)
	if ctx.Err() != nil {
		return
	}
	m := a.cfg.Metrics
	switch {
	case err != nil:
		a.log.Warn("no verdict for the proof", "lease", job.LeaseID, "epoch", job.Epoch, "err", err)
	case v.Cleared:
		if m != nil {
			m.ProofsCleared.Inc()
		}
		a.log.Info("epoch cleared", "lease", job.LeaseID, "epoch", job.Epoch)
	default:
		if m != nil {
			m.ProofsFailed.Inc()
		}
		a.log.Error("proof rejected: epoch missed", "lease", job.LeaseID, "epoch", job.Epoch, "reason", v.Reason)
	}
}
