package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/highway-compute/highway/protocol"
	"github.com/highway-compute/highway/provider-agent/client"
	"github.com/highway-compute/highway/provider-agent/gpu"
	"github.com/highway-compute/highway/provider-agent/metrics"
	"github.com/highway-compute/highway/provider-agent/probe"
	"github.com/highway-compute/highway/provider-agent/prover"
	"github.com/highway-compute/highway/provider-agent/runner"
	"github.com/highway-compute/highway/provider-agent/state"
)

// market is a fake marketplace: the server side of the agent protocol,
// built only from protocol's pieces, as the real gin handlers will be.
type market struct {
	t        *testing.T
	verifier *protocol.Verifier
	probe    string

	mu          sync.Mutex
	keys        map[string]ed25519.PublicKey
	beats       []protocol.Heartbeat
	lastBeat    *protocol.Heartbeat
	fail503     int // answer this many next heartbeats with 503
	failed      int
	assignments []protocol.Assignment
	quoteReqs   []protocol.QuoteRequest
	quotes      []protocol.QuoteResponse
	logs        map[string][]protocol.LogLine
	rawBeat     *capturedRequest
	rejections  []string
}

type capturedRequest struct {
	header http.Header
	body   []byte
	uri    string
}

func newMarket(t *testing.T, probeAddr string) (*market, *httptest.Server) {
	m := &market{t: t, probe: probeAddr, keys: map[string]ed25519.PublicKey{}, logs: map[string][]protocol.LogLine{}}
	m.verifier = &protocol.Verifier{
		Keys: protocol.KeyStoreFunc(func(_ context.Context, id string) (ed25519.PublicKey, error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			k, ok := m.keys[id]
			if !ok {
				return nil, protocol.ErrUnknownAgent
			}
			return k, nil
		}),
		Nonces: protocol.NewMemoryNonceStore(10_000),
	}
	srv := httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(srv.Close)
	return m, srv
}

func (m *market) reject(w http.ResponseWriter, err error) {
	m.mu.Lock()
	m.rejections = append(m.rejections, err.Error())
	m.mu.Unlock()
	protocol.WriteError(w, err)
}

func (m *market) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == protocol.PathRegister {
		body, _ := io.ReadAll(r.Body)
		req, err := protocol.DecodeRegisterRequest(body)
		if err != nil {
			m.reject(w, err)
			return
		}
		if req.Token != "tok-123" {
			m.reject(w, &protocol.Error{Kind: protocol.ErrInvalid, Field: "token", Msg: "unknown or used token"})
			return
		}
		pub, _ := protocol.DecodePublicKey(req.PublicKey)
		m.mu.Lock()
		m.keys["agent-1"] = pub
		m.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(protocol.RegisterResponse{AgentID: "agent-1", MachineID: "m-1", HeartbeatIntervalS: 10,
			Regions: []protocol.Region{{ID: "local", ProbeAddr: m.probe}}})
		return
	}
	switch r.URL.Path {
	case protocol.PathHeartbeat:
		raw, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(raw))
		m.mu.Lock()
		if m.fail503 > 0 {
			m.fail503--
			m.failed++
			m.mu.Unlock()
			http.Error(w, `{"error":{"code":"internal","message":"maintenance"}}`, http.StatusServiceUnavailable)
			return
		}
		m.mu.Unlock()
		vr, hb, err := m.verifier.VerifyHeartbeat(r)
		if err != nil {
			m.reject(w, err)
			return
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		if err := protocol.CheckContinuity(m.lastBeat, &hb); err != nil {
			m.rejections = append(m.rejections, err.Error())
			protocol.WriteError(w, err)
			return
		}
		m.lastBeat = &hb
		m.beats = append(m.beats, hb)
		m.rawBeat = &capturedRequest{header: r.Header.Clone(), body: vr.Body, uri: r.RequestURI}
		_ = json.NewEncoder(w).Encode(protocol.HeartbeatResponse{ServerTime: time.Now().UnixMilli()})
	case protocol.PathAssignments:
		if _, err := m.verifier.Verify(r); err != nil {
			m.reject(w, err)
			return
		}
		var after uint64
		_, _ = fmt.Sscan(r.URL.Query().Get("after"), &after)
		deadline := time.Now().Add(100 * time.Millisecond)
		for {
			m.mu.Lock()
			var resp protocol.AssignmentsResponse
			for _, a := range m.assignments {
				if a.ID > after {
					resp.Assignments = append(resp.Assignments, a)
				}
			}
			resp.QuoteRequests, m.quoteReqs = m.quoteReqs, nil
			m.mu.Unlock()
			if len(resp.Assignments) > 0 || len(resp.QuoteRequests) > 0 || time.Now().After(deadline) || r.Context().Err() != nil {
				_ = json.NewEncoder(w).Encode(resp)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	case protocol.PathLogs:
		vr, err := m.verifier.Verify(r)
		if err != nil {
			m.reject(w, err)
			return
		}
		b, err := protocol.DecodeLogBatch(vr.Body)
		if err != nil {
			m.reject(w, err)
			return
		}
		m.mu.Lock()
		m.logs[b.LeaseID] = append(m.logs[b.LeaseID], b.Lines...)
		m.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case protocol.PathQuotes:
		vr, err := m.verifier.Verify(r)
		if err != nil {
			m.reject(w, err)
			return
		}
		q, err := protocol.DecodeQuoteResponse(vr.Body)
		if err != nil {
			m.reject(w, err)
			return
		}
		m.mu.Lock()
		m.quotes = append(m.quotes, q)
		m.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}

func (m *market) numBeats() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.beats)
}

func (m *market) last() protocol.Heartbeat {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.beats[len(m.beats)-1]
}

func (m *market) logText(lease string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	for _, l := range m.logs[lease] {
		b.WriteString(l.Text + "\n")
	}
	return b.String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

type fakeSigner struct{}

func (fakeSigner) SignQuote(_ context.Context, chainID string, q protocol.Quote) (protocol.Quote, error) {
	q.PubKey = bytes.Repeat([]byte{2}, 33)
	q.Signature = []byte("sig:" + chainID)
	return q, nil
}

func probeListener(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	return ln.Addr().String()
}

// TestAgentEndToEnd: enroll, beats with the mock GPUs, a lease's whole life
// with its logs, a quote, an outage with backoff and recovery, replayed and
// forged requests rejected, and silence after the agent stops.
func TestAgentEndToEnd(t *testing.T) {
	mk, srv := newMarket(t, probeListener(t))
	fake, err := gpu.FakeProfile("dgxh100")
	if err != nil {
		t.Fatal(err)
	}
	sess, err := gpu.Open(fake)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sess.Close() }()
	inv, err := sess.Snapshot()
	if err != nil {
		t.Fatal(err)
	}

	// Enroll: wrong token refused, right token stores key and state.
	dir := state.Dir{Path: t.TempDir() + "/state"}
	api := &client.Client{BaseURL: srv.URL, UserAgent: "provider-agent/test"}
	ctx := context.Background()
	if _, err := Enroll(ctx, api, dir, EnrollRequest{ServerURL: srv.URL, Token: "wrong", Hostname: "gpu-box", Version: "test", Inventory: inv}); err == nil {
		t.Fatal("bad token enrolled")
	}
	st, err := Enroll(ctx, api, dir, EnrollRequest{ServerURL: srv.URL, Token: "tok-123", Hostname: "gpu-box", Version: "test", Inventory: inv})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Enroll(ctx, api, dir, EnrollRequest{ServerURL: srv.URL, Token: "tok-123", Hostname: "gpu-box", Version: "test", Inventory: inv}); !errors.Is(err, state.ErrAlreadyEnrolled) {
		t.Fatalf("second enroll: %v", err)
	}
	key, err := dir.LoadKey()
	if err != nil {
		t.Fatal(err)
	}
	api.Signer = &protocol.Signer{AgentID: st.AgentID, Key: key}

	met := metrics.New("test", true)
	a, err := New(Config{
		AgentID: st.AgentID, Version: "test", API: api, GPUs: sess,
		Drivers: []runner.Driver{&runner.Exec{}}, Prober: &probe.Prober{Tries: 3}, Regions: st.Regions,
		Quotes: fakeSigner{}, Metrics: met,
		HeartbeatInterval: 20 * time.Millisecond, PollWait: time.Second, LogFlush: 20 * time.Millisecond,
		StopGrace: time.Second, Backoff: client.Backoff{Base: 5 * time.Millisecond, Max: 40 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()

	// Beats arrive with the 8 mock H100s, marked simulated, with an RTT.
	waitFor(t, "beats with RTT", func() bool {
		return mk.numBeats() >= 3 && mk.last().RTTms["local"] >= 1
	})
	hb := mk.last()
	if len(hb.GPUs) != 8 || !hb.Simulated || hb.GPUs[0].Class != "H100" || hb.DriverVersion != "550.54.15" || !hb.GPUs[0].Free {
		t.Fatalf("heartbeat %+v", hb)
	}

	// A lease starts on GPU 0; a second one names a GPU we do not have.
	gpu0 := hb.GPUs[0].UUID
	mk.mu.Lock()
	mk.assignments = append(mk.assignments,
		protocol.Assignment{ID: 1, LeaseID: "lease-1", Action: protocol.ActionStart, GPUs: []string{gpu0}, Workload: protocol.Workload{Command: `echo "hello from $CUDA_VISIBLE_DEVICES"; sleep 30`}},
		protocol.Assignment{ID: 2, LeaseID: "lease-2", Action: protocol.ActionStart, GPUs: []string{"GPU-not-here"}, Workload: protocol.Workload{Command: "true"}},
	)
	mk.quoteReqs = append(mk.quoteReqs,
		protocol.QuoteRequest{RequestID: "q1", ChainID: "highway-1", Quote: protocol.Quote{Provider: "hwy1p", Buyer: "hwy1b", GPUClass: "H100", GPUs: 4, PricePerEpoch: "1000", Epochs: 10, ExpiresAt: time.Now().Add(5 * time.Minute).Unix(), Nonce: 1}},
		protocol.QuoteRequest{RequestID: "q2", ChainID: "highway-1", Quote: protocol.Quote{Provider: "hwy1p", Buyer: "hwy1b", GPUClass: "B200", GPUs: 1, PricePerEpoch: "1000", Epochs: 10, ExpiresAt: time.Now().Add(5 * time.Minute).Unix(), Nonce: 2}},
	)
	mk.mu.Unlock()
	waitFor(t, "lease running in a beat", func() bool {
		h := mk.last()
		return len(h.Leases) == 2 && h.Leases[0].State == protocol.LeaseRunning && !h.GPUs[0].Free && h.GPUs[0].LeaseID == "lease-1"
	})
	if l2 := mk.last().Leases[1]; l2.State != protocol.LeaseFailed || !strings.Contains(l2.Error, "not on this machine") {
		t.Fatalf("lease-2 %+v", l2)
	}
	waitFor(t, "workload logs", func() bool { return strings.Contains(mk.logText("lease-1"), "hello from "+gpu0) })
	waitFor(t, "quotes", func() bool { mk.mu.Lock(); defer mk.mu.Unlock(); return len(mk.quotes) == 2 })
	mk.mu.Lock()
	q1, q2 := mk.quotes[0], mk.quotes[1]
	mk.mu.Unlock()
	if q1.Quote == nil || string(q1.Quote.Signature) != "sig:highway-1" || q2.Error == "" {
		t.Fatalf("quotes %+v %+v", q1, q2)
	}

	// Outage: 503s. The agent backs off, the lease keeps running, and beats
	// resume afterwards with an increasing seq.
	before := mk.numBeats()
	seqBefore := mk.last().Seq
	mk.mu.Lock()
	mk.fail503 = 5
	mk.mu.Unlock()
	waitFor(t, "recovery after 503s", func() bool {
		mk.mu.Lock()
		defer mk.mu.Unlock()
		return mk.fail503 == 0 && len(mk.beats) >= before+2
	})
	after := mk.last()
	if after.Seq <= seqBefore+5 || after.Leases[0].State != protocol.LeaseRunning {
		t.Fatalf("after outage: seq %d (before %d), lease %+v", after.Seq, seqBefore, after.Leases[0])
	}

	// Replay a captured, valid heartbeat verbatim: rejected as a replay.
	mk.mu.Lock()
	raw := mk.rawBeat
	mk.mu.Unlock()
	send := func(body []byte, header http.Header) (int, protocol.ErrorBody) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+raw.uri, bytes.NewReader(body))
		req.Header = header
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var eb protocol.ErrorBody
		_ = json.NewDecoder(resp.Body).Decode(&eb)
		return resp.StatusCode, eb
	}
	if code, eb := send(raw.body, raw.header); code != 401 || eb.Error.Reason != "replay" {
		t.Fatalf("replay: %d %+v", code, eb)
	}
	// Forge: a fresh nonce and timestamp, but signed with another key.
	_, otherKey, _ := ed25519.GenerateKey(nil)
	forged, _ := http.NewRequest(http.MethodPost, srv.URL+protocol.PathHeartbeat, bytes.NewReader(raw.body))
	if err := (&protocol.Signer{AgentID: st.AgentID, Key: otherKey}).Sign(forged); err != nil {
		t.Fatal(err)
	}
	if code, eb := send(raw.body, forged.Header); code != 401 || eb.Error.Reason != "bad_signature" {
		t.Fatalf("forged: %d %+v", code, eb)
	}
	// Tamper: the agent's own valid headers on a modified body.
	fresh, _ := http.NewRequest(http.MethodPost, srv.URL+protocol.PathHeartbeat, bytes.NewReader(raw.body))
	_ = api.Signer.Sign(fresh)
	tampered := bytes.Replace(raw.body, []byte(`"simulated":true`), []byte(`"simulated":false`), 1)
	if code, eb := send(tampered, fresh.Header); code != 401 || eb.Error.Reason != "bad_signature" {
		t.Fatalf("tampered: %d %+v", code, eb)
	}

	// Stop the lease.
	mk.mu.Lock()
	mk.assignments = append(mk.assignments, protocol.Assignment{ID: 3, LeaseID: "lease-1", Action: protocol.ActionStop})
	mk.mu.Unlock()
	waitFor(t, "lease stopped and GPU free again", func() bool {
		h := mk.last()
		for _, l := range h.Leases {
			if l.LeaseID == "lease-1" && l.State != protocol.LeaseStopped {
				return false
			}
		}
		return h.GPUs[0].Free
	})
	// Finished leases are reported, then forgotten.
	waitFor(t, "finished leases dropped", func() bool { return len(mk.last().Leases) == 0 })

	// Stop the agent: Run returns, and no beat arrives afterwards.
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	n := mk.numBeats()
	time.Sleep(100 * time.Millisecond)
	if mk.numBeats() != n {
		t.Fatal("beats after the agent stopped")
	}
	mk.mu.Lock()
	defer mk.mu.Unlock()
	if mk.failed != 5 {
		t.Fatalf("503s served: %d", mk.failed)
	}
	for _, r := range mk.rejections {
		if !strings.Contains(r, "replay") && !strings.Contains(r, "bad signature") && !strings.Contains(r, "token") {
			t.Fatalf("agent's own request rejected: %s", r)
		}
	}
}

// TestLogBufferBounded: the oldest lines go first when the buffer is full.
func TestLogBufferBounded(t *testing.T) {
	b := newLogBuffer(3)
	for i := 1; i <= 5; i++ {
		b.add("l", protocol.LogLine{Seq: uint64(i), Time: 1, Stream: protocol.StreamStdout, Text: "x"})
	}
	bs := b.batches()
	if len(bs) != 1 || len(bs[0].Lines) != 3 || bs[0].Lines[0].Seq != 3 || b.takeDropped() != 2 {
		t.Fatalf("%+v", bs)
	}
	b.ack("l", 4)
	if bs := b.batches(); len(bs[0].Lines) != 1 || bs[0].Lines[0].Seq != 5 {
		t.Fatalf("after ack %+v", bs)
	}
	b.ack("l", 5)
	if len(b.batches()) != 0 || b.n != 0 {
		t.Fatal("not empty")
	}
}

// TestLogBufferKeepsSequenceOrder: lines that arrive out of order leave
// in order, so every batch passes the marketplace's check.
func TestLogBufferKeepsSequenceOrder(t *testing.T) {
	b := newLogBuffer(100)
	for _, seq := range []uint64{2, 1, 3, 5, 4} {
		b.add("l", protocol.LogLine{Seq: seq, Time: 1, Stream: protocol.StreamStdout, Text: "x"})
	}
	bs := b.batches()
	if err := bs[0].Validate(); err != nil {
		t.Fatalf("batch %+v: %v", bs[0].Lines, err)
	}
	b.ack("l", 5)
	if len(b.batches()) != 0 {
		t.Fatal("lines left after acking the last")
	}
}

func TestNewRequiresDeps(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("empty config accepted")
	}
	if _, err := New(Config{AgentID: "a", API: &client.Client{}}); err == nil {
		t.Fatal("missing GPUs accepted")
	}
}

func TestQuoteChecks(t *testing.T) {
	fake, _ := gpu.FakeProfile("h100x2")
	sess, _ := gpu.Open(fake)
	defer func() { _ = sess.Close() }()
	now := time.Unix(1_760_000_000, 0)
	a, err := New(Config{AgentID: "a", API: &client.Client{}, GPUs: sess, Quotes: fakeSigner{}, Now: func() time.Time { return now },
		Drivers: []runner.Driver{&runner.Exec{}}})
	if err != nil {
		t.Fatal(err)
	}
	q := protocol.Quote{Provider: "p", Buyer: "b", GPUClass: "H100", GPUs: 2, PricePerEpoch: "5", Epochs: 1, ExpiresAt: now.Add(time.Minute).Unix()}
	if _, err := a.signQuote(context.Background(), protocol.QuoteRequest{RequestID: "r", ChainID: "c", Quote: q}); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(q *protocol.Quote){
		"too many": func(q *protocol.Quote) { q.GPUs = 3 },
		"class":    func(q *protocol.Quote) { q.GPUClass = "A100" },
		"expired":  func(q *protocol.Quote) { q.ExpiresAt = now.Unix() },
		"too long": func(q *protocol.Quote) { q.ExpiresAt = now.Add(time.Hour).Unix() },
	} {
		bad := q
		mut(&bad)
		if _, err := a.signQuote(context.Background(), protocol.QuoteRequest{RequestID: "r", ChainID: "c", Quote: bad}); err == nil {
			t.Errorf("%s: signed", name)
		}
	}
	// An extension: only for a lease whose workload runs here, on the
	// lease's own GPUs (so without counting free ones: they are busy with
	// it), within the operator's policy.
	inv, _ := sess.Snapshot()
	ext := q
	ext.ExtendsLease, ext.Epochs = 42, 4
	sign := func() error {
		_, err := a.signQuote(context.Background(), protocol.QuoteRequest{RequestID: "r", ChainID: "c", Quote: ext})
		return err
	}
	if sign() == nil {
		t.Error("extension signed for a lease that does not run here")
	}
	spec := runner.Spec{LeaseID: "L42", GPUs: []string{inv.GPUs[0].UUID, inv.GPUs[1].UUID}, Workload: protocol.Workload{Command: "sleep 30"}}
	if err := a.runner.Start(spec, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	a.leaseOf[42] = "L42" // as the lease's start assignment records it
	if err := sign(); err != nil {
		t.Errorf("extension of a running lease refused: %v", err)
	}
	for name, mut := range map[string]func(q *protocol.Quote, p *ExtendPolicy){
		"more GPUs than the lease":  func(q *protocol.Quote, _ *ExtendPolicy) { q.GPUs = 3 },
		"another class":             func(q *protocol.Quote, _ *ExtendPolicy) { q.GPUClass = "A100" },
		"beyond the quote lifetime": func(q *protocol.Quote, _ *ExtendPolicy) { q.ExpiresAt = now.Add(time.Hour).Unix() },
		"operator refuses":          func(_ *protocol.Quote, p *ExtendPolicy) { p.Refuse = true },
		"longer than the policy":    func(_ *protocol.Quote, p *ExtendPolicy) { p.MaxEpochs = 3 },
		"lease ends too soon":       func(_ *protocol.Quote, p *ExtendPolicy) { p.MinLead = 2 * time.Hour },
	} {
		was, pol := ext, a.cfg.Extensions
		mut(&ext, &a.cfg.Extensions)
		if sign() == nil {
			t.Errorf("%s: extension signed", name)
		}
		ext, a.cfg.Extensions = was, pol
	}
	if err := a.runner.Stop("L42"); err != nil {
		t.Fatal(err)
	}
	if err := sign(); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("extension of a lease whose workload stopped: %v, want refused as not running", err)
	}
	a.cfg.Quotes = nil
	if _, err := a.signQuote(context.Background(), protocol.QuoteRequest{Quote: q}); err == nil {
		t.Fatal("signed without a signer")
	}
}

type jobList []prover.Job

func (l jobList) Jobs(ctx context.Context) <-chan prover.Job {
	ch := make(chan prover.Job, len(l))
	for _, j := range l {
		ch <- j
	}
	close(ch)
	return ch
}

type recordingProver struct {
	mu     sync.Mutex
	leases []string
}

func (r *recordingProver) Prove(_ context.Context, job prover.Job) (prover.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.leases = append(r.leases, job.LeaseID)
	return prover.Result{Proof: []byte{1}}, nil
}

type nopSubmitter struct{}

func (nopSubmitter) Submit(context.Context, prover.Job, prover.Result) (prover.Submitted, error) {
	return prover.Submitted{Height: 1, JudgeHeight: 2}, nil
}

func (nopSubmitter) Verdict(context.Context, prover.Job, prover.Submitted) (prover.Verdict, error) {
	return prover.Verdict{Cleared: true}, nil
}

// The chain follower reports every lease of the provider's address; the
// agent proves only those it signed the quote for or was assigned.
func TestProvesOnlyOwnLeases(t *testing.T) {
	sess := fakeGPUs(t, "h100x1")
	rec := &recordingProver{}
	a, err := New(Config{AgentID: "a", API: &client.Client{BaseURL: "http://127.0.0.1:1"}, GPUs: sess, Prover: rec, Submitter: nopSubmitter{},
		Proofs: jobList{{LeaseID: "7", QuoteNonce: 70}, {LeaseID: "8", QuoteNonce: 80}, {LeaseID: "9", QuoteNonce: 90}}})
	if err != nil {
		t.Fatal(err)
	}
	a.ownNonces[70] = true // as signQuote records it
	inv, _ := sess.Snapshot()
	// A start for a GPU this machine does not have is refused and does
	// not make the lease this machine's.
	a.assign(context.Background(), protocol.Assignment{ID: 1, LeaseID: "m-8", Action: protocol.ActionStart, ChainLeaseID: 8,
		GPUs: []string{"GPU-not-here"}, Workload: protocol.Workload{Command: "true"}})
	a.assign(context.Background(), protocol.Assignment{ID: 2, LeaseID: "m-9", Action: protocol.ActionStart, ChainLeaseID: 9,
		GPUs: []string{inv.GPUs[0].UUID}, Workload: protocol.Workload{Command: "true"}})
	a.proofLoop(context.Background())
	slices.Sort(rec.leases) // epochs are proved side by side
	if got := strings.Join(rec.leases, ","); got != "7,9" {
		t.Fatalf("proved leases %q, want 7,9", got)
	}
}

// gpuProver proves "on the GPUs": while it runs, it records what the
// lease's log says about its workload.
type gpuProver struct {
	a      *Agent
	during string
	gpus   []string // the job's GPUs
}

func (p *gpuProver) UsesGPUs() bool { return true }

func (p *gpuProver) Prove(_ context.Context, job prover.Job) (prover.Result, error) {
	p.during = logText(p.a)
	p.gpus = job.GPUs
	return prover.Result{Proof: []byte{1}}, nil
}

func logText(a *Agent) string {
	var b strings.Builder
	for _, batch := range a.logs.batches() {
		for _, ln := range batch.Lines {
			b.WriteString(ln.Text + "\n")
		}
	}
	return b.String()
}

// TestGPUProverPausesTheWorkload: a prover on the GPUs proves with the
// lease's workload paused, and the workload resumes after; the CPU prover
// (TestProvesOnlyOwnLeases) leaves it alone.
func TestGPUProverPausesTheWorkload(t *testing.T) {
	sess := fakeGPUs(t, "h100x1")
	p := &gpuProver{}
	a, err := New(Config{AgentID: "a", API: &client.Client{BaseURL: "http://127.0.0.1:1"}, GPUs: sess, Prover: p, Submitter: nopSubmitter{},
		Drivers: []runner.Driver{&runner.Exec{}}, Proofs: jobList{{LeaseID: "9", Epoch: 3, Deadline: time.Now().Add(time.Minute)}}})
	if err != nil {
		t.Fatal(err)
	}
	p.a = a
	inv, _ := sess.Snapshot()
	a.assign(context.Background(), protocol.Assignment{ID: 2, LeaseID: "m-9", Action: protocol.ActionStart, ChainLeaseID: 9,
		GPUs: []string{inv.GPUs[0].UUID}, Workload: protocol.Workload{Command: "echo started; sleep 30"}})
	defer a.runner.StopAll()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logText(a), "started"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("workload never started: %q", logText(a))
		}
	}
	a.proofLoop(context.Background())
	if !strings.Contains(p.during, "workload paused: Proof-of-Compute for epoch 3") || strings.Contains(p.during, "workload resumed") {
		t.Fatalf("log while proving:\n%s", p.during)
	}
	if after := logText(a); !strings.Contains(after, "workload resumed") {
		t.Fatalf("log after proving:\n%s", after)
	}
	// The proof runs on the lease's GPUs, not on the machine's others.
	if !slices.Equal(p.gpus, []string{inv.GPUs[0].UUID}) {
		t.Fatalf("proved on %v, the lease has %s", p.gpus, inv.GPUs[0].UUID)
	}
}
