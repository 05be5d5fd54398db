//go:build !race

package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// portsClient reaches the ports domain as a browser would: every
// *.localhost host is the loopback. It follows redirects with jar's
// cookies.
func portsClient(jar http.CookieJar) *http.Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, _ := net.SplitHostPort(addr)
		if strings.HasSuffix(host, ".localhost") {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	return &http.Client{Jar: jar, Transport: tr, Timeout: 30 * time.Second}
}

// answered is where a request ended up (after redirects) and the
// headers of its answer.
type answered struct {
	url    *url.URL
	header http.Header
}

// portGet fetches u with the headers h and returns the status and body.
func portGet(t testing.TB, c *http.Client, u string, h http.Header) (int, string, answered) {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, u, nil)
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), answered{url: resp.Request.URL, header: resp.Header}
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startPortWorld rents the GPU to a buyer whose workload serves HTTP on
// the returned port (serveTestWorkload).
func startPortWorld(t testing.TB) (w *shellWorld, buyerBrowser *browser, port int) {
	w = startShellProvider(t)
	buyerBrowser, buyer := w.e.user("buyer@example.com", "buyer")
	return w, buyerBrowser, w.rentServer(t, buyer)
}

// rentServer rents the GPU to buyer for a workload serving HTTP on the
// port it returns, once it listens. The lease says "running" when the
// process has started; the test binary it execs needs a moment more
// before it listens, and a forward tried in between is refused (a
// 502 that is right for the marketplace and wrong for the test).
func (w *shellWorld) rentServer(t testing.TB, buyer apiClient) int {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	w.rentRunning(t, buyer, "echo workload up; HIGHWAY_TEST_SERVE_HTTP="+addr+" exec "+self)
	waitFor(t, "the workload listening on "+addr, 30*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	return port
}

// TestPortForwardEndToEnd: the buyer forwards a port of a running
// workload (the exec runner on the real loop) and reaches it at its own
// origin, by API key and by the browser's session; WebSockets pass; the
// marketplace's credentials never reach the workload; another buyer, a
// visitor and another forward's cookie are refused; a closed forward and
// a refused port answer with why.
func TestPortForwardEndToEnd(t *testing.T) {
	w, buyerBrowser, port := startPortWorld(t)
	buyer, lease := w.buyer, w.lease
	_, stranger := w.e.user("stranger@example.com", "buyer")

	// Forwarding: the buyer's alone, a real port.
	type fwd struct {
		Port struct {
			Port int
			URL  string
		}
	}
	var f fwd
	if code := stranger.do(http.MethodPost, "/leases/"+lease+"/ports", map[string]int{"port": port}, &f); code != http.StatusNotFound {
		t.Fatalf("a stranger forwards the buyer's port: %d, want 404", code)
	}
	if code := buyer.do(http.MethodPost, "/leases/"+lease+"/ports", map[string]int{"port": 0}, nil); code != http.StatusUnprocessableEntity {
		t.Fatalf("port 0: %d, want 422", code)
	}
	if code := buyer.do(http.MethodPost, "/leases/"+lease+"/ports", map[string]int{"port": port}, &f); code != http.StatusCreated {
		t.Fatalf("forward: %d", code)
	}
	if !strings.Contains(f.Port.URL, ".ports.localhost:") {
		t.Fatalf("forward URL %q is not on the ports domain", f.Port.URL)
	}
	pu, _ := url.Parse(f.Port.URL)
	c := portsClient(nil)
	bearer := func(key string) http.Header { return http.Header{"Authorization": {"Bearer " + key}} }

	// By API key: the workload answers, and sees neither the key nor the
	// ports cookie, only the host the client used.
	code, body, _ := portGet(t, c, f.Port.URL+"echo?q=1", bearer(buyer.key))
	if code != http.StatusOK {
		t.Fatalf("the buyer's request: %d %s", code, body)
	}
	var seen map[string]string
	if err := json.Unmarshal([]byte(body), &seen); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if seen["path"] != "/echo?q=1" || seen["host"] != pu.Host || seen["authorization"] != "" {
		t.Fatalf("the workload saw %+v", seen)
	}
	if code, body, _ = portGet(t, c, f.Port.URL+"big", bearer(buyer.key)); code != http.StatusOK || len(body) != 1<<20 {
		t.Fatalf("a 1 MiB answer: %d, %d bytes", code, len(body))
	}

	// Refused: another buyer (as if no forward), a visitor, an unknown
	// forward.
	if code, _, _ := portGet(t, c, f.Port.URL+"echo", bearer(stranger.key)); code != http.StatusNotFound {
		t.Fatalf("another buyer's key: %d, want 404", code)
	}
	if code, _, _ := portGet(t, c, f.Port.URL+"echo", nil); code != http.StatusUnauthorized {
		t.Fatalf("no credentials: %d, want 401", code)
	}
	noFollow := portsClient(nil)
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	code, _, resp := portGet(t, noFollow, f.Port.URL+"echo", http.Header{"Accept": {"text/html"}})
	if code != http.StatusSeeOther || !strings.HasPrefix(resp.header.Get("Location"), w.e.srv.URL()+"/ports/") {
		t.Fatalf("a browser without the cookie: %d to %q, want a redirect to the marketplace", code, resp.header.Get("Location"))
	}

	// WebSockets pass through.
	ws, wsResp, err := websocket.Dial(context.Background(), strings.Replace(f.Port.URL, "http", "ws", 1)+"ws",
		&websocket.DialOptions{HTTPClient: c, HTTPHeader: bearer(buyer.key)})
	if wsResp != nil && wsResp.Body != nil {
		_ = wsResp.Body.Close()
	}
	if err != nil {
		t.Fatalf("a WebSocket through the forward: %v", err)
	}
	if err := ws.Write(context.Background(), websocket.MessageText, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := ws.Read(context.Background()); err != nil || string(msg) != "echo: ping" {
		t.Fatalf("WebSocket echo: %q %v", msg, err)
	}
	_ = ws.Close(websocket.StatusNormalClosure, "")

	// The browser: the lease page's link goes through the marketplace's
	// session, which mints the forward's own cookie; the stranger's
	// session gets nothing.
	bc := portsClient(buyerBrowser.c.Jar)
	code, body, resp = portGet(t, bc, w.e.srv.URL()+"/ports/"+strings.SplitN(pu.Hostname(), ".", 2)[0]+"/open?next=/echo", nil)
	if code != http.StatusOK || resp.url.Host != pu.Host {
		t.Fatalf("the buyer's browser: %d at %s: %s", code, resp.url, body)
	}
	_ = json.Unmarshal([]byte(body), &seen)
	if seen["cookie"] != "" {
		t.Fatalf("the ports cookie reached the workload: %q", seen["cookie"])
	}
	var portCookieValue string
	for _, ck := range bc.Jar.Cookies(pu) {
		if ck.Name == "hw_port" {
			portCookieValue = ck.Value
		}
	}
	if portCookieValue == "" {
		t.Fatal("no ports cookie was set")
	}

	// A second forward, on a port nothing listens on: its error says so,
	// and the first forward's cookie does not open it.
	var f2 fwd
	if code := buyer.do(http.MethodPost, "/leases/"+lease+"/ports", map[string]int{"port": freePort(t)}, &f2); code != http.StatusCreated {
		t.Fatalf("second forward: %d", code)
	}
	if code, body, _ := portGet(t, c, f2.Port.URL+"echo", bearer(buyer.key)); code != http.StatusBadGateway || !strings.Contains(body, "refused") {
		t.Fatalf("a port nothing listens on: %d %s, want 502 saying the connection was refused", code, body)
	}
	if code, _, _ := portGet(t, c, f2.Port.URL+"echo", http.Header{"Cookie": {"hw_port=" + portCookieValue}}); code != http.StatusUnauthorized {
		t.Fatalf("one forward's cookie on another: %d, want 401", code)
	}

	// Closed: refused with why, by key and by cookie.
	if code := stranger.do(http.MethodDelete, "/leases/"+lease+"/ports/"+strconv.Itoa(port), nil, nil); code != http.StatusNotFound {
		t.Fatalf("a stranger closes the forward: %d, want 404", code)
	}
	if code := buyer.do(http.MethodDelete, "/leases/"+lease+"/ports/"+strconv.Itoa(port), nil, nil); code != http.StatusOK {
		t.Fatalf("close: %d", code)
	}
	if code, body, _ := portGet(t, c, f.Port.URL+"echo", bearer(buyer.key)); code != http.StatusGone {
		t.Fatalf("a closed forward: %d %s, want 410", code, body)
	}

	// The lease's end closes what is left.
	if code := buyer.do(http.MethodPost, "/leases/"+lease+"/close", nil, nil); code != http.StatusOK {
		t.Fatalf("close the lease: %d", code)
	}
	waitFor(t, "the lease's forwards closed", 30*time.Second, func() bool {
		code, _, _ := portGet(t, c, f2.Port.URL+"echo", bearer(buyer.key))
		return code == http.StatusGone
	})
}

// BenchmarkPortForward measures a forwarded port through marketplace and
// agent on this machine: a request's round trip on a kept-alive tunnel,
// the first request of a new connection (the agent dials back), and the
// rate a large answer comes through.
func BenchmarkPortForward(b *testing.B) {
	w, _, port := startPortWorld(b)
	var f struct{ Port struct{ URL string } }
	if code := w.buyer.do(http.MethodPost, "/leases/"+w.lease+"/ports", map[string]int{"port": port}, &f); code != http.StatusCreated {
		b.Fatalf("forward: %d", code)
	}
	auth := http.Header{"Authorization": {"Bearer " + w.buyer.key}}
	var dial time.Duration
	const dials = 5
	for i := 0; i < dials; i++ {
		c := portsClient(nil) // a new pool: the first request dials
		start := time.Now()
		if code, body, _ := portGet(b, c, f.Port.URL+"echo", auth); code != http.StatusOK {
			b.Fatalf("%d %s", code, body)
		}
		dial += time.Since(start)
		c.CloseIdleConnections()
	}
	c := portsClient(nil)
	portGet(b, c, f.Port.URL+"echo", auth)
	const reqs = 200
	var rtt time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		for k := 0; k < reqs; k++ {
			if code, _, _ := portGet(b, c, f.Port.URL+"echo", auth); code != http.StatusOK {
				b.Fatalf("request %d: %d", k, code)
			}
		}
		rtt += time.Since(start)
	}
	const bigs = 64
	start := time.Now()
	n := 0
	for k := 0; k < bigs; k++ {
		_, body, _ := portGet(b, c, f.Port.URL+"big", auth)
		n += len(body)
	}
	took := time.Since(start)
	b.ReportMetric(float64(rtt.Microseconds())/1000/float64(b.N*reqs), "BENCH:port_forward_rtt_ms:ms")
	b.ReportMetric(float64(dial.Microseconds())/1000/dials, "BENCH:port_forward_first_request_ms:ms")
	b.ReportMetric(float64(n)/1e6/took.Seconds(), "BENCH:port_forward_throughput_mb_s:MB/s")
}
