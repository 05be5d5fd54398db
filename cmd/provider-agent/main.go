// Command provider-agent runs on a provider's GPU machine: it enrolls with
// the marketplace, reports the GPUs NVML sees, runs leased workloads and
// proves their epochs. This file is wiring only: flags, environment and the
// packages under provider-agent/.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/highway-compute/highway/poc"
	"github.com/highway-compute/highway/protocol"
	"github.com/highway-compute/highway/provider-agent/agent"
	"github.com/highway-compute/highway/provider-agent/client"
	"github.com/highway-compute/highway/provider-agent/gpu"
	"github.com/highway-compute/highway/provider-agent/metrics"
	"github.com/highway-compute/highway/provider-agent/probe"
	"github.com/highway-compute/highway/provider-agent/prover"
	"github.com/highway-compute/highway/provider-agent/runner"
	"github.com/highway-compute/highway/provider-agent/state"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

// env is the process environment and the NVML constructor, injectable so
// tests can run every command in-process.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	newNVML        func() nvml.Interface
}

func main() {
	superviseIfPID1()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, newNVML: func() nvml.Interface { return nvml.New() }})
	stop()
	os.Exit(code)
}

const usage = `provider-agent lists a machine's NVIDIA GPUs on the Highway marketplace.

Usage: provider-agent <command> [flags]

Commands:
  enroll     register this machine with a one-time token from the provider console
  run        report GPUs, run leased workloads, prove epochs (until stopped)
  gpus       show the GPUs NVML sees (like nvidia-smi -L, with details)
  selftest   run the Proof-of-Compute prover for a while and print its rate
  version    print the agent's version

Run "provider-agent <command> --help" for a command's flags. Every flag can
also be set through the environment variable named in its help.
`

// Exit codes: 0 success, 1 failure, 2 usage error.
func run(ctx context.Context, args []string, e env) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return 2
	}
	cmds := map[string]func(context.Context, []string, env) error{
		"enroll": cmdEnroll, "run": cmdRun, "gpus": cmdGPUs, "selftest": cmdSelftest,
		"version": func(context.Context, []string, env) error {
			fmt.Fprintf(e.stdout, "provider-agent %s (protocol v%d)\n", version, protocol.Version)
			return nil
		},
	}
	name := args[0]
	if name == "-h" || name == "--help" || name == "help" {
		fmt.Fprint(e.stdout, usage)
		return 0
	}
	cmd, ok := cmds[name]
	if !ok {
		fmt.Fprintf(e.stderr, "unknown command %q\n\n%s", name, usage)
		return 2
	}
	err := cmd(ctx, args[1:], e)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		// A bare errUsage means the flag set has already printed the
		// problem; only a wrapped one carries a message of its own.
		if err != errUsage { //nolint:errorlint // identity check on purpose: bare vs wrapped errUsage
			fmt.Fprintf(e.stderr, "provider-agent %s: %v\n", name, err)
		}
		return 2
	default:
		fmt.Fprintf(e.stderr, "provider-agent %s: %v\n", name, err)
		return 1
	}
}

// openGPUs opens NVML, or a fake profile when one is named.
func openGPUs(e env, fake string) (*gpu.Session, error) {
	var lib nvml.Interface
	if fake != "" {
		f, err := gpu.FakeProfile(fake)
		if err != nil {
			return nil, err
		}
		lib = f
	} else {
		lib = e.newNVML()
	}
	return gpu.Open(lib)
}

func cmdGPUs(_ context.Context, args []string, e env) error {
	f := newFlags("gpus", "Shows the GPUs NVML sees and what the agent would report for them.", e)
	fake := f.str("fake-gpus", "HIGHWAY_FAKE_GPUS", "", "use simulated GPUs from this profile (tests and demos only; e.g. dgxh100, h100x8, rtx4090x2)")
	asJSON := f.Bool("json", false, "print the inventory as JSON")
	if err := f.parse(args); err != nil {
		return err
	}
	s, err := openGPUs(e, *fake)
	if err != nil {
		return err
	}
	defer func() { _ = s.Close() }()
	inv, err := s.Snapshot()
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{
			"driver_version": inv.DriverVersion, "cuda_version": inv.CUDAVersion, "nvml_version": inv.NVMLVersion,
			"simulated": inv.Simulated, "profile": inv.Profile, "gpus": inv.GPUs,
		})
	}
	sim := ""
	if inv.Simulated {
		sim = fmt.Sprintf("  [SIMULATED: fake profile %s]", inv.Profile)
	}
	fmt.Fprintf(e.stdout, "Driver %s, CUDA %s, %d GPU(s)%s\n", inv.DriverVersion, inv.CUDAVersion, len(inv.GPUs), sim)
	for _, g := range inv.GPUs {
		fmt.Fprintf(e.stdout, "GPU %d: %s (UUID: %s)\n", g.Index, g.Name, g.UUID)
		fmt.Fprintf(e.stdout, "  class %s, memory %d/%d MiB, util %d%%, %d C, power %d/%d W, ECC uncorrected %d, PCIe gen %d x%d, MIG %v",
			g.Class, g.MemoryUsedMiB, g.MemoryTotalMiB, g.UtilizationPct, g.TemperatureC, g.PowerMW/1000, g.PowerLimitMW/1000,
			g.ECCUncorrected, g.PCIeGen, g.PCIeWidth, g.MIGEnabled)
		if len(g.Unsupported) > 0 {
			fmt.Fprintf(e.stdout, ", not reported: %s", strings.Join(g.Unsupported, ","))
		}
		fmt.Fprintln(e.stdout)
	}
	return nil
}

func cmdEnroll(ctx context.Context, args []string, e env) error {
	f := newFlags("enroll", "Generates this agent's ed25519 key, registers it with the one-time token from the\nprovider console and stores it (0600) in the state directory.", e)
	server := f.str("server", "HIGHWAY_SERVER", "", "marketplace URL, e.g. https://highway.example (required)")
	token := f.str("token", "HIGHWAY_ENROLL_TOKEN", "", "one-time enrollment token from the provider console (required)")
	dir := f.str("state-dir", "HIGHWAY_STATE_DIR", defaultStateDir(), "state directory (key and enrollment)")
	fake := f.str("fake-gpus", "HIGHWAY_FAKE_GPUS", "", "use simulated GPUs from this profile (tests and demos only)")
	host, _ := os.Hostname()
	hostname := f.str("hostname", "HIGHWAY_HOSTNAME", host, "machine name shown in the console")
	if err := f.parse(args); err != nil {
		return err
	}
	if *server == "" || *token == "" {
		f.Usage()
		return fmt.Errorf("--server and --token are required: %w", errUsage)
	}
	s, err := openGPUs(e, *fake)
	if err != nil {
		return err
	}
	inv, err := s.Snapshot()
	_ = s.Close()
	if err != nil {
		return err
	}
	api := &client.Client{BaseURL: *server, UserAgent: userAgent()}
	st, err := agent.Enroll(ctx, api, state.Dir{Path: *dir}, agent.EnrollRequest{
		ServerURL: *server, Token: *token, Hostname: *hostname, Version: version, Inventory: inv, Rand: rand.Reader,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Enrolled as agent %s (machine %s) with %d GPU(s). Key and state in %s.\nStart it with: provider-agent run --state-dir %s\n",
		st.AgentID, st.MachineID, len(inv.GPUs), *dir, *dir)
	return nil
}

func userAgent() string { return "provider-agent/" + version }

func cmdRun(ctx context.Context, args []string, e env) error {
	f := newFlags("run", "Reports GPUs every heartbeat, runs leased workloads and serves metrics until stopped\n(SIGINT/SIGTERM stops the workloads and exits).", e)
	dir := f.str("state-dir", "HIGHWAY_STATE_DIR", defaultStateDir(), "state directory written by enroll")
	fake := f.str("fake-gpus", "HIGHWAY_FAKE_GPUS", "", "use simulated GPUs from this profile (tests and demos only; reported as simulated)")
	metricsAddr := f.str("metrics-addr", "HIGHWAY_METRICS_ADDR", "127.0.0.1:9400", "Prometheus /metrics listen address; empty disables")
	allowExec := f.boolean("allow-exec", "HIGHWAY_ALLOW_EXEC", false, "enable the exec driver: buyers' commands run directly on this host (UNSAFE for untrusted buyers, see docs/provider.md)")
	docker := f.boolean("docker", "HIGHWAY_DOCKER", true, "enable the docker driver (needs Docker and the NVIDIA Container Toolkit)")
	dockerMem := f.str("docker-memory", "HIGHWAY_DOCKER_MEMORY", "", "memory limit per container, e.g. 64g")
	dockerCPUs := f.str("docker-cpus", "HIGHWAY_DOCKER_CPUS", "", "CPU limit per container, e.g. 16")
	dockerPids := f.str("docker-pids-limit", "HIGHWAY_DOCKER_PIDS_LIMIT", "4096", "process limit per container")
	dockerShm := f.str("docker-shm-size", "HIGHWAY_DOCKER_SHM_SIZE", "", "shared memory per container, e.g. 16g (PyTorch data loaders need more than the default 64m)")
	dockerImage := f.str("docker-default-image", "HIGHWAY_DOCKER_DEFAULT_IMAGE", "", "image that runs workloads given as a command (sh -c), so they get a container too; empty: commands need --allow-exec")
	dockerBin := f.str("docker-binary", "HIGHWAY_DOCKER_BINARY", "docker", "the container engine's docker-compatible CLI: docker, or podman")
	maxImageGB := f.str("max-image-gb", "HIGHWAY_MAX_IMAGE_GB", "20", "largest image a buyer may run, in GB (10^9 bytes) as its registry lists it; larger ones are refused before any download")
	pullTimeout := f.duration("pull-timeout", "HIGHWAY_PULL_TIMEOUT", runner.DefaultPullTimeout, "how long one image pull may take")
	registryPrivate := f.boolean("registry-allow-private", "HIGHWAY_REGISTRY_ALLOW_PRIVATE", false, "let images come from registries on loopback or private addresses (a local registry for tests); off, a buyer cannot make the agent reach this host's network")
	dockerDevices := f.str("docker-devices", "HIGHWAY_DOCKER_DEVICES", runner.DevicesGPUs, "how leased GPUs reach a container: gpus (Docker + NVIDIA Container Toolkit), cdi (Podman, or Docker with CDI), none (no GPUs: tests and demos only)")
	interval := f.duration("heartbeat-interval", "HIGHWAY_HEARTBEAT_INTERVAL", 0, "heartbeat interval; 0 uses the marketplace's (default 10s)")
	grace := f.duration("stop-grace", "HIGHWAY_STOP_GRACE", 10*time.Second, "time a stopped workload gets between SIGTERM and SIGKILL")
	extensions := f.boolean("extensions", "HIGHWAY_EXTENSIONS", true, "sign buyers' extensions of the leases this machine runs, at each lease's own price; turn off ahead of maintenance")
	maxExtend := f.str("max-extend-epochs", "HIGHWAY_MAX_EXTEND_EPOCHS", "0", "the most epochs one extension may add; 0: up to the chain's limit")
	logLevel := f.str("log-level", "HIGHWAY_LOG_LEVEL", "info", "debug, info, warn or error")
	chainGRPC := f.str("chain-grpc", "HIGHWAY_CHAIN_GRPC", "", "highwayd gRPC address (host:port), or several comma-separated (failover); with --chain-rpc and --chain-id enables proving on chain")
	chainRPC := f.str("chain-rpc", "HIGHWAY_CHAIN_RPC", "", "highwayd CometBFT RPC URL, e.g. http://127.0.0.1:26657, or several comma-separated (failover)")
	chainID := f.str("chain-id", "HIGHWAY_CHAIN_ID", "", "the chain id quotes and proofs are bound to")
	gasPrice := f.str("gas-price", "HIGHWAY_GAS_PRICE", "0uhwy", "gas price for proof transactions")
	keyFile := f.str("provider-key-file", "HIGHWAY_PROVIDER_KEY_FILE", "", "file (mode 0600) holding the provider's mnemonic; or set HIGHWAY_PROVIDER_MNEMONIC")
	if err := f.parse(args); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))

	sd := state.Dir{Path: *dir}
	st, err := sd.Load()
	if err != nil {
		return err
	}
	key, err := sd.LoadKey()
	if err != nil {
		return err
	}
	sess, err := openGPUs(e, *fake)
	if err != nil {
		return err
	}
	defer func() { _ = sess.Close() }()
	inv, err := sess.Snapshot()
	if err != nil {
		return err
	}
	if inv.Simulated {
		logger.Warn("SIMULATED GPUs: every report says so", "profile", inv.Profile)
	}

	var drivers []runner.Driver
	if *docker {
		switch *dockerDevices {
		case runner.DevicesGPUs, runner.DevicesCDI:
		case runner.DevicesNone:
			logger.Warn("containers get no GPU devices (--docker-devices none): for tests and demos only")
		default:
			return fmt.Errorf("--docker-devices %q: want gpus, cdi or none", *dockerDevices)
		}
		pids, _ := strconv.Atoi(*dockerPids)
		gb, err := strconv.ParseInt(*maxImageGB, 10, 64)
		if err != nil || gb < 1 || gb > 10_000 {
			return fmt.Errorf("--max-image-gb %q: want a whole number of GB, 1..10000", *maxImageGB)
		}
		pull := &runner.Puller{Binary: *dockerBin, MaxBytes: gb * 1_000_000_000, Timeout: *pullTimeout, AllowPrivate: *registryPrivate}
		d := &runner.Docker{Binary: *dockerBin, Devices: *dockerDevices, Memory: *dockerMem, CPUs: *dockerCPUs, PidsLimit: pids, ShmSize: *dockerShm,
			DefaultImage: *dockerImage, Pull: pull, Owner: st.AgentID}
		if *dockerImage != "" {
			// Containers run with --pull never; the operator's own default
			// image is fetched now, by the engine with the operator's logins.
			pctx, cancel := context.WithTimeout(ctx, *pullTimeout)
			err := runner.EnsureImage(pctx, *dockerBin, *dockerImage)
			cancel()
			if err != nil {
				return fmt.Errorf("--docker-default-image: %w", err)
			}
		}
		// Containers a previous run left: those still running are adopted
		// when the marketplace assigns their lease again (the buyer's
		// workload survives an agent crash), the rest are removed, and
		// what no lease claims is removed once the agent has caught up.
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		kept, removed, err := d.Survey(cctx)
		cancel()
		switch {
		case err != nil:
			logger.Warn("could not look for leftover containers; is the engine running?", "binary", *dockerBin, "err", err)
		case kept+removed > 0:
			logger.Info("containers a previous run left", "running_kept_for_adoption", kept, "ended_removed", removed)
		}
		drivers = append(drivers, d)
	}
	if *allowExec {
		logger.Warn("exec driver enabled: buyers' commands run directly on this host; only for trusted buyers")
		drivers = append(drivers, &runner.Exec{WorkRoot: *dir + "/work"})
	}
	maxExtendEpochs, err := strconv.ParseUint(*maxExtend, 10, 64)
	if err != nil {
		return fmt.Errorf("--max-extend-epochs %q: want a whole number of epochs", *maxExtend)
	}
	met := metrics.New(version, inv.Simulated)
	hb := *interval
	if hb == 0 && st.HeartbeatIntervalS > 0 {
		hb = time.Duration(st.HeartbeatIntervalS) * time.Second
	}
	backend, why := prover.Choose()
	logger.Info("prover backend", "choice", why)
	cfg := agent.Config{
		AgentID: st.AgentID, Version: version, GPUs: sess, Drivers: drivers, Regions: st.Regions,
		API:    &client.Client{BaseURL: st.ServerURL, Signer: &protocol.Signer{AgentID: st.AgentID, Key: key}, UserAgent: userAgent()},
		Prober: &probe.Prober{}, Metrics: met, Logger: logger, HeartbeatInterval: hb, StopGrace: *grace,
		Prover:     &prover.Local{Backend: backend},
		Extensions: agent.ExtendPolicy{Refuse: !*extensions, MaxEpochs: maxExtendEpochs},
	}
	if *chainGRPC != "" {
		chain, err := connectChain(*chainGRPC, *chainRPC, *chainID, *gasPrice, *keyFile, logger)
		if err != nil {
			return err
		}
		defer chain.close()
		cfg.Quotes, cfg.Proofs, cfg.Submitter = chain.quotes, chain.follower, chain.submitter
		cfg.ProviderAddress = chain.follower.Provider.String()
	} else {
		logger.Warn("no --chain-grpc: this agent will not prove epochs or sign quotes, so it cannot be paid")
	}
	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	metricsErr := make(chan error, 1)
	if *metricsAddr != "" {
		go func() {
			metricsErr <- met.Serve(runCtx, *metricsAddr, func(addr net.Addr) {
				logger.Info("serving metrics", "addr", "http://"+addr.String()+"/metrics")
			})
		}()
	}
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(runCtx) }()
	select {
	case err := <-metricsErr:
		// A metrics port already taken is a configuration error: say so
		// instead of running unobserved.
		cancel()
		<-runErr //nolint:errcheck // only waiting for the agent to stop; the metrics error is the one to report
		return err
	case err := <-runErr:
		return err
	}
}

func cmdSelftest(ctx context.Context, args []string, e env) error {
	f := newFlags("selftest", "Runs the Proof-of-Compute prover for a while on the backend the agent would use (the\nGPUs through the CUDA driver, else the CPU) and prints the nonces evaluated per second\nand the equivalent number of H100s.", e)
	d := f.duration("duration", "HIGHWAY_SELFTEST_DURATION", 10*time.Second, "how long to prove")
	dev := f.boolean("dev-params", "HIGHWAY_SELFTEST_DEV", false, "use the small dev-chain parameters instead of production ones")
	if err := f.parse(args); err != nil {
		return err
	}
	p := poc.DefaultParams()
	name := "production"
	if *dev {
		p, name = poc.DevParams(), "dev"
	}
	backend, why := prover.Choose()
	fmt.Fprintf(e.stdout, "Backend: %s\nProving for %s with %s parameters (v%d, %d-wide, %d layers)...\n", why, *d, name, p.Version, p.Dim, p.Layers)
	start := time.Now()
	bar := func(done uint64) {
		frac := min(float64(time.Since(start))/float64(*d), 1)
		n := int(frac * 30)
		rate := float64(done) / max(time.Since(start).Seconds(), 1e-9)
		fmt.Fprintf(e.stdout, "\r[%s%s] %3.0f%% %12.0f nonces/s", strings.Repeat("#", n), strings.Repeat(" ", 30-n), frac*100, rate)
	}
	r, err := prover.Measure(ctx, backend, p, *d, bar)
	if err != nil {
		fmt.Fprintln(e.stdout)
		return err
	}
	fmt.Fprintf(e.stdout, "\r[%s] 100%%\n", strings.Repeat("#", 30))
	fmt.Fprintf(e.stdout, "%d nonces in %s: %d nonces/s = %.4f H100-equivalents (an H100 is calibrated at %d nonces/s with these parameters)\n",
		r.Evaluated, r.Elapsed.Round(time.Millisecond), r.NoncesPerSec, float64(r.NoncesPerSec)/float64(p.H100NoncesPerSecond), p.H100NoncesPerSecond)
	return nil
}
