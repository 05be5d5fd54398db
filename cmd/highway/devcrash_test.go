//go:build !race

// Built without -race only: the demo fleet proves Proof-of-Compute for
// real, and under the race detector it is too slow for its windows.

package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/highway-compute/highway/chain/app"
	chainclient "github.com/highway-compute/highway/chain/client"
	escrowtypes "github.com/highway-compute/highway/chain/x/escrow/types"
	"github.com/highway-compute/highway/procstate"
)

// TestMain lets the test binary stand in for the highway binary: the
// crash test runs `highway dev` as a child process it can kill -9.
func TestMain(m *testing.M) {
	if os.Getenv("HIGHWAY_TEST_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	if addr := os.Getenv("HIGHWAY_TEST_SERVE_HTTP"); addr != "" {
		serveTestWorkload(addr) // a lease's workload (ports_test.go)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// devProcess is `highway dev` running as a child of the test.
type devProcess struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when it has exited; err is then set
	// containers: it said demo workloads run in containers (set before
	// startDev returns).
	containers bool
	err        error
	url        string
}

// stop interrupts it (Ctrl-C) unless it has exited, and waits.
func (d *devProcess) stop() error {
	select {
	case <-d.exited:
	default:
		_ = d.cmd.Process.Signal(syscall.SIGINT)
		<-d.exited
	}
	return d.err
}

// startDev runs `highway dev` on dataDir with one demo machine and waits
// until it serves.
func startDev(t *testing.T, root, dataDir, highwayd, listen string) *devProcess {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "dev", "--data-dir", dataDir, "--fleet", "1", "--listen", listen, "--log-level", "warn")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "HIGHWAY_TEST_RUN_MAIN=1", "HIGHWAYD="+highwayd)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &devProcess{cmd: cmd, exited: make(chan struct{}), url: "http://" + listen}
	ready := make(chan struct{})
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(out)
		signalled := false
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if !signalled && strings.Contains(sc.Text(), "demo workloads run in containers") {
				d.containers = true
			}
			if !signalled && strings.Contains(sc.Text(), "Highway is running") {
				signalled = true
				close(ready)
			}
		}
		d.err = cmd.Wait()
		close(d.exited)
	}()
	select {
	case <-ready:
	case <-d.exited:
		t.Fatalf("highway dev exited during start-up: %v\n%s", d.err, log.String())
	case <-time.After(3 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("highway dev did not come up:\n%s", log.String())
	}
	return d
}

// TestDevSurvivesItsCrash kills `highway dev` with SIGKILL in the middle of
// a lease, as a closed terminal or the OOM killer would: the chain child
// must not be left running (the next start would find its ports taken),
// and the restart must resume the lease, its epochs clearing again with
// exact books.
func TestDevSurvivesItsCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("runs highway dev twice")
	}
	for _, port := range []string{"26656", "26657", "9090"} {
		if ln, err := net.Listen("tcp", "127.0.0.1:"+port); err != nil {
			t.Skipf("the dev chain's port %s is taken here (a make dev running?): %v", port, err)
		} else {
			_ = ln.Close()
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	highwayd := filepath.Join(tmp, "highwayd")
	build := exec.Command("go", "build", "-o", highwayd, "./cmd/highwayd")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build highwayd: %v\n%s", err, out)
	}
	dataDir := filepath.Join(tmp, "dev")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	_ = ln.Close()

	dev := startDev(t, root, dataDir, highwayd, listen)
	defer func() { _ = dev.stop() }()
	// The dev chain listens on loopback only, and serves no pprof.
	cfg, err := os.ReadFile(filepath.Join(dataDir, "chain", "config", "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), `laddr = "tcp://127.0.0.1:26656"`) || !strings.Contains(string(cfg), `pprof_laddr = ""`) {
		t.Fatal("the dev chain's config listens beyond loopback or serves pprof")
	}
	if conn, err := net.DialTimeout("tcp", "127.0.0.1:6060", time.Second); err == nil {
		conn.Close()
		t.Fatal("something answers on the pprof port 6060")
	}
	password, err := os.ReadFile(filepath.Join(dataDir, "dev-admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	api := devAPIKey(t, dev.url, "buyer@highway.local", strings.TrimSpace(string(password)))
	var offers struct {
		Offers []struct {
			ID    string `json:"id"`
			Count int64  `json:"gpus_free"`
		} `json:"offers"`
	}
	waitFor(t, "the demo machine's offer", 90*time.Second, func() bool {
		api.do(http.MethodGet, "/offers", nil, &offers)
		return len(offers.Offers) == 1
	})
	var placed struct {
		Order struct{ ID string } `json:"order"`
	}
	if code := api.do(http.MethodPost, "/orders", map[string]any{"type": "rent_now", "offer_id": offers.Offers[0].ID,
		"count": offers.Offers[0].Count, "hours": 1, "workload": map[string]string{"command": "echo cwd=$(pwd) home=$HOME; sleep 3600"}}, &placed); code != http.StatusCreated {
		t.Fatalf("rent: %d", code)
	}
	var order struct {
		Order struct {
			LeaseID string `json:"lease_id"`
			Status  string `json:"status"`
			Failure string `json:"failure"`
		} `json:"order"`
	}
	waitFor(t, "the lease", 60*time.Second, func() bool {
		api.do(http.MethodGet, "/orders/"+placed.Order.ID, nil, &order)
		return order.Order.LeaseID != ""
	})
	var lv leaseView
	waitFor(t, "an epoch cleared before the crash", 90*time.Second, func() bool {
		api.do(http.MethodGet, "/leases/"+order.Order.LeaseID, nil, &lv)
		return lv.count("cleared") >= 1
	})
	chainLease := lv.Lease.ChainLeaseID
	// The demo machine ran the buyer's command in a container where an
	// engine can run one (CI's podman), else in a directory of its own
	// under the dev state; never in the checkout.
	var logs struct {
		Lines []struct {
			Text string `json:"text"`
		} `json:"lines"`
	}
	var line string
	waitFor(t, "the workload's output", 30*time.Second, func() bool {
		api.do(http.MethodGet, "/leases/"+order.Order.LeaseID+"/logs", nil, &logs)
		for _, l := range logs.Lines {
			if strings.HasPrefix(l.Text, "cwd=") {
				line = l.Text
			}
		}
		return line != ""
	})
	switch {
	case dev.containers:
		if line != "cwd=/ home=/" {
			t.Fatalf("the workload's container: %q, want its own root (cwd=/ home=/)", line)
		}
	case !strings.HasPrefix(line, "cwd="+dataDir) || !strings.Contains(line, "home="+dataDir):
		t.Fatalf("the workload ran outside the dev state: %q (want under %s)", line, dataDir)
	}

	// The crash. The chain child must go with its parent.
	raw, err := os.ReadFile(filepath.Join(dataDir, "chain.pid"))
	if err != nil {
		t.Fatal(err)
	}
	chainPID, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err := dev.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-dev.exited
	defer func() { _ = syscall.Kill(chainPID, syscall.SIGKILL) }() // should this test fail, no orphan
	waitFor(t, "the chain child to exit after its parent was killed", 20*time.Second, func() bool {
		return !procstate.Running(chainPID) // an orphan's zombie has exited too
	})

	dev = startDev(t, root, dataDir, highwayd, listen)
	c, err := chainclient.Dial(chainclient.Config{GRPC: devChainGRPC, RPC: devChainRPC, ChainID: devChainID, GasPrice: "0" + app.BondDenom})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	before, err := c.Lease(context.Background(), chainLease)
	if err != nil {
		t.Fatal(err)
	}
	var after escrowtypes.Lease
	waitFor(t, "two more epochs cleared after the restart", 120*time.Second, func() bool {
		after, err = c.Lease(context.Background(), chainLease)
		return err == nil && after.EpochsCleared >= before.EpochsCleared+2
	})
	if after.Status != escrowtypes.LEASE_STATUS_ACTIVE {
		t.Fatalf("lease after the restart: %s", after.String())
	}
	if err := after.CheckBooks(); err != nil {
		t.Fatal(err)
	}
	totals, err := c.Escrow.EscrowTotals(context.Background(), &escrowtypes.QueryEscrowTotalsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if held := totals.Remaining.Add(totals.Pending).Add(totals.Frozen); !totals.ModuleBalance.Equal(held) {
		t.Fatalf("escrow after the crash: module %s, held %s", totals.ModuleBalance, held)
	}
	// The marketplace follows: its view of the lease shows the new epochs.
	waitFor(t, "the marketplace to index the new epochs", 30*time.Second, func() bool {
		api.do(http.MethodGet, "/leases/"+order.Order.LeaseID, nil, &lv)
		return int64(lv.count("cleared")) >= int64(after.EpochsCleared)
	})
	t.Logf("lease %d: %d epochs cleared before the crash, %d after the restart; books exact", chainLease, before.EpochsCleared, after.EpochsCleared)

	if err := dev.stop(); err != nil {
		t.Errorf("highway dev stopped with %v", err)
	}
}

// devAPIKey logs in to a running marketplace as a user and creates an
// API key from the account page, as a person would.
func devAPIKey(t *testing.T, base, email, password string) apiClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	wantStatus(t, b.login(email, password), http.StatusSeeOther)
	p := b.submit("/account", "/account/api-keys", url.Values{"name": {fmt.Sprint("crash-test-", time.Now().UnixNano())}})
	m := regexp.MustCompile(`data-testid="api-key-new">([^<]+)<`).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no API key on the account page (status %d)", p.status)
	}
	return apiClient{t: t, base: base, key: m[1]}
}
