package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"
	sdk "github.com/cosmos/cosmos-sdk/types"
	banktypes "github.com/cosmos/cosmos-sdk/x/bank/types"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/broker"
	"github.com/highway-compute/highway/chain/app"
	chainclient "github.com/highway-compute/highway/chain/client"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/poc"
	"github.com/highway-compute/highway/provider-agent/runner"
	"github.com/highway-compute/highway/provider-agent/state"
)

// devAdminEmail is the seeded administrator of `highway dev`.
const devAdminEmail = "admin@highway.local"

// Demo fleet: a mix of machines across regions, with RTTs (ms) to each
// region as a machine there would measure them.
var devFleetProfiles = []struct {
	profile string
	region  string
}{
	{"h100x2", "us-east"}, {"a100x4", "eu-west"}, {"l40sx2", "us-east"}, {"rtx4090x2", "ap-south"},
	{"h100x1", "eu-west"}, {"a100x2", "us-east"}, {"rtx4090x1", "eu-west"}, {"l40sx4", "ap-south"},
}

var devRegions = []string{"us-east", "eu-west", "ap-south"}

// devRTT is a plausible RTT table: 8 ms inside a region, 80–160 ms across.
func devRTT(home string) map[string]int64 {
	far := map[[2]string]int64{{"us-east", "eu-west"}: 80, {"us-east", "ap-south"}: 160, {"eu-west", "ap-south"}: 120}
	out := map[string]int64{}
	for _, r := range devRegions {
		switch {
		case r == home:
			out[r] = 8
		case far[[2]string{home, r}] != 0:
			out[r] = far[[2]string{home, r}]
		default:
			out[r] = far[[2]string{r, home}]
		}
	}
	return out
}

// Demo asks per GPU-hour in micro-HWY.
var devPrices = map[string]highway.Amount{"H100": 2_490_000, "A100": 1_290_000, "L40S": 890_000, "RTX4090": 390_000}

const (
	devBuyerEmail    = "buyer@highway.local"
	devProviderEmail = "provider@highway.local"
)

// runDev runs the whole market on one machine: a single-validator chain
// (supervised highwayd under the data directory), the marketplace on
// SQLite, a faucet, seeded demo users and a demo fleet of simulated
// provider machines running the real agent code.
func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	m := NewMain(stdout, stderr)
	fs := flag.NewFlagSet("highway dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", envOr("HIGHWAY_DATA_DIR", ".highway"), "where dev state lives (env HIGHWAY_DATA_DIR)")
	reset := fs.Bool("reset", false, "delete the data directory first and start afresh")
	fleet := fs.Int("fleet", envInt("HIGHWAY_FLEET", 4), "number of simulated provider machines (env HIGHWAY_FLEET)")
	highwayd := fs.String("highwayd", envOr("HIGHWAYD", "bin/highwayd"), "the chain binary (env HIGHWAYD)")
	fs.StringVar(&m.Config.Listen, "listen", envOr("HIGHWAY_LISTEN", "127.0.0.1:8080"), "address to listen on (env HIGHWAY_LISTEN)")
	commonFlags(fs, &m.Config)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: highway dev [flags]\n\nRuns the whole market (chain, marketplace, demo fleet) on embedded defaults under --data-dir. Flags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *fleet < 0 || *fleet > 64 {
		return errors.New("--fleet must be 0..64")
	}
	if *reset {
		if err := os.RemoveAll(*dataDir); err != nil {
			return fmt.Errorf("reset %s: %w", *dataDir, err)
		}
	}
	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", *dataDir, err)
	}
	// Refuse a taken port before starting anything, so nothing is left
	// half-running.
	if ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", m.Config.Listen); err != nil {
		return fmt.Errorf("listen on %s: %w (is another process using the port? choose another with --listen)", m.Config.Listen, err)
	} else {
		_ = ln.Close()
	}
	gen := func(n int) func() string {
		return func() string {
			b := make([]byte, n)
			_, _ = rand.Read(b)
			return hex.EncodeToString(b)
		}
	}
	secret, err := readOrCreate(filepath.Join(*dataDir, "session-secret"), gen(32))
	if err != nil {
		return err
	}
	walletKey, err := readOrCreate(filepath.Join(*dataDir, "wallet-key"), gen(32))
	if err != nil {
		return err
	}
	password, err := readOrCreate(filepath.Join(*dataDir, "dev-admin-password"), randomPassword)
	if err != nil {
		return err
	}
	start := time.Now()
	progress := func(s string) { fmt.Fprintf(stdout, "  [%5.1fs] %s\n", time.Since(start).Seconds(), s) }

	chain, err := startDevChain(ctx, *dataDir, *highwayd, progress)
	if err != nil {
		return err
	}
	defer chain.stop()

	m.Config.SessionSecret = secret
	m.Config.WalletKey = walletKey
	m.Config.Database = filepath.Join(*dataDir, "highway.db")
	m.Config.DevMode = true
	if m.Config.Regions == "" {
		// Real agents pointed at the dev marketplace measure RTT to its
		// own port in every region (all ~0 on one machine).
		var parts []string
		for _, r := range devRegions {
			parts = append(parts, r+"="+m.Config.Listen)
		}
		m.Config.Regions = strings.Join(parts, ",")
	}
	key, _ := hex.DecodeString(walletKey)
	m.Broker = broker.Config{Chain: chain.client, Faucet: chainclient.KeySigner{Key: chain.keys["buyer"]},
		FaucetAmount: 1_000 * highway.UhwyPerHWY, Arbiter: chainclient.KeySigner{Key: chain.keys["arbiter"]}, WalletKey: key,
		VerifyParams: poc.DevParams(), VerifyWork: 2 * time.Second, EpochDuration: devEpoch, SnapshotEvery: 10 * time.Second}
	if err := m.Open(ctx); err != nil {
		return devHint(err, *dataDir)
	}
	progress("marketplace is serving at " + m.URL())
	acc := accounts.New(m.Store, m.Accounts)
	admin, err := acc.EnsureAdmin(ctx, devAdminEmail, password)
	if err != nil {
		_ = m.Close()
		return devHint(err, *dataDir)
	}
	_ = admin
	buyer, err := ensureDevUser(ctx, m, devBuyerEmail, password, "Demo buyer", true, false)
	if err == nil {
		_, err = ensureDevUser(ctx, m, devProviderEmail, password, "Demo provider", false, true)
	}
	if err != nil {
		_ = m.Close()
		return devHint(err, *dataDir)
	}
	if w, err := m.Market.Wallet(ctx, buyer.ID); err == nil && w.Balance.Sign() == 0 {
		if _, err := m.Market.Faucet(ctx, buyer.ID); err != nil {
			m.Logger.Warn("funding the demo buyer", "err", err)
		}
	}
	stops, err := startDevFleet(ctx, m, chain, *dataDir, secret, *fleet, progress)
	defer func() {
		for _, s := range stops {
			s()
		}
	}()
	if err != nil {
		_ = m.Close()
		return err
	}
	fmt.Fprintf(stdout, `
  Highway is running (dev mode)

    URL:       %s
    Admin:     %s
    Buyer:     %s   (funded with 1000 HWY)
    Provider:  %s   (%d simulated machines)
    Password:  %s   (all three)
    Chain:     %s (%s), log in %s
    Data:      %s/  (highway dev --reset starts afresh)

  Press Ctrl-C to stop.

`, m.URL(), devAdminEmail, devBuyerEmail, devProviderEmail, *fleet, password, devChainID, devChainRPC, chain.log, *dataDir)
	var serveErr error
	select {
	case <-ctx.Done():
		fmt.Fprintln(stdout, "\n  Stopping Highway…")
	case serveErr = <-m.serveErr:
	}
	for _, s := range stops {
		s()
	}
	stops = nil
	return errors.Join(serveErr, m.Close())
}

// ensureDevUser creates a demo user once.
func ensureDevUser(ctx context.Context, m *Main, email, password, name string, buyer, provider bool) (*models.User, error) {
	u, err := m.Store.UserByEmail(ctx, email)
	if err == nil {
		return u, nil
	}
	if highway.ErrorCode(err) != highway.ENOTFOUND {
		return nil, err
	}
	params := m.Accounts.Hash
	if params.MemoryKiB == 0 {
		params = accounts.DefaultHashParams
	}
	hash, err := accounts.HashPassword(password, params)
	if err != nil {
		return nil, err
	}
	u = &models.User{Email: email, Name: name, PasswordHash: hash, IsBuyer: buyer, IsProvider: provider}
	return u, m.Store.CreateUser(ctx, u)
}

// startDevFleet enrolls (once) and runs the demo machines under the demo
// provider, each with its own chain key (a provider key is per machine
// here so each agent proves only its own leases), funded for gas.
func startDevFleet(ctx context.Context, m *Main, chain *devChain, dataDir, secret string, n int, progress func(string)) ([]func(), error) {
	if n == 0 {
		return nil, nil
	}
	prov, err := m.Store.UserByEmail(ctx, devProviderEmail)
	if err != nil {
		return nil, err
	}
	for model, price := range devPrices {
		if _, ok := m.Market.Prices(prov.ID)[model]; !ok {
			// Idle demo GPUs also rent as interruptible at half the ask,
			// with the default 30 s notice, so bids and preemption can be
			// tried in dev.
			if err := m.Market.SetPriceTerms(ctx, prov.ID, model, price, price/2, 0); err != nil {
				return nil, err
			}
		}
	}
	faucet := chainclient.KeySigner{Key: chain.keys["buyer"]}
	boxes := devContainers(ctx, progress)
	var stops []func()
	for i := 0; i < n; i++ {
		spec := devFleetProfiles[i%len(devFleetProfiles)]
		seed := fmt.Sprintf("demo-%02d-%s", i+1, spec.profile)
		key := secp256k1.GenPrivKeyFromSecret([]byte(secret + "/fleet/" + seed))
		addr := sdk.AccAddress(key.PubKey().Address())
		// Proofs need the provider's account on chain; fees are zero in
		// dev, so one micro-HWY makes it exist.
		if bal, err := chain.client.Balance(ctx, addr, app.BondDenom); err == nil && bal.IsZero() {
			if _, err := chain.client.Send(ctx, faucet, banktypes.NewMsgSend(faucet.Address(), addr, sdk.NewCoins(sdk.NewInt64Coin(app.BondDenom, 1_000_000)))); err != nil {
				return stops, fmt.Errorf("fund fleet machine %s: %w", seed, err)
			}
		}
		dir := filepath.Join(dataDir, "fleet", seed)
		token := ""
		if _, err := os.Stat(filepath.Join(dir, state.StateFile)); err != nil {
			if token, err = m.Market.Enroll(ctx, prov.ID); err != nil {
				return stops, err
			}
		}
		stop, err := fleetAgent{ServerURL: m.URL(), Token: token, StateDir: dir, Profile: spec.profile, Seed: seed,
			RTT: devRTT(spec.region), ProviderKey: key, Chain: chain.client, Interval: 2 * time.Second,
			Logger: m.Logger.With("fleet", seed), Containers: boxes}.start(ctx)
		if err != nil {
			return stops, fmt.Errorf("%w (the fleet state is damaged: highway dev --reset)", err)
		}
		stops = append(stops, stop)
	}
	progress(fmt.Sprintf("demo fleet of %d machines is up; listings appear once each clears its verification PoC", n))
	return stops, nil
}

// readOrCreate returns the trimmed content of path, creating it (0600)
// with gen() when missing.
func readOrCreate(path string, gen func() string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("%s is empty: delete it (or run highway dev --reset)", path)
		}
		return v, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	v := gen()
	if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return v, nil
}

// devHint adds what to do to a dev start-up failure.
func devHint(err error, dataDir string) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "listen on"):
		return err
	case strings.Contains(msg, "database"), strings.Contains(msg, "migrate"):
		return fmt.Errorf("%w\nThe dev state in %s/ looks damaged: run `highway dev --reset` (or `make dev ARGS=--reset`) to start afresh", err, dataDir)
	default:
		return err
	}
}

// devDemoImage is the image the demo fleet runs workloads in, built on
// first use from busybox-static (a few hundred kilobytes; no registry).
const devDemoImage = "localhost/highway-demo/busybox:1"

// devContainers finds a container engine for the demo fleet's workloads:
// a buyer's command then runs in a container (its own filesystem, no host
// environment, memory and process limits) rather than on this machine.
// Without one they run as processes under .highway/fleet, and the
// progress line says so and why.
func devContainers(ctx context.Context, progress func(string)) *runner.Docker {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	bin, err := runner.FindEngine(cctx, []string{"podman", "docker"}, devDemoImage)
	if err != nil {
		progress("demo workloads run as plain processes under .highway/fleet, not isolated: " + err.Error())
		return nil
	}
	progress("demo workloads run in containers (" + bin + ", image " + devDemoImage + "; no GPU devices: the fleet's GPUs are simulated)")
	// Images come from registries the dev machine reaches: a registry on
	// 127.0.0.1 is allowed here (only here) so one can be tried locally.
	pull := &runner.Puller{Binary: bin, MaxBytes: 2_000_000_000, AllowPrivate: true}
	return &runner.Docker{Binary: bin, Devices: runner.DevicesNone, DefaultImage: devDemoImage, Memory: "512m", PidsLimit: 256, Pull: pull}
}
