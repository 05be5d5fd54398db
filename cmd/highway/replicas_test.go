package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
	"github.com/highway-compute/highway/protocol"
)

// fastFailover makes a replica notice a lost hold and try to take over
// every 20 ms, so the test runs in well under a second.
func fastFailover(m *Main) {
	m.Config.LeaderPoll, m.Config.LeaderWatch = 20*time.Millisecond, 20*time.Millisecond
}

func getRole(t *testing.T, m *Main, path string) (int, string, string) {
	t.Helper()
	resp, err := http.Get(m.URL() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Role string }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Role, resp.Header.Get("Retry-After")
}

// TestLeaderFailover runs two replicas on one PostgreSQL. One leads (the
// broker, every route); the other stands by (503 with Retry-After, its
// /readyz says standby) and runs no second engine over the same market.
// The leader's database session is then ended, as its death or a network
// partition would end it: it stops serving and reports why, its writes
// are refused (fenced by the term), and the standby takes over with the
// market as the leader left it. A heartbeat captured on its way to the
// old leader and replayed at the new one is refused there (nonces are in
// PostgreSQL): with nonces in each process's memory it was accepted.
func TestLeaderFailover(t *testing.T) {
	dsn := dbtest.PostgresDSN(t)
	a := startServerAt(t, "127.0.0.1:0", dsn, accounts.Config{}, fastFailover)
	b := startServerAt(t, "127.0.0.1:0", dsn, accounts.Config{}, fastFailover)
	if code, role, _ := getRole(t, a, "/readyz"); code != http.StatusOK || role != "leader" {
		t.Fatalf("replica A /readyz: %d %q, want 200 leader", code, role)
	}
	if code, role, _ := getRole(t, b, "/readyz"); code != http.StatusServiceUnavailable || role != "standby" {
		t.Fatalf("replica B /readyz: %d %q, want 503 standby", code, role)
	}
	if code, _, retry := getRole(t, b, "/api/v1/offers"); code != http.StatusServiceUnavailable || retry == "" {
		t.Fatalf("the standby answered the API: %d (Retry-After %q)", code, retry)
	}
	if b.market() != nil {
		t.Fatal("the standby runs a broker: two engines over one market log")
	}

	u, _, err := accounts.New(a.Store, accounts.Config{Hash: cheapHash}).Signup(context.Background(),
		accounts.SignupInput{Email: "p@example.com", Password: "0123456789", Provider: true}, "127.0.0.1", "test")
	if err != nil {
		t.Fatal(err)
	}
	id, key := registerTestAgent(t, a, u.ID, "replayed")
	beat := func(seq uint64) (body []byte, header http.Header) {
		body, _ = json.Marshal(protocol.Heartbeat{AgentID: id, Seq: seq, BootID: "boot-1", SentAt: time.Now().UnixMilli(), AgentVersion: "x"})
		req, _ := http.NewRequest(http.MethodPost, a.URL()+protocol.PathHeartbeat, bytes.NewReader(body))
		if err := protocol.Sign(req, id, key); err != nil {
			t.Fatal(err)
		}
		return body, req.Header
	}
	send := func(m *Main, body []byte, header http.Header) int {
		req, _ := http.NewRequest(http.MethodPost, m.URL()+protocol.PathHeartbeat, bytes.NewReader(body))
		req.Header = header.Clone()
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	body, header := beat(1)
	if code := send(a, body, header); code != http.StatusOK {
		t.Fatalf("the heartbeat at the leader: %d", code)
	}
	if code := send(a, body, header); code != http.StatusUnauthorized {
		t.Fatalf("replayed at the leader: %d, want 401", code)
	}

	// The leader's session ends.
	before := a.market().Stats()
	start := time.Now()
	dbtest.EndLeaderSession(t, b.Store)
	waitFor(t, "the standby to take over", 10*time.Second, func() bool {
		code, role, _ := getRole(t, b, "/readyz")
		return code == http.StatusOK && role == "leader"
	})
	t.Logf("failover: %v from the leader's session ending to the standby serving", time.Since(start).Round(time.Millisecond))
	select {
	case err := <-a.Fatal():
		if err == nil {
			t.Fatal("the old leader stopped without a reason")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the old leader did not notice it lost the market")
	}
	if code, role, _ := getRole(t, a, "/readyz"); code != http.StatusServiceUnavailable || role != "deposed" {
		t.Fatalf("the old leader's /readyz: %d %q, want 503 deposed", code, role)
	}
	if err := a.Store.SetCursor(context.Background(), "late", 1); !errors.Is(err, models.ErrDeposed) {
		t.Fatalf("the old leader's late write: %v, want ErrDeposed", err)
	}

	// The new leader has the market as it was, and the replay is refused.
	if st := b.market().Stats(); st != before {
		t.Fatalf("the new leader's market: %+v, the old leader's: %+v", st, before)
	}
	if code := send(b, body, header); code != http.StatusUnauthorized {
		t.Fatalf("the heartbeat replayed at the new leader: %d, want 401", code)
	}
	body, header = beat(2)
	if code := send(b, body, header); code != http.StatusOK {
		t.Fatalf("the agent's next heartbeat at the new leader: %d", code)
	}
}
