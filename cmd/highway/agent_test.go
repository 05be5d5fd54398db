package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/broker"
	"github.com/highway-compute/highway/handlers"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
	"github.com/highway-compute/highway/poc"
	"github.com/highway-compute/highway/protocol"
	"github.com/highway-compute/highway/provider-agent/agent"
	"github.com/highway-compute/highway/provider-agent/client"
	"github.com/highway-compute/highway/provider-agent/gpu"
	"github.com/highway-compute/highway/provider-agent/state"
)

// TestRealAgentAgainstRealServer runs the real provider agent (mock NVML,
// two simulated H100s) against the real marketplace on :0: enrollment
// through the console's token, heartbeats that make the GPUs appear, the
// machine going offline after the configured misses when the agent stops,
// the agent reconnecting after a server restart, and forged, replayed and
// stale requests each refused with nothing applied.
func TestRealAgentAgainstRealServer(t *testing.T) {
	dsn := dbtest.SQLiteDSN(t)
	tune := func(m *Main) {
		m.Agents = handlers.AgentConfig{HeartbeatInterval: time.Second, OfflineMisses: 2, MaxPoll: 200 * time.Millisecond}
		// The verification PoC is not what this test is about: at the
		// small dev parameters it does not hold both cores for seconds
		// under the race detector.
		m.Broker = broker.Config{VerifyParams: poc.DevParams(), VerifyWork: time.Second}
	}
	srv := startServerAt(t, "127.0.0.1:0", dsn, accounts.Config{}, tune)
	addr := srv.Addr().String()

	// The provider creates an enrollment token in the console.
	b := newBrowser(t, srv)
	wantStatus(t, b.signup("prov@example.com", "a long passphrase", "provider"), http.StatusSeeOther)
	p := b.submit("/provider", "/provider/enrollments", url.Values{})
	wantStatus(t, p, http.StatusCreated)
	token := text(p, `[data-testid="enroll-token"]`)
	if len(token) < 40 {
		t.Fatalf("no enrollment token on the page: %q", token)
	}

	fake, err := gpu.FakeProfile("h100x2")
	if err != nil {
		t.Fatal(err)
	}
	sess, err := gpu.Open(fake)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	inv, err := sess.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := state.Dir{Path: t.TempDir() + "/agent"}
	st, err := agent.Enroll(ctx, &client.Client{BaseURL: srv.URL()}, dir, agent.EnrollRequest{
		ServerURL: srv.URL(), Token: token, Hostname: "gpu-box-1", Version: "test", Inventory: inv, Rand: rand.Reader,
	})
	if err != nil {
		t.Fatalf("enroll: %v", err)
	}
	// The token works once.
	other := state.Dir{Path: t.TempDir() + "/other"}
	_, err = agent.Enroll(ctx, &client.Client{BaseURL: srv.URL()}, other, agent.EnrollRequest{
		ServerURL: srv.URL(), Token: token, Hostname: "thief", Version: "test", Inventory: inv, Rand: rand.Reader,
	})
	var se *client.StatusError
	if !errors.As(err, &se) || se.Status != http.StatusUnauthorized {
		t.Fatalf("reused token: err = %v, want 401", err)
	}
	key, err := dir.LoadKey()
	if err != nil {
		t.Fatal(err)
	}

	// The agent's own log, shown if the test fails: a refused beat is a
	// 4xx the server logs only at info.
	var agentLog syncBuffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent log:\n%s", agentLog.String())
		}
	})
	runAgent := func() (stop func()) {
		actx, cancel := context.WithCancel(ctx)
		a, err := agent.New(agent.Config{
			AgentID: st.AgentID, Version: "test", GPUs: sess, Logger: slog.New(slog.NewTextHandler(&agentLog, nil)),
			API:               &client.Client{BaseURL: srv.URL(), Signer: &protocol.Signer{AgentID: st.AgentID, Key: key}},
			HeartbeatInterval: 100 * time.Millisecond, PollWait: 200 * time.Millisecond,
			Backoff: client.Backoff{Base: 50 * time.Millisecond, Max: 200 * time.Millisecond},
		})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = a.Run(actx); close(done) }()
		return func() { cancel(); <-done }
	}
	stop := runAgent()

	machine := waitMachine(t, srv.Store, st.MachineID, "online with 2 GPUs", func(m *models.Machine) bool {
		return m.Online(time.Now(), time.Second, 2) && len(m.GPUs) == 2
	})
	if !machine.Simulated || machine.GPUs[0].Class != "H100" {
		t.Fatalf("machine = %+v", machine)
	}
	page := b.get("/provider")
	if page.doc.Find(`[data-testid="gpu-table"] tbody tr`).Length() != 2 || page.doc.Find(`[data-testid="machine-online"]`).Length() != 1 {
		t.Fatalf("console does not show the online machine with 2 GPUs:\n%.1500s", page.body)
	}
	// A newcomer's reliability: full uptime (seen under an hour), no
	// settled epochs yet.
	if got := text(page, `[data-testid="machine-reliability"]`); !strings.Contains(got, "100.00 %") || !strings.Contains(got, "no settled epochs yet") {
		t.Fatalf("console reliability = %q", got)
	}

	// Forged, replayed and stale heartbeats are refused and change nothing.
	beat := protocol.Heartbeat{AgentID: st.AgentID, Seq: 1, BootID: "attacker-boot", SentAt: time.Now().UnixMilli(), AgentVersion: "x"}
	body, _ := json.Marshal(beat)
	send := func(req *http.Request) int {
		t.Helper()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	newReq := func() *http.Request {
		req, _ := http.NewRequest(http.MethodPost, srv.URL()+protocol.PathHeartbeat, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		return req
	}
	_, forgedKey, _ := ed25519.GenerateKey(rand.Reader)
	forged := newReq()
	if err := protocol.Sign(forged, st.AgentID, forgedKey); err != nil {
		t.Fatal(err)
	}
	if code := send(forged); code != http.StatusUnauthorized {
		t.Fatalf("forged heartbeat: status %d, want 401", code)
	}
	stale := newReq()
	old := &protocol.Signer{AgentID: st.AgentID, Key: key, Now: func() time.Time { return time.Now().Add(-10 * time.Minute) }}
	if err := old.Sign(stale); err != nil {
		t.Fatal(err)
	}
	if code := send(stale); code != http.StatusUnauthorized {
		t.Fatalf("stale heartbeat: status %d, want 401", code)
	}
	signed := newReq()
	if err := protocol.Sign(signed, st.AgentID, key); err != nil {
		t.Fatal(err)
	}
	replay := signed.Clone(ctx)
	replay.Body = nilSafeBody(body)
	if code := send(signed); code != http.StatusOK {
		t.Fatalf("genuine out-of-band heartbeat: status %d, want 200", code)
	}
	if code := send(replay); code != http.StatusUnauthorized {
		t.Fatalf("replayed heartbeat: status %d, want 401", code)
	}

	// The agent stops: after the configured misses the machine is offline.
	stop()
	waitMachine(t, srv.Store, st.MachineID, "offline", func(m *models.Machine) bool {
		return !m.Online(time.Now(), time.Second, 2)
	})

	// The agent runs again, the server restarts on the same address: the
	// agent keeps retrying and reconnects.
	stop = runAgent()
	defer stop()
	waitMachine(t, srv.Store, st.MachineID, "online again", func(m *models.Machine) bool {
		return m.Online(time.Now(), time.Second, 2)
	})
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // beats fail meanwhile; the agent backs off
	srv2 := startServerAt(t, addr, dsn, accounts.Config{}, tune)
	restarted := time.Now()
	waitMachine(t, srv2.Store, st.MachineID, "heartbeats after the restart", func(m *models.Machine) bool {
		return m.LastHeartbeatAt != nil && m.LastHeartbeatAt.After(restarted)
	})
}

func nilSafeBody(b []byte) *readCloser { return &readCloser{bytes.NewReader(b)} }

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

func waitMachine(t *testing.T, s *models.Store, id, what string, ok func(*models.Machine) bool) *models.Machine {
	t.Helper()
	// Generous: CI runs this under the race detector beside the chain's
	// simulation on two cores.
	deadline := time.Now().Add(45 * time.Second)
	for {
		m, err := s.MachineByID(context.Background(), id)
		if err == nil && ok(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("machine never became %s (last: %+v, err %v)", what, m, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runTestAgent runs the agent registered as id (registerTestAgent) on
// the GPUs of sess, beating every interval, until the test ends.
func runTestAgent(t testing.TB, m *Main, id string, key ed25519.PrivateKey, sess *gpu.Session, providerAddress string, interval time.Duration) {
	t.Helper()
	a, err := agent.New(agent.Config{AgentID: id, Version: "test", GPUs: sess, ProviderAddress: providerAddress,
		API:               &client.Client{BaseURL: m.URL(), Signer: &protocol.Signer{AgentID: id, Key: key}},
		HeartbeatInterval: interval, PollWait: 500 * time.Millisecond,
		Backoff: client.Backoff{Base: 50 * time.Millisecond, Max: interval}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Run(ctx); close(done) }()
	t.Cleanup(func() { stop(); <-done })
}

// fakeGPUs opens go-nvml's mock GPUs of a profile (UUIDs from seed) and
// reads them once; the session closes when the test ends, after the
// agents a test started have stopped (cleanups run last first).
func fakeGPUs(t testing.TB, profile, seed string) (*gpu.Session, gpu.Inventory) {
	t.Helper()
	fake, err := gpu.FakeProfileSeed(profile, seed)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := gpu.Open(fake)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sess.Close() })
	inv, err := sess.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return sess, inv
}

// registerTestAgent registers an agent (and its machine) for provider u
// straight through the store, returning its id and key.
func registerTestAgent(t testing.TB, m *Main, providerID, name string) (string, ed25519.PrivateKey) {
	t.Helper()
	ctx := context.Background()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	tok := "token-" + name + "-0123456789"
	if err := m.Store.CreateEnrollmentToken(ctx, &models.EnrollmentToken{TokenHash: accounts.HashToken(tok), ProviderID: providerID,
		CreatedAt: time.Now().UTC(), ExpiresAt: time.Now().Add(time.Hour).UTC()}); err != nil {
		t.Fatal(err)
	}
	a := &models.Agent{PublicKey: base64.StdEncoding.EncodeToString(pub)}
	if err := m.Store.RegisterAgent(ctx, accounts.HashToken(tok), time.Now(), &models.Machine{Hostname: name, Simulated: true}, a); err != nil {
		t.Fatal(err)
	}
	return a.ID, key
}

// postBeat sends hb signed as agent id to m's heartbeat endpoint and
// answers the status.
func postBeat(t testing.TB, m *Main, id string, key ed25519.PrivateKey, hb protocol.Heartbeat) int {
	t.Helper()
	body, _ := json.Marshal(hb)
	req, _ := http.NewRequest(http.MethodPost, m.URL()+protocol.PathHeartbeat, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	code, _ := doSigned(t, req, id, key)
	return code
}

// doSigned signs req as agent id, sends it, and answers the status and
// headers.
func doSigned(t testing.TB, req *http.Request, id string, key ed25519.PrivateKey) (int, http.Header) {
	t.Helper()
	if err := protocol.Sign(req, id, key); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// Each agent has its own request budget, spent only by requests that
// carry its valid signature: over it, 429 with Retry-After; another
// agent is unaffected.
func TestAgentRateLimit(t *testing.T) {
	srv := startServerAt(t, "127.0.0.1:0", dbtest.SQLiteDSN(t), accounts.Config{}, func(m *Main) {
		m.Agents = handlers.AgentConfig{RequestsPerMinute: 3, MaxPoll: 50 * time.Millisecond}
	})
	u, _, err := accounts.New(srv.Store, accounts.Config{Hash: cheapHash}).Signup(context.Background(),
		accounts.SignupInput{Email: "p@example.com", Password: "0123456789", Provider: true}, "127.0.0.1", "test")
	if err != nil {
		t.Fatal(err)
	}
	idA, keyA := registerTestAgent(t, srv, u.ID, "a")
	idB, keyB := registerTestAgent(t, srv, u.ID, "b")
	// poll answers the status and Retry-After of one signed poll.
	poll := func(id string, key ed25519.PrivateKey) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL()+protocol.PathAssignments+"?wait=0", nil)
		code, h := doSigned(t, req, id, key)
		return code, h.Get("Retry-After")
	}
	// Unsigned (forged) requests naming agent A do not spend its budget.
	_, forged, _ := ed25519.GenerateKey(rand.Reader)
	for i := 0; i < 3; i++ {
		if code, _ := poll(idA, forged); code != http.StatusUnauthorized {
			t.Fatalf("forged poll: %d", code)
		}
	}
	for i := 0; i < 3; i++ {
		if code, _ := poll(idA, keyA); code != http.StatusOK {
			t.Fatalf("poll %d: %d", i+1, code)
		}
	}
	if code, retry := poll(idA, keyA); code != http.StatusTooManyRequests || retry == "" {
		t.Fatalf("4th poll: %d, Retry-After %q", code, retry)
	}
	if code, _ := poll(idB, keyB); code != http.StatusOK {
		t.Fatalf("another agent: %d", code)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
