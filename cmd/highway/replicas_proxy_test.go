//go:build !race

// The agent proves a real verification PoC on the CPU in one second, which
// the race detector slows below the required nonce rate (as in the e2e
// test); `make test` runs this in its race-free pass.

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
	"github.com/highway-compute/highway/poc"

	"github.com/highway-compute/highway/protocol"
	"github.com/highway-compute/highway/provider-agent/agent"
	"github.com/highway-compute/highway/provider-agent/client"
	"github.com/highway-compute/highway/provider-agent/state"
)

// failoverProxy is the load balancer in front of the replicas: round
// robin, passing a request to the next replica when one refuses it (503
// with Retry-After: a deposed leader, or a standby whose leader just
// died) or does not answer, as a balancer with retries does. Standbys
// forward what they get to the leader.
type failoverProxy struct {
	replicas []*Main
	next     atomic.Uint32
	retried  atomic.Int64
}

func (p *failoverProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	first := int(p.next.Add(1))
	for i := range p.replicas {
		m := p.replicas[(first+i)%len(p.replicas)]
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, m.URL()+r.URL.RequestURI(), bytes.NewReader(body))
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			p.retried.Add(1)
			continue
		}
		if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" && i < len(p.replicas)-1 {
			resp.Body.Close()
			p.retried.Add(1)
			continue
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
		resp.Body.Close()
		return
	}
	http.Error(w, `{"error":{"code":"unavailable","message":"no replica answered"}}`, http.StatusServiceUnavailable)
}

// TestReplicasBehindAProxy: three replicas on one PostgreSQL behind a
// round-robin balancer; a real provider agent enrolls, proves its
// verification and heartbeats through it, and a buyer browses through
// it. Each standby answers the market's reads from its own view, equal
// to the leader's, and a change on the leader reaches a standby's live
// page within a second. The leader's session then ends mid-traffic: a
// standby takes over,
// the agent's beats reach it after at most a retry, the offer is listed
// again as it was (verified, same price, no second verification), and no
// replica but the new leader runs a broker.
func TestReplicasBehindAProxy(t *testing.T) {
	dsn := dbtest.PostgresDSN(t)
	var replicas []*Main
	for range 3 {
		replicas = append(replicas, startServerAt(t, "127.0.0.1:0", dsn, accounts.Config{}, func(m *Main) {
			fastFailover(m)
			// A one-second verification on the small PoC, as in the e2e test.
			m.Broker.VerifyParams, m.Broker.VerifyWork = poc.DevParams(), time.Second
		}))
	}
	leader := replicas[0]
	proxy := &failoverProxy{replicas: replicas}
	lb := httptest.NewServer(proxy)
	defer lb.Close()

	ctx := context.Background()
	u, _, err := accounts.New(leader.Store, accounts.Config{Hash: cheapHash}).Signup(ctx,
		accounts.SignupInput{Email: "p@example.com", Password: "0123456789", Provider: true}, "127.0.0.1", "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := leader.market().SetPrice(ctx, u.ID, "H100", 2_000_000); err != nil {
		t.Fatal(err)
	}
	tok := "token-proxied-0123456789"
	if err := leader.Store.CreateEnrollmentToken(ctx, &models.EnrollmentToken{TokenHash: accounts.HashToken(tok), ProviderID: u.ID,
		CreatedAt: time.Now().UTC(), ExpiresAt: time.Now().Add(time.Hour).UTC()}); err != nil {
		t.Fatal(err)
	}

	// The agent talks to the balancer only.
	sess, inv := fakeGPUs(t, "h100x2", "proxied")
	dir := state.Dir{Path: t.TempDir()}
	st, err := agent.Enroll(ctx, &client.Client{BaseURL: lb.URL}, dir, agent.EnrollRequest{
		ServerURL: lb.URL, Token: tok, Hostname: "proxied", Version: "test", Inventory: inv, Rand: rand.Reader})
	if err != nil {
		t.Fatalf("enroll through the balancer: %v", err)
	}
	key, err := dir.LoadKey()
	if err != nil {
		t.Fatal(err)
	}
	var agentLog syncBuffer
	a, err := agent.New(agent.Config{
		AgentID: st.AgentID, Version: "test", GPUs: sess,
		// A chain address, without which a machine is not worth verifying.
		ProviderAddress: sdk.AccAddress(secp256k1.GenPrivKey().PubKey().Address()).String(),
		API:             &client.Client{BaseURL: lb.URL, Signer: &protocol.Signer{AgentID: st.AgentID, Key: key}},
		Prober:          staticProber{"local": 5}, Regions: []protocol.Region{{ID: "local", ProbeAddr: "127.0.0.1:1"}},
		HeartbeatInterval: 100 * time.Millisecond, PollWait: time.Second,
		Backoff: client.Backoff{Base: 50 * time.Millisecond, Max: 500 * time.Millisecond},
		Logger:  slog.New(slog.NewTextHandler(&agentLog, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		t.Fatal(err)
	}
	actx, stopAgent := context.WithCancel(ctx)
	agentDone := make(chan error, 1)
	go func() { agentDone <- a.Run(actx) }()
	defer func() {
		stopAgent()
		if err := <-agentDone; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("agent: %v", err)
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", agentLog.String())
		}
	}()

	buyer := apiClient{t: t, base: lb.URL}
	var offers struct {
		Offers []struct {
			ID       string `json:"id"`
			Verified bool   `json:"verified"`
			Price    string `json:"price_per_gpu_hour"`
			Free     int64  `json:"gpus_free"`
		} `json:"offers"`
	}
	listed := func() bool {
		offers.Offers = nil
		return buyer.do(http.MethodGet, "/offers?model=H100", nil, &offers) == http.StatusOK &&
			len(offers.Offers) == 1 && offers.Offers[0].Verified && offers.Offers[0].Free == 2
	}
	waitFor(t, "the verified offer through the balancer", 30*time.Second, listed)
	before := offers.Offers[0]
	forwarded := 0.0
	for _, m := range replicas {
		forwarded += scrape(t, m, "highway_forwarded_requests_total")
	}
	if forwarded == 0 {
		t.Fatal("the balancer's round robin reached no standby that forwarded to the leader")
	}
	t.Logf("%.0f requests reached the leader through a standby", forwarded)
	standbyViews(t, leader, replicas[1:], u.ID)
	waitFor(t, "the offer back at its price", 5*time.Second, listed)
	if strings.Count(agentLog.String(), "verification proof done") != 1 {
		t.Fatalf("verifications before the failover:\n%s", agentLog.String())
	}

	// The leader's session ends mid-traffic.
	beatsBefore := leader.market().Stats()
	start := time.Now()
	next := endLeadership(t, replicas)
	waitFor(t, "the offer listed again through the balancer", 10*time.Second, listed)
	t.Logf("failover: %v until the buyer sees the offer again; the balancer passed %d requests on", time.Since(start).Round(time.Millisecond), proxy.retried.Load())
	if after := offers.Offers[0]; after != before {
		t.Fatalf("offer after the failover %+v, before %+v", after, before)
	}
	if st := next.market().Stats(); st.Machines != beatsBefore.Machines || st.Listed != beatsBefore.Listed {
		t.Fatalf("the new leader's market %+v, the old one's %+v", st, beatsBefore)
	}
	// The agent's beats reach the new leader (the machine stays online
	// there across several beat intervals), and it was not asked to
	// verify again.
	time.Sleep(500 * time.Millisecond)
	if !listed() {
		t.Fatal("the offer went away after the failover: the agent's beats do not reach the new leader")
	}
	if n := strings.Count(agentLog.String(), "verification proof done"); n != 1 {
		t.Fatalf("%d verifications: the new leader asked again", n)
	}
	leaders := 0
	for _, m := range replicas {
		if m.Role() == "leader" {
			leaders++
		}
	}
	if leaders != 1 {
		t.Fatalf("%d replicas lead", leaders)
	}
}

// scrape reads one unlabelled metric off a replica's /metrics.
func scrape(t *testing.T, m *Main, name string) float64 {
	t.Helper()
	resp, err := http.Get(m.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("%s is not on %s/metrics", name, m.URL())
	return 0
}

// standbyViews: each standby answers the offers from its own view (the
// leader's answer, once caught up), and a price change on the leader
// reaches a live page open on a standby, and its offers, within a second.
// The price is set back before it returns.
func standbyViews(t *testing.T, leader *Main, standbys []*Main, providerID string) {
	t.Helper()
	get := func(m *Main) (string, string) {
		resp, err := http.Get(m.URL() + "/api/v1/offers?model=H100")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body), resp.Header.Get(viewHeader)
	}
	for _, m := range standbys {
		waitFor(t, "the standby's view to equal the leader's", 5*time.Second, func() bool {
			want, _ := get(leader)
			got, from := get(m)
			return from == "standby" && got == want
		})
	}
	// A live page open on a standby.
	m := standbys[0]
	events, header := changeEvents(t, m.URL()+"/market/events")
	if header.Get(viewHeader) != "standby" {
		t.Fatal("the live page's stream was not served by the standby's view")
	}
	time.Sleep(100 * time.Millisecond) // the stream is open and waiting
	start := time.Now()
	if err := leader.market().SetPrice(context.Background(), providerID, "H100", 2_500_000); err != nil {
		t.Fatal(err)
	}
	// The view has the change within a second...
	for !func() bool {
		body, from := get(m)
		return from == "standby" && strings.Contains(body, `"price_per_gpu_hour":"2500000"`)
	}() {
		if time.Since(start) > time.Second {
			t.Fatal("the price change did not reach the standby's view within 1 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("a change on the leader reached a standby's view in %v", time.Since(start).Round(time.Millisecond))
	// ...and the live page open on it is told (an event stream sends at
	// most one event a second, so an unrelated one just before can hold
	// this one back by up to that).
	for {
		select {
		case at := <-events:
			if at.Before(start) {
				continue // an earlier change's
			}
			t.Logf("and its live page in %v", at.Sub(start).Round(time.Millisecond))
		case <-time.After(2 * time.Second):
			t.Fatal("the standby's live page never heard of the price change")
		}
		break
	}
	if err := leader.market().SetPrice(context.Background(), providerID, "H100", 2_000_000); err != nil {
		t.Fatal(err)
	}
}

// endLeadership ends the leading replicas[0]'s database session, as its
// death would, and returns the standby that takes over.
func endLeadership(t *testing.T, replicas []*Main) *Main {
	t.Helper()
	dbtest.EndLeaderSession(t, replicas[1].Store)
	var next *Main
	waitFor(t, "a standby to take over", 10*time.Second, func() bool {
		for _, m := range replicas[1:] {
			if m.Role() == "leader" {
				next = m
				return true
			}
		}
		return false
	})
	return next
}
