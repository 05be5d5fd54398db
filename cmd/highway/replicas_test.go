package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
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
// broker); the other stands by, runs no second engine over the same
// market, answers the market's reads from its own view, and serves every
// other route by forwarding to the leader: the API, a browser's sign-up
// (CSRF, Origin and the session cookie intact) and the agent API, with a
// request already forwarded never forwarded again.
// The leader's database session is then ended, as its death or a network
// partition would end it: it stops serving and reports why, its writes
// are refused (fenced by the term), and the standby takes over with the
// market as the leader left it. A heartbeat captured on its way to the
// old leader and replayed at the new one is refused there (nonces are in
// PostgreSQL): with nonces in each process's memory it was accepted. A
// third replica started with --role follower never takes over.
func TestLeaderFailover(t *testing.T) {
	dsn := dbtest.PostgresDSN(t)
	a := startServerAt(t, "127.0.0.1:0", dsn, accounts.Config{}, fastFailover)
	b := startServerAt(t, "127.0.0.1:0", dsn, accounts.Config{}, fastFailover)
	// A read replica: it never takes over.
	reader := startServerAt(t, "127.0.0.1:0", dsn, accounts.Config{}, func(m *Main) {
		fastFailover(m)
		m.Config.Role = RoleFollower
	})
	if code, role, _ := getRole(t, a, "/readyz"); code != http.StatusOK || role != "leader" {
		t.Fatalf("replica A /readyz: %d %q, want 200 leader", code, role)
	}
	waitFor(t, "the standby to find the leader", 5*time.Second, func() bool {
		code, role, _ := getRole(t, b, "/readyz")
		return code == http.StatusOK && role == "standby"
	})
	if code, _, _ := getRole(t, b, "/api/v1/offers"); code != http.StatusOK {
		t.Fatalf("the API through the standby: %d, want the leader's 200", code)
	}
	// Reads come from the standby's own view once it has caught up.
	waitFor(t, "the standby's view", 5*time.Second, func() bool {
		resp, err := http.Get(b.URL() + "/api/v1/offers")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK && resp.Header.Get(viewHeader) == "standby"
	})
	req, _ := http.NewRequest(http.MethodGet, b.URL()+"/api/v1/me", nil)
	req.Header.Set(forwardedHeader, "another replica")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a request already forwarded, at the standby: %v %v, want 503 (never forwarded twice)", resp, err)
	} else {
		resp.Body.Close()
	}
	if b.market() != nil {
		t.Fatal("the standby runs a broker: two engines over one market log")
	}
	viaStandby := newBrowser(t, b)
	wantStatus(t, viaStandby.signup("buyer@example.com", "a long passphrase", "buyer"), http.StatusSeeOther)
	if p := viaStandby.get("/wallet"); p.status != http.StatusOK {
		t.Fatalf("the signed-up buyer's wallet through the standby: %d", p.status)
	}
	if u, err := a.Store.UserByEmail(context.Background(), "buyer@example.com"); err != nil || u == nil {
		t.Fatalf("the sign-up through the standby did not reach the leader's database: %v", err)
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
	if code := send(b, body, header); code != http.StatusUnauthorized {
		t.Fatalf("replayed through the standby: %d, want 401", code)
	}
	if body, header := beat(2); send(b, body, header) != http.StatusOK {
		t.Fatal("a fresh heartbeat through the standby was refused")
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

	// The read replica stayed one, and forwards to the new leader.
	if reader.Role() != "standby" || reader.market() != nil {
		t.Fatalf("the --role follower replica: %s, runs a broker %v", reader.Role(), reader.market() != nil)
	}
	waitFor(t, "the read replica to find the new leader", 5*time.Second, func() bool {
		resp, err := http.Get(reader.URL() + "/readyz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var body struct{ Leader string }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode == http.StatusOK && body.Leader == b.Config.AdvertiseURL
	})

	// The new leader has the market as it was, and the replay is refused.
	if st := b.market().Stats(); st != before {
		t.Fatalf("the new leader's market: %+v, the old leader's: %+v", st, before)
	}
	if code := send(b, body, header); code != http.StatusUnauthorized {
		t.Fatalf("the heartbeat replayed at the new leader: %d, want 401", code)
	}
	body, header = beat(3)
	if code := send(b, body, header); code != http.StatusOK {
		t.Fatalf("the agent's next heartbeat at the new leader: %d", code)
	}
}

// TestFollowerRoleNeedsPostgres: --role follower on SQLite, where one
// process serves and leads, is refused with a message that says so.
func TestFollowerRoleNeedsPostgres(t *testing.T) {
	m := NewMain(io.Discard, io.Discard)
	m.Config = Config{Listen: "127.0.0.1:0", Database: t.TempDir() + "/h.db", SessionSecret: strings.Repeat("s", 32),
		LogLevel: "warn", LogFormat: "text", Role: RoleFollower}
	if err := m.Open(context.Background()); err == nil || !strings.Contains(err.Error(), "needs PostgreSQL") {
		_ = m.Close()
		t.Fatalf("--role follower on SQLite: %v", err)
	}
}
