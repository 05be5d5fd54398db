//go:build !race

package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"cosmossdk.io/math"
	"github.com/coder/websocket"
	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"

	"github.com/highway-compute/highway/chain/network"
	"github.com/highway-compute/highway/protocol"
)

// shellWorld is a running lease on the real loop (chain, marketplace, an
// agent with the exec runner) and its buyer.
type shellWorld struct {
	e     *e2eMarket
	offer string
	buyer apiClient
	lease string
}

func startShellWorld(t testing.TB) *shellWorld {
	w := startShellProvider(t)
	_, buyer := w.e.user("buyer@example.com", "buyer")
	w.rentFor(t, buyer)
	return w
}

// startShellProvider is the loop with one H100 listed and no lease yet.
func startShellProvider(t testing.TB) *shellWorld {
	provKey := secp256k1.GenPrivKey()
	e := startE2E(t, network.Account{Name: "provider", Key: provKey, Funds: math.NewInt(1_000_000)})
	provBrowser, prov := e.user("prov@example.com", "provider")
	prov.do(http.MethodPut, "/prices", map[string]string{"model": "H100", "price_per_gpu_hour": "3600000"}, nil)
	e.runAgent(provBrowser, provKey, "h100x1", "shell", nil)
	var offers struct{ Offers []struct{ ID string } }
	waitFor(t, "the offer", 60*time.Second, func() bool {
		prov.do(http.MethodGet, "/offers", nil, &offers)
		return len(offers.Offers) == 1
	})
	return &shellWorld{e: e, offer: offers.Offers[0].ID}
}

// rentFor funds buyer and rents the GPU for it, until its workload runs.
func (w *shellWorld) rentFor(t testing.TB, buyer apiClient) {
	w.rentRunning(t, buyer, "echo workload up; sleep 600")
}

// rentRunning funds buyer and rents the GPU for it to run command (which
// first prints "workload up"), until the workload runs.
func (w *shellWorld) rentRunning(t testing.TB, buyer apiClient, command string) {
	buyer.do(http.MethodPost, "/wallet/faucet", nil, nil)
	lease := (&preemptWorld{e: w.e}).rent(t, buyer, map[string]any{"type": "rent_now", "offer_id": w.offer, "hours": 1,
		"workload": map[string]string{"command": command}}, "workload up")
	var l struct {
		Lease struct {
			WorkloadStatus string `json:"workload_status"`
		}
	}
	waitFor(t, "the workload running", 30*time.Second, func() bool {
		buyer.do(http.MethodGet, "/leases/"+lease, nil, &l)
		return l.Lease.WorkloadStatus == protocol.LeaseRunning
	})
	w.buyer, w.lease = buyer, lease
}

// dialShell opens a shell as c; the status is the HTTP answer when the
// upgrade is refused.
func dialShell(ctx context.Context, base string, c apiClient, path string) (*websocket.Conn, int, error) {
	h := http.Header{}
	if c.key != "" {
		h.Set("Authorization", "Bearer "+c.key)
	}
	conn, resp, err := websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1)+path, &websocket.DialOptions{HTTPHeader: h})
	if resp != nil && resp.Body != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		return nil, code, err
	}
	conn.SetReadLimit(1 << 20)
	return conn, http.StatusSwitchingProtocols, nil
}

// termConn reads a shell's output.
type termConn struct {
	t    testing.TB
	conn *websocket.Conn
	out  bytes.Buffer
}

func (s *termConn) send(text string) {
	s.t.Helper()
	if err := s.conn.Write(context.Background(), websocket.MessageBinary, []byte(text)); err != nil {
		s.t.Fatalf("type %q: %v", text, err)
	}
}

// until reads until the output holds want and returns how many bytes it
// read meanwhile.
func (s *termConn) until(want string, within time.Duration) int {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	n := 0
	for !bytes.Contains(s.out.Bytes(), []byte(want)) {
		typ, data, err := s.conn.Read(ctx)
		if err != nil {
			s.t.Fatalf("waiting for %q: %v; the terminal showed:\n%s", want, err, tail(s.out.String()))
		}
		if typ == websocket.MessageBinary {
			n += len(data)
			s.out.Write(data)
			if s.out.Len() > 1<<20 {
				// Keep the tail: a marker may straddle the cut.
				keep := append([]byte(nil), s.out.Bytes()[s.out.Len()-64<<10:]...)
				s.out.Reset()
				s.out.Write(keep)
			}
		}
	}
	return n
}

func tail(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}

// TestShellEndToEnd: the buyer's terminal reaches the workload through the
// marketplace and the agent's outbound link (a command runs with the
// lease's GPUs, Ctrl-C interrupts, UTF-8 and a resize pass), the session
// is logged, and a stranger, an unsigned agent dial and a session id that
// is not waiting are each refused.
func TestShellEndToEnd(t *testing.T) {
	w := startShellWorld(t)
	base := w.e.srv.URL()
	ctx := context.Background()

	_, stranger := w.e.user("stranger@example.com", "buyer")
	if _, code, _ := dialShell(ctx, base, stranger, "/api/v1/leases/"+w.lease+"/shell"); code != http.StatusNotFound {
		t.Fatalf("a stranger's shell: %d, want 404", code)
	}
	if _, code, _ := dialShell(ctx, base, apiClient{}, "/api/v1/leases/"+w.lease+"/shell"); code != http.StatusUnauthorized {
		t.Fatalf("an anonymous shell: %d, want 401", code)
	}
	evil := http.Header{"Authorization": {"Bearer " + w.buyer.key}, "Origin": {"http://evil.example"}}
	_, resp, err := websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/api/v1/leases/"+w.lease+"/shell", &websocket.DialOptions{HTTPHeader: evil})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a cross-site page's shell: %v, want 403", err)
	}
	if _, code, _ := dialShell(ctx, base, apiClient{}, protocol.PathShells+"01a00000-0000-7000-8000-000000000000"); code != http.StatusUnauthorized {
		t.Fatalf("an unsigned agent dial: %d, want 401", code)
	}

	conn, code, err := dialShell(ctx, base, w.buyer, "/api/v1/leases/"+w.lease+"/shell?cols=100&rows=30")
	if err != nil {
		t.Fatalf("the buyer's shell: %d %v", code, err)
	}
	s := &termConn{t: t, conn: conn}
	s.send("echo gpus=$CUDA_VISIBLE_DEVICES sum=$((6*7)) \u00e9t\u00e9\r")
	s.until("sum=42 \u00e9t\u00e9", 20*time.Second)
	if !strings.Contains(s.out.String(), "gpus=GPU-") {
		t.Fatalf("the shell does not see the lease's GPUs:\n%s", tail(s.out.String()))
	}
	resize := `{"resize":{"cols":132,"rows":40}}`
	if err := conn.Write(ctx, websocket.MessageText, []byte(resize)); err != nil {
		t.Fatal(err)
	}
	s.send("stty size\r")
	s.until("40 132", 10*time.Second)
	s.send("sleep 30; echo not-''interrupted\r")
	time.Sleep(300 * time.Millisecond)
	s.send("\x03echo after-ctrl-''c\r")
	s.until("after-ctrl-c", 10*time.Second)
	s.send("exit\r")
	_, _, err = conn.Read(ctx)
	for err == nil {
		_, _, err = conn.Read(ctx)
	}
	if strings.Contains(s.out.String(), "not-interrupted") {
		t.Fatal("Ctrl-C did not interrupt the command")
	}

	// From a terminal: highway shell LEASE (here typing from a pipe).
	t.Setenv("HIGHWAY_API_KEY", w.buyer.key)
	shellStdin = strings.NewReader("echo cli-$((6*7))\nexit 3\n")
	defer func() { shellStdin = os.Stdin }()
	var cliOut bytes.Buffer
	if err := cliShell(ctx, []string{w.lease, "--url", base}, &cliOut, io.Discard); err == nil || !strings.Contains(err.Error(), "status 3") {
		t.Fatalf("highway shell: %v, want the shell's exit status 3", err)
	}
	if !strings.Contains(cliOut.String(), "cli-42") {
		t.Fatalf("highway shell printed:\n%s", tail(cliOut.String()))
	}

	// The sessions are on the lease's record.
	var sessions []struct {
		UserID   string
		EndedAt  *time.Time
		BytesIn  int64
		BytesOut int64
	}
	waitFor(t, "the session's record", 10*time.Second, func() bool {
		sessions = sessions[:0]
		w.e.srv.Store.DB.Table("shell_sessions").Where("lease_id = ?", w.lease).Find(&sessions)
		return len(sessions) == 2 && sessions[0].EndedAt != nil && sessions[1].EndedAt != nil
	})
	if sessions[0].BytesIn == 0 || sessions[0].BytesOut == 0 {
		t.Fatalf("session recorded without its traffic: %+v", sessions[0])
	}
}

// BenchmarkShell measures, through marketplace and agent on this machine,
// a keystroke's round trip to its echo (the PTY's) and the rate a large
// output comes through.
func BenchmarkShell(b *testing.B) {
	w := startShellWorld(b)
	conn, _, err := dialShell(context.Background(), w.e.srv.URL(), w.buyer, "/api/v1/leases/"+w.lease+"/shell")
	if err != nil {
		b.Fatal(err)
	}
	s := &termConn{t: b, conn: conn}
	s.send("stty -echoctl; echo ready-''mark\r")
	s.until("ready-mark", 20*time.Second)
	const keys = 100
	var rtt time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		for k := 0; k < keys; k++ {
			c := string(rune('a' + k%26))
			s.out.Reset()
			s.send(c)
			s.until(c, 5*time.Second)
		}
		rtt += time.Since(start)
		s.send("\x15") // clear the line
	}
	const size = 40_000_000
	s.out.Reset()
	start := time.Now()
	s.send("head -c " + strconv.Itoa(size) + " /dev/zero | base64 -w 0; echo; echo done-''mark\r")
	n := s.until("done-mark", 120*time.Second)
	took := time.Since(start)
	b.ReportMetric(float64(rtt.Microseconds())/1000/float64(b.N*keys), "BENCH:shell_echo_rtt_ms:ms")
	b.ReportMetric(float64(n)/1e6/took.Seconds(), "BENCH:shell_throughput_mb_s:MB/s")
}
