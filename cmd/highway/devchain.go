package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"

	"github.com/highway-compute/highway/chain/app"
	chainclient "github.com/highway-compute/highway/chain/client"
	escrowtypes "github.com/highway-compute/highway/chain/x/escrow/types"
	"github.com/highway-compute/highway/procstate"
	"github.com/highway-compute/highway/provider-agent/chainlink"
)

// The dev chain is a real single-validator highwayd, run as a supervised
// child process with its state under <data-dir>/chain, so a restart of
// `highway dev` resumes the same chain (an in-process test network keeps
// its state in memory and could not).
const (
	devChainID   = "highway-dev"
	devChainRPC  = "http://127.0.0.1:26657"
	devChainGRPC = "127.0.0.1:9090"
	// devEpoch is the dev escrow params' epoch: 10 blocks of 1 s.
	devEpoch = 10 * time.Second
)

type devChain struct {
	home    string
	cmd     *exec.Cmd
	exited  chan struct{} // closed when highwayd has exited
	exitErr error
	log     string
	client  *chainclient.Client
	pidFile string
	// keys of the accounts chain-init.sh funded: buyer (the dev faucet),
	// provider, arbiter.
	keys map[string]*secp256k1.PrivKey
}

// startDevChain initialises the chain once (scripts/chain-init.sh) and
// starts highwayd, waiting until it serves blocks.
func startDevChain(ctx context.Context, dataDir, highwayd string, progress func(string)) (*devChain, error) {
	if _, err := os.Stat(highwayd); err != nil {
		return nil, fmt.Errorf("the chain binary %s is missing: build it with `go build -o %s ./cmd/highwayd` (make dev does)", highwayd, highwayd)
	}
	home, _ := filepath.Abs(filepath.Join(dataDir, "chain"))
	d := &devChain{home: home, log: filepath.Join(dataDir, "chain.log"), keys: map[string]*secp256k1.PrivKey{}}
	if _, err := os.Stat(filepath.Join(home, "config", "genesis.json")); errors.Is(err, os.ErrNotExist) {
		progress("initialising the chain (once)")
		script := filepath.Join("scripts", "chain-init.sh")
		if _, err := os.Stat(script); err != nil {
			return nil, errors.New("scripts/chain-init.sh not found: run highway dev from the repository root (make dev)")
		}
		cmd := exec.CommandContext(ctx, "bash", script, home)
		cmd.Env = append(os.Environ(), "HIGHWAYD="+highwayd, "CHAIN_ID="+devChainID)
		if out, err := cmd.CombinedOutput(); err != nil {
			_ = os.RemoveAll(home)
			return nil, fmt.Errorf("chain init failed: %w\n%s", err, lastLines(string(out), 15))
		}
	}
	for _, name := range []string{"buyer", "provider", "arbiter"} {
		raw, err := os.ReadFile(filepath.Join(home, name+".key.json"))
		if err != nil {
			return nil, fmt.Errorf("read the dev %s key: %w (the chain state is damaged: highway dev --reset)", name, err)
		}
		var k struct {
			Mnemonic string `json:"mnemonic"`
		}
		if err := json.Unmarshal(raw, &k); err != nil || k.Mnemonic == "" {
			return nil, fmt.Errorf("the dev %s key file has no mnemonic (the chain state is damaged: highway dev --reset)", name)
		}
		key, err := chainlink.KeyFromMnemonic(k.Mnemonic)
		if err != nil {
			return nil, err
		}
		d.keys[name] = key
	}
	// A chain an earlier `highway dev` left running (it was killed before
	// it could stop it) holds the ports and the state: stop it first.
	pidFile := filepath.Join(dataDir, "chain.pid")
	if stopped, err := stopOrphan(pidFile, home); err != nil {
		return nil, err
	} else if stopped > 0 {
		progress(fmt.Sprintf("stopped the chain an earlier highway dev left running (pid %d)", stopped))
	}
	logf, err := os.OpenFile(d.log, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	// Not tied to ctx: the chain stops last, after the marketplace, in stop.
	// Loopback only, whatever the config says (a dev chain has no peers),
	// and no pprof listener.
	d.cmd = exec.CommandContext(context.WithoutCancel(ctx), highwayd, "start", "--home", home,
		"--p2p.laddr", "tcp://127.0.0.1:26656", "--rpc.pprof_laddr", "")
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	// Its own process group: Ctrl-C reaches highway, which stops the
	// chain after the marketplace, in order. If highway itself dies (kill
	// -9, the OOM killer, a closed terminal), the kernel tells the chain to
	// stop too (Linux); the pid file catches it on other systems.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	dieWithParent(d.cmd.SysProcAttr)
	if err := d.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start highwayd: %w", err)
	}
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(d.cmd.Process.Pid)), 0o600); err != nil {
		_ = d.cmd.Process.Kill()
		logf.Close()
		return nil, fmt.Errorf("write %s: %w", pidFile, err)
	}
	d.pidFile = pidFile
	d.exited = make(chan struct{})
	go func() { d.exitErr = d.cmd.Wait(); logf.Close(); close(d.exited) }()

	progress("starting the chain")
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-d.exited:
			raw, _ := os.ReadFile(d.log)
			return nil, fmt.Errorf("highwayd exited during start-up (%w): is another chain using ports 26656/26657/9090? Log (%s):\n%s", d.exitErr, d.log, lastLines(string(raw), 15))
		case <-ctx.Done():
			d.stop()
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		if d.client == nil {
			c, err := chainclient.Dial(chainclient.Config{GRPC: devChainGRPC, RPC: devChainRPC, ChainID: devChainID, GasPrice: "0" + app.BondDenom})
			if err == nil {
				d.client = c
			}
		}
		if d.client != nil {
			if h, _, err := d.client.LatestHeight(ctx); err == nil && h >= 2 {
				progress(fmt.Sprintf("chain is producing blocks (height %d)", h))
				if err := d.checkParams(ctx); err != nil {
					d.stop()
					return nil, err
				}
				return d, nil
			}
		}
		if time.Now().After(deadline) {
			d.stop()
			return nil, fmt.Errorf("the chain did not produce blocks within 90 s; see %s", d.log)
		}
	}
}

// checkParams refuses a chain whose escrow params this highwayd would
// not accept: state created by an older highwayd (before the proof window
// was measured in block time, say) decodes with the new fields zero, and
// its leases would run on terms nobody chose.
func (d *devChain) checkParams(ctx context.Context) error {
	res, err := d.client.Escrow.Params(ctx, &escrowtypes.QueryParamsRequest{})
	if err != nil {
		return fmt.Errorf("read the chain's escrow params: %w", err)
	}
	if err := res.Params.Validate(); err != nil {
		return fmt.Errorf("the dev chain in %s was created by an older highwayd (%w): run `highway dev --reset` (or `make dev ARGS=--reset`) to start afresh", d.home, err)
	}
	return nil
}

// stop ends highwayd: SIGTERM, then SIGKILL after 10 s.
func (d *devChain) stop() {
	if d.client != nil {
		_ = d.client.Close()
	}
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
	if d.pidFile != "" {
		_ = os.Remove(d.pidFile)
	}
}

// stopOrphan stops the highwayd a pid file names, if it still runs and is
// this data directory's chain (its command line names the chain's home: a
// reused pid of another program is left alone). It returns the pid it
// stopped (0 if none).
func stopOrphan(pidFile, home string) (int, error) {
	raw, err := os.ReadFile(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 1 {
		return 0, os.Remove(pidFile)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(home)) {
		// Gone, or another program now: nothing of ours runs.
		return 0, os.Remove(pidFile)
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return 0, err
	}
	_ = p.Signal(syscall.SIGTERM)
	for i := 0; i < 100; i++ { // up to 10 s for a clean stop
		if !procstate.Running(pid) { // gone, or a zombie: its locks and ports are free
			return pid, os.Remove(pidFile)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = p.Kill()
	time.Sleep(500 * time.Millisecond)
	return pid, os.Remove(pidFile)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.TrimSpace([]byte(strings.Join(lines, "\n"))))
}
