//go:build !race

// The end-to-end test runs an in-process chain (the SDK's store has a known
// data race, cosmos/cosmos-sdk#22650), so it is left out of -race runs;
// `make test` runs it in its race-free pass.

package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"cosmossdk.io/math"
	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/chain/app"
	chainclient "github.com/highway-compute/highway/chain/client"
	"github.com/highway-compute/highway/chain/network"
	escrowtypes "github.com/highway-compute/highway/chain/x/escrow/types"
	"github.com/highway-compute/highway/models/dbtest"
	"github.com/highway-compute/highway/poc"
	"github.com/highway-compute/highway/protocol"
	"github.com/highway-compute/highway/provider-agent/agent"
	"github.com/highway-compute/highway/provider-agent/chainlink"
	"github.com/highway-compute/highway/provider-agent/prover"
	"github.com/highway-compute/highway/provider-agent/runner"
)

// e2eMarket is the whole loop on one machine: a chain, the marketplace
// wired to it, and helpers to add users and agents.
type e2eMarket struct {
	t            testing.TB
	chain        *chainclient.Client
	srv          *Main
	faucet       math.Int
	faucetSigner chainclient.KeySigner
	// agentURL is where agents reach the marketplace (default srv's URL;
	// a balancer in front of replicas).
	agentURL string
	// containers, when set, runs the agents' workloads in containers.
	containers *runner.Docker
}

const e2eChainID = "highway-e2e"

func startE2E(t testing.TB, providers ...network.Account) *e2eMarket {
	return startE2EWith(t, 250*time.Millisecond, providers...)
}

// startE2EWith starts the loop with the given block time.
func startE2EWith(t testing.TB, block time.Duration, providers ...network.Account) *e2eMarket {
	ch := startE2EChain(t, block, providers...)
	srv := startServerAt(t, "127.0.0.1:0", dbtest.SQLiteDSN(t), accounts.Config{}, ch.tune(ch.client))
	return ch.market(t, srv)
}

// user signs up with roles and returns its browser and an API client.
func (e *e2eMarket) user(email, role string) (*browser, apiClient) {
	b := newBrowser(e.t, e.srv)
	wantStatus(e.t, b.signup(email, "a long passphrase", role), http.StatusSeeOther)
	u, err := e.srv.Store.UserByEmail(context.Background(), email)
	if err != nil {
		e.t.Fatal(err)
	}
	_, key, err := accounts.New(e.srv.Store, accounts.Config{Hash: cheapHash}).CreateAPIKey(context.Background(), u, "e2e")
	if err != nil {
		e.t.Fatal(err)
	}
	return b, apiClient{t: e.t, base: e.srv.URL(), key: key}
}

// runAgent enrolls and runs a provider agent with one simulated H100, the
// exec driver, and the chain hooks with the provider's key; p replaces the
// honest prover when set.
func (e *e2eMarket) runAgent(b *browser, provKey *secp256k1.PrivKey, profile, seed string, p agent.Prover) (stop func()) {
	t := e.t
	page := b.submit("/provider", "/provider/enrollments", url.Values{})
	wantStatus(t, page, http.StatusCreated)
	// The agent's own log is shown when the test fails: what it was
	// asked, what it proved, what it could not send.
	var agentLog syncBuffer
	serverURL := e.srv.URL()
	if e.agentURL != "" {
		serverURL = e.agentURL
	}
	stop, err := fleetAgent{ServerURL: serverURL, Token: text(page, `[data-testid="enroll-token"]`), StateDir: t.TempDir() + "/agent",
		Profile: profile, Seed: seed, RTT: map[string]int64{"local": 5}, ProviderKey: provKey, Chain: e.chain, Prover: p, Containers: e.containers,
		Interval: 300 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&agentLog, &slog.HandlerOptions{Level: slog.LevelInfo}))}.start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("agent %s log:\n%s", seed, agentLog.String())
		}
	})
	return stop
}

// fabricator is a dishonest prover: it claims exactly the required count
// of nonces without computing any of them.
type fabricator struct{}

func (fabricator) Prove(_ context.Context, job prover.Job) (prover.Result, error) {
	p := poc.Proof{Version: job.Params.Version}
	for i := uint64(0); i < job.Target.Required; i++ {
		p.Nonces = append(p.Nonces, 1000+i*7)
	}
	b, err := p.MarshalBinary()
	return prover.Result{Proof: b, Nonces: len(p.Nonces)}, err
}

// cheatOnChain is the fabricating provider going to the chain itself, as
// an attacker would: a proof with half its nonces made up, then the same
// proof and an honest one resent while the first waits for its verdict
// (one verdict per epoch: both refused; the verdict is missed, with the
// reason), then an honest proof for the next epoch sent once its window
// has closed (refused). Nothing it sends clears an epoch.
func (e *e2eMarket) cheatOnChain(key *secp256k1.PrivKey, leaseID uint64) {
	t := e.t
	ctx := context.Background()
	signer := chainclient.KeySigner{Key: key}
	// Epoch 0, the lease just created: the two epochs after it leave room
	// before three misses in a row end the lease.
	const epoch uint64 = 0
	var task *escrowtypes.QueryProofTaskResponse
	waitFor(t, "epoch 0's proof window on the cheater's lease", 30*time.Second, func() bool {
		var err error
		task, err = e.chain.Escrow.ProofTask(ctx, &escrowtypes.QueryProofTaskRequest{LeaseId: leaseID, Epoch: epoch})
		return err == nil && task.WindowOpenMs > 0
	})
	proveFor := func(task *escrowtypes.QueryProofTaskResponse, fabricate bool) []byte {
		p := task.Poc.ToPoC()
		var seed poc.Seed
		copy(seed[:], task.Seed)
		pr, err := poc.Prove(ctx, poc.CPUBackend{}, p, seed, poc.Target{Difficulty: task.Difficulty, Required: task.Required},
			poc.ProveOptions{Limit: task.Difficulty * (p.ExpectedValid + 300)})
		if err != nil {
			t.Fatal(err)
		}
		if fabricate { // every other nonce replaced by its (almost surely invalid) successor
			for i := 0; i+1 < len(pr.Nonces); i += 2 {
				if pr.Nonces[i]+1 < pr.Nonces[i+1] {
					pr.Nonces[i]++
				}
			}
		}
		bz, err := pr.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return bz
	}
	cheat, honest := proveFor(task, true), proveFor(task, false)
	send := func(epoch uint64, proof []byte) (*chainclient.TxResult, error) {
		return e.chain.Send(ctx, signer, &escrowtypes.MsgSubmitProof{Provider: signer.Address().String(), LeaseId: leaseID, Epoch: epoch, Proof: proof})
	}
	res, err := send(epoch, cheat)
	if err != nil {
		t.Fatalf("the cheater's first proof: %v", err)
	}
	judge, _ := res.Attr("highway.escrow.v1.EventProofSubmitted", "judge_height")
	for _, again := range [][]byte{cheat, honest} {
		if _, err := send(epoch, again); !errors.Is(err, escrowtypes.ErrDuplicateProof) && !errors.Is(err, escrowtypes.ErrProofWindow) {
			t.Fatalf("a resent proof (judge height %s): err = %v, want ErrDuplicateProof", judge, err)
		}
	}
	var rec *escrowtypes.EpochRecord
	waitFor(t, "the cheater's verdict", 30*time.Second, func() bool {
		r, err := e.chain.Escrow.Epoch(ctx, &escrowtypes.QueryEpochRequest{LeaseId: leaseID, Epoch: epoch})
		rec = nil
		if err == nil {
			rec = r.Record
		}
		return rec != nil
	})
	if rec.Status != escrowtypes.EPOCH_STATUS_MISSED || !strings.Contains(rec.Reason, "proof rejected") {
		t.Fatalf("the cheater's epoch %d: %s (%s)", epoch, rec.Status, rec.Reason)
	}
	// A late proof: an honest one for the next epoch, once its blocks are past.
	next := epoch + 1
	var nextTask *escrowtypes.QueryProofTaskResponse
	waitFor(t, "the next epoch's window to close", 60*time.Second, func() bool {
		nextTask, err = e.chain.Escrow.ProofTask(ctx, &escrowtypes.QueryProofTaskRequest{LeaseId: leaseID, Epoch: next})
		h, _, herr := e.chain.LatestHeight(ctx)
		return err == nil && herr == nil && h >= nextTask.EndHeight
	})
	if _, err := send(next, proveFor(nextTask, false)); !errors.Is(err, escrowtypes.ErrProofWindow) {
		t.Fatalf("a late proof: err = %v, want ErrProofWindow", err)
	}
}

// directLease creates a lease on chain, outside the marketplace, with a
// quote signed by the provider's key (the chain accepts any buyer with a
// valid quote), and returns its id.
func (e *e2eMarket) directLease(buyer network.Account, provKey *secp256k1.PrivKey) uint64 {
	t := e.t
	ctx := context.Background()
	pq, err := chainlink.QuoteSigner{Key: provKey}.SignQuote(ctx, e2eChainID, protocol.Quote{
		Provider: sdk.AccAddress(provKey.PubKey().Address()).String(), Buyer: buyer.Address().String(), GPUClass: "H100", GPUs: 1,
		PricePerEpoch: "1000", Epochs: 50, ExpiresAt: time.Now().Add(5 * time.Minute).Unix(), Nonce: 7})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.chain.Send(ctx, chainclient.KeySigner{Key: buyer.Key}, &escrowtypes.MsgCreateLease{Buyer: pq.Buyer, Quote: escrowtypes.Quote{
		Provider: pq.Provider, Buyer: pq.Buyer, GpuClass: pq.GPUClass, Gpus: pq.GPUs, PricePerEpoch: math.NewInt(1000),
		Epochs: pq.Epochs, ExpiresAt: pq.ExpiresAt, Nonce: pq.Nonce, PubKey: pq.PubKey, Signature: pq.Signature}})
	if err != nil {
		t.Fatalf("direct lease: %v", err)
	}
	id, _ := res.Attr("highway.escrow.v1.EventLeaseCreated", "lease_id")
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		t.Fatalf("lease id %q: %v", id, err)
	}
	return n
}

type leaseView struct {
	Lease struct {
		ID             string `json:"id"`
		ChainLeaseID   uint64 `json:"chain_lease_id"`
		Status         string `json:"status"`
		PricePerEpoch  string `json:"price_per_epoch"`
		EpochsTotal    int64  `json:"epochs_total"`
		EndsAt         string `json:"ends_at"`
		WorkloadStatus string `json:"workload_status"`
		Epochs         []struct {
			N      int64  `json:"n"`
			Status string `json:"status"`
		} `json:"epochs"`
	} `json:"lease"`
}

func (l leaseView) count(status string) int {
	n := 0
	for _, e := range l.Lease.Epochs {
		if e.Status == status {
			n++
		}
	}
	return n
}

func (e *e2eMarket) balance(addr string) math.Int {
	a, err := sdk.AccAddressFromBech32(addr)
	if err != nil {
		e.t.Fatal(err)
	}
	bal, err := e.chain.Balance(context.Background(), a, app.BondDenom)
	if err != nil {
		e.t.Fatal(err)
	}
	return bal
}

// TestEndToEnd is the whole loop: agent → verified listing → order through
// the JSON API → match → lease on chain → workload runs, logs reach the
// buyer → epochs clear and pay the provider exactly → agent killed →
// epochs refunded → dispute → admin splits 50/50 → every balance exact to
// the micro-unit.
func TestEndToEnd(t *testing.T) {
	provKey := secp256k1.GenPrivKey()
	prov := network.Account{Name: "provider", Key: provKey, Funds: math.NewInt(1_000_000)}
	cheatKey := secp256k1.GenPrivKey()
	cheat := network.Account{Name: "cheater", Key: cheatKey, Funds: math.NewInt(1_000_000)}
	direct := network.Account{Name: "direct-buyer", Key: secp256k1.GenPrivKey(), Funds: math.NewInt(1_000_000_000)}
	e := startE2E(t, prov, cheat, direct)

	// A second provider whose agent fabricates nonces: its verification
	// PoC is rejected (sampled re-computation), so it is never listed and
	// never matched; a lease created for its address outside the
	// marketplace never clears an epoch and never pays it (the agent only
	// proves leases it signed or was assigned, and the chain's verifier
	// rejects fabricated proofs: chain/x/escrow keeper tests).
	cheatBrowser, cheatAPI := e.user("cheat@example.com", "provider")
	if code := cheatAPI.do(http.MethodPut, "/prices", map[string]string{"model": "H100", "price_per_gpu_hour": "100000"}, nil); code != http.StatusOK {
		t.Fatalf("cheater's price: %d", code)
	}
	e.runAgent(cheatBrowser, cheatKey, "h100x1", "e2e-cheater", fabricator{})
	cheatLease := e.directLease(direct, cheatKey)
	e.cheatOnChain(cheatKey, cheatLease)

	provBrowser, provAPI := e.user("prov@example.com", "provider")
	if code := provAPI.do(http.MethodPut, "/prices", map[string]string{"model": "H100", "price_per_gpu_hour": "3600000"}, nil); code != http.StatusOK {
		t.Fatalf("set price: %d", code)
	}
	stopAgent := e.runAgent(provBrowser, provKey, "h100x2", "e2e-honest", nil)

	// The listing appears only once the verification PoC cleared.
	var offers struct {
		Offers []struct {
			ID       string           `json:"id"`
			Verified bool             `json:"verified"`
			Price    string           `json:"price_per_gpu_hour"`
			RTTms    map[string]int64 `json:"rtt_ms"`
		} `json:"offers"`
	}
	// With its latency: the order below asks for at most 50 ms to
	// "local", and the verdict can come before the beat that carries
	// the agent's first probe.
	waitFor(t, "the verified offer with its RTT", 60*time.Second, func() bool {
		provAPI.do(http.MethodGet, "/offers?model=H100", nil, &offers)
		return len(offers.Offers) == 1 && offers.Offers[0].RTTms["local"] > 0
	})
	if !offers.Offers[0].Verified || offers.Offers[0].Price != "3600000" {
		t.Fatalf("offer = %+v", offers.Offers[0])
	}

	_, buyer := e.user("buyer@example.com", "buyer")
	if code := buyer.do(http.MethodPost, "/wallet/faucet", nil, nil); code != http.StatusOK {
		t.Fatalf("faucet: %d", code)
	}
	var wallet struct {
		Address  string `json:"address"`
		Balances []struct {
			Amount string `json:"amount"`
		} `json:"balances"`
	}
	buyer.do(http.MethodGet, "/wallet", nil, &wallet)
	if wallet.Balances[0].Amount != e.faucet.String() {
		t.Fatalf("wallet after faucet = %+v", wallet)
	}

	// Bad orders change nothing.
	var bad struct {
		Error struct{ Code, Field string }
	}
	if buyer.do(http.MethodPost, "/orders", map[string]any{"type": "fok", "model": "H100", "count": 1,
		"max_price_per_gpu_hour": "100", "hours": 1, "workload": map[string]string{"command": "true"}}, &bad); bad.Error.Field != "max_price_per_gpu_hour" {
		t.Fatalf("order at a price that pays nothing per epoch: %+v", bad)
	}
	if code := buyer.do(http.MethodPost, "/orders", map[string]any{"type": "fok", "model": "H100", "count": 1,
		"max_price_per_gpu_hour": "1000000", "hours": 1, "workload": map[string]string{"command": "true"}}, &bad); code < 400 || code >= 500 {
		t.Fatalf("order under every ask: %d %+v", code, bad)
	}
	if bad.Error.Code != "no_capacity" {
		t.Fatalf("order under every ask: %+v", bad)
	}
	if code := buyer.do(http.MethodPost, "/orders", map[string]any{"type": "fok", "model": "H100", "count": 1,
		"max_price_per_gpu_hour": "3600000", "hours": 1000, "workload": map[string]string{"command": "true"}}, &bad); bad.Error.Code != "insufficient_funds" {
		t.Fatalf("order beyond the balance: %d %+v", code, bad)
	}

	start := time.Now()
	var placed struct {
		Order struct {
			ID, Status, Failure string
			LeaseID             string `json:"lease_id"`
		} `json:"order"`
	}
	code := buyer.do(http.MethodPost, "/orders", map[string]any{"type": "fok", "model": "H100", "count": 1, "region": "local", "max_rtt_ms": 50,
		"max_price_per_gpu_hour": "4000000", "hours": 1,
		"workload": map[string]string{"command": `echo "hello from $CUDA_VISIBLE_DEVICES"; sleep 120`}}, &placed)
	if code != http.StatusCreated || placed.Order.Status != "matched" {
		t.Fatalf("order: %d %+v", code, placed)
	}
	waitFor(t, "the lease", 30*time.Second, func() bool {
		buyer.do(http.MethodGet, "/orders/"+placed.Order.ID, nil, &placed)
		if placed.Order.Status == "failed" {
			t.Fatalf("order failed: %s", placed.Order.Failure)
		}
		return placed.Order.LeaseID != ""
	})
	leaseID := placed.Order.LeaseID
	var logs struct {
		Lines []struct{ Text string } `json:"lines"`
	}
	waitFor(t, "the workload's first log line", 30*time.Second, func() bool {
		buyer.do(http.MethodGet, "/leases/"+leaseID+"/logs", nil, &logs)
		return len(logs.Lines) > 0
	})
	t.Logf("rent → first log line: %s", time.Since(start).Round(time.Millisecond))
	// The workload sees exactly the leased GPU.
	waitFor(t, "the workload's own output", 30*time.Second, func() bool {
		buyer.do(http.MethodGet, "/leases/"+leaseID+"/logs", nil, &logs)
		for _, l := range logs.Lines {
			if strings.HasPrefix(l.Text, "hello from GPU-") {
				return true
			}
		}
		return false
	})

	// A stranger sees neither the order nor the lease.
	_, stranger := e.user("stranger@example.com", "buyer")
	if code := stranger.do(http.MethodGet, "/leases/"+leaseID, nil, nil); code != http.StatusNotFound {
		t.Fatalf("stranger reads the lease: %d", code)
	}
	if code := stranger.do(http.MethodDelete, "/orders/"+placed.Order.ID, nil, nil); code != http.StatusNotFound {
		t.Fatalf("stranger cancels the order: %d", code)
	}

	// Three epochs clear and are paid out.
	var lv leaseView
	waitFor(t, "3 cleared epochs", 90*time.Second, func() bool {
		buyer.do(http.MethodGet, "/leases/"+leaseID, nil, &lv)
		return lv.count("cleared") >= 3
	})
	chainLease := lv.Lease.ChainLeaseID
	if lv.Lease.Status != "active" || lv.Lease.WorkloadStatus != protocol.LeaseRunning {
		t.Fatalf("lease = %+v", lv.Lease)
	}
	waitFor(t, "a payout", 30*time.Second, func() bool {
		cl, err := e.chain.Lease(context.Background(), chainLease)
		return err == nil && cl.Paid.IsPositive()
	})

	// A second lease on the machine's other GPU, closed by the buyer: the
	// chain refunds the unearned escrow, the marketplace sends a stop, the
	// agent kills the workload and reports it stopped.
	var second struct {
		Order struct {
			ID, Status, Failure string
			LeaseID             string `json:"lease_id"`
		} `json:"order"`
	}
	if code := buyer.do(http.MethodPost, "/orders", map[string]any{"type": "fok", "model": "H100", "count": 1,
		"max_price_per_gpu_hour": "4000000", "hours": 1, "workload": map[string]string{"command": "sleep 300"}}, &second); code != http.StatusCreated {
		t.Fatalf("second order: %d %+v", code, second)
	}
	var lv2 leaseView
	waitFor(t, "the second workload running", 30*time.Second, func() bool {
		buyer.do(http.MethodGet, "/orders/"+second.Order.ID, nil, &second)
		if second.Order.LeaseID == "" {
			return false
		}
		buyer.do(http.MethodGet, "/leases/"+second.Order.LeaseID, nil, &lv2)
		return lv2.Lease.WorkloadStatus == protocol.LeaseRunning
	})
	// The buyer extends it by an hour: the provider's agent signs the
	// extension, the chain escrows the added epochs, the agent moves the
	// workload's end. A stranger and a bad length are refused.
	was := lv2.Lease
	if code := stranger.do(http.MethodPost, "/leases/"+second.Order.LeaseID+"/extend", map[string]int{"hours": 1}, nil); code != http.StatusNotFound {
		t.Fatalf("stranger extends the lease: %d", code)
	}
	if code := buyer.do(http.MethodPost, "/leases/"+second.Order.LeaseID+"/extend", map[string]int{"hours": 0}, nil); code != http.StatusUnprocessableEntity {
		t.Fatalf("extend by 0 hours: %d", code)
	}
	extendStart := time.Now()
	if code := buyer.do(http.MethodPost, "/leases/"+second.Order.LeaseID+"/extend", map[string]int{"hours": 1}, &lv2); code != http.StatusOK {
		t.Fatalf("extend: %d %+v", code, lv2)
	}
	added := lv2.Lease.EpochsTotal - was.EpochsTotal
	if added <= 0 || lv2.Lease.EndsAt <= was.EndsAt {
		t.Fatalf("extended lease %+v, was %+v", lv2.Lease, was)
	}
	if cl, err := e.chain.Lease(context.Background(), lv2.Lease.ChainLeaseID); err != nil || int64(cl.EpochsTotal) != lv2.Lease.EpochsTotal {
		t.Fatalf("chain lease after the extension: %+v, %v (marketplace says %d epochs)", cl, err, lv2.Lease.EpochsTotal)
	}
	waitFor(t, "the agent moving the workload's end", 30*time.Second, func() bool {
		buyer.do(http.MethodGet, "/leases/"+second.Order.LeaseID+"/logs", nil, &logs)
		for _, l := range logs.Lines {
			if strings.HasPrefix(l.Text, "lease extended") {
				return true
			}
		}
		return false
	})
	t.Logf("extension: %d epochs added in %s (agent's signature and the transaction), ends %s (was %s)", added, time.Since(extendStart).Round(time.Millisecond), lv2.Lease.EndsAt, was.EndsAt)
	// Auto-extend by API: bad input is 422 and a stranger 404; a floor the
	// wallet cannot keep is accepted but says it will not extend, and why
	// (so nothing is charged here); 0 hours turns it off.
	for _, body := range []map[string]any{{"hours": 1, "floor": "12.5"}, {"hours": 721}, {"hours": -1}} {
		if code := buyer.do(http.MethodPut, "/leases/"+second.Order.LeaseID+"/auto-extend", body, nil); code != http.StatusUnprocessableEntity {
			t.Fatalf("auto-extend %v: %d, want 422", body, code)
		}
	}
	if code := stranger.do(http.MethodPut, "/leases/"+second.Order.LeaseID+"/auto-extend", map[string]any{"hours": 1}, nil); code != http.StatusNotFound {
		t.Fatalf("stranger sets auto-extend: %d", code)
	}
	var auto struct {
		Lease struct {
			AutoExtend *struct {
				Hours      int64  `json:"hours"`
				Floor      string `json:"floor"`
				WillExtend bool   `json:"will_extend"`
				WhyNot     string `json:"why_not"`
			} `json:"auto_extend"`
		} `json:"lease"`
	}
	if code := buyer.do(http.MethodPut, "/leases/"+second.Order.LeaseID+"/auto-extend", map[string]any{"hours": 1, "floor": "900000000000"}, &auto); code != http.StatusOK ||
		auto.Lease.AutoExtend == nil || auto.Lease.AutoExtend.WillExtend || !strings.Contains(auto.Lease.AutoExtend.WhyNot, "wallet holds") {
		t.Fatalf("auto-extend above the wallet: %d %+v", code, auto.Lease.AutoExtend)
	}
	if code := buyer.do(http.MethodPut, "/leases/"+second.Order.LeaseID+"/auto-extend", map[string]any{"hours": 0}, &auto); code != http.StatusOK || auto.Lease.AutoExtend != nil {
		t.Fatalf("auto-extend off: %d %+v", code, auto.Lease.AutoExtend)
	}
	if code := buyer.do(http.MethodPost, "/leases/"+second.Order.LeaseID+"/close", nil, &lv2); code != http.StatusOK || lv2.Lease.Status != "closed" {
		t.Fatalf("close: %d %+v", code, lv2.Lease)
	}
	waitFor(t, "the second workload stopped", 30*time.Second, func() bool {
		buyer.do(http.MethodGet, "/leases/"+second.Order.LeaseID, nil, &lv2)
		return lv2.Lease.WorkloadStatus == protocol.LeaseStopped
	})

	// The agent dies: the next epochs are missed and refunded.
	stopAgent()
	waitFor(t, "a missed epoch", 60*time.Second, func() bool {
		buyer.do(http.MethodGet, "/leases/"+leaseID, nil, &lv)
		return lv.count("missed") >= 1
	})

	// The buyer disputes; the admin splits the frozen escrow 50/50.
	var disp struct {
		Dispute struct{ ID, Status string } `json:"dispute"`
	}
	if code := buyer.do(http.MethodPost, "/leases/"+leaseID+"/disputes", map[string]string{"statement": "the machine vanished"}, &disp); code != http.StatusCreated {
		t.Fatalf("dispute: %d", code)
	}
	before, err := e.chain.Lease(context.Background(), chainLease)
	if err != nil {
		t.Fatal(err)
	}
	frozen := before.Frozen
	if !frozen.IsPositive() || before.Status != escrowtypes.LEASE_STATUS_DISPUTED {
		t.Fatalf("lease after dispute: %+v", before)
	}
	if code := buyer.do(http.MethodPost, "/disputes/"+disp.Dispute.ID+"/resolve", map[string]any{"buyer_bps": 5000}, nil); code != http.StatusForbidden {
		t.Fatalf("a buyer resolved a dispute: %d", code)
	}
	_, admin := e.user("admin2@example.com", "buyer")
	u, _ := e.srv.Store.UserByEmail(context.Background(), "admin2@example.com")
	if err := e.srv.Store.SetUserRoles(context.Background(), u.ID, true, false, true); err != nil {
		t.Fatal(err)
	}
	if code := admin.do(http.MethodPost, "/disputes/"+disp.Dispute.ID+"/resolve", map[string]any{"buyer_bps": 5000, "note": "half each"}, &disp); code != http.StatusOK || disp.Dispute.Status != "resolved" {
		t.Fatalf("resolve: %d %+v", code, disp)
	}
	// The alerts each party got: the buyer the missed epoch and the
	// decision; the provider the missed epoch, the dispute and the
	// decision (the webhook side is TestAlertsAndWebhooks).
	kinds := func(c apiClient) map[string]bool {
		var ns struct {
			Notifications []struct{ Kind string } `json:"notifications"`
		}
		c.do(http.MethodGet, "/notifications", nil, &ns)
		got := map[string]bool{}
		for _, n := range ns.Notifications {
			got[n.Kind] = true
		}
		return got
	}
	waitFor(t, "the parties' alerts", 30*time.Second, func() bool {
		b, p := kinds(buyer), kinds(provAPI)
		return b["epoch_missed"] && b["dispute_decided"] && p["epoch_missed"] && p["dispute_opened"] && p["dispute_decided"]
	})
	var after escrowtypes.Lease
	waitFor(t, "the lease settled", 30*time.Second, func() bool {
		after, err = e.chain.Lease(context.Background(), chainLease)
		return err == nil && after.Pending.IsZero() && after.Frozen.IsZero() && after.Remaining.IsZero()
	})

	// Exact books: the split, the lease's conservation, and both balances.
	escrowed := after.PricePerEpoch.MulRaw(int64(after.EpochsTotal))
	toBuyer := frozen.MulRaw(5000).QuoRaw(10000)
	if got := after.Refunded.Sub(before.Refunded); !got.Equal(toBuyer) {
		t.Fatalf("buyer's half: refunded grew by %s, want %s", got, toBuyer)
	}
	if got := after.Paid.Add(after.Fees).Sub(before.Paid).Sub(before.Fees); !got.Equal(frozen.Sub(toBuyer)) {
		t.Fatalf("provider's half: paid+fees grew by %s, want %s", got, frozen.Sub(toBuyer))
	}
	if sum := after.Paid.Add(after.Fees).Add(after.Refunded); !sum.Equal(escrowed) {
		t.Fatalf("books: paid %s + fees %s + refunded %s != escrowed %s", after.Paid, after.Fees, after.Refunded, escrowed)
	}
	var closed escrowtypes.Lease
	waitFor(t, "the closed lease's payouts", 30*time.Second, func() bool {
		closed, err = e.chain.Lease(context.Background(), lv2.Lease.ChainLeaseID)
		return err == nil && closed.Pending.IsZero()
	})
	if sum := closed.Paid.Add(closed.Fees).Add(closed.Refunded); !sum.Equal(closed.PricePerEpoch.MulRaw(int64(closed.EpochsTotal))) {
		t.Fatalf("closed lease books: paid %s + fees %s + refunded %s", closed.Paid, closed.Fees, closed.Refunded)
	}
	escrowedBoth := escrowed.Add(closed.PricePerEpoch.MulRaw(int64(closed.EpochsTotal)))
	if got, want := e.balance(wallet.Address), e.faucet.Sub(escrowedBoth).Add(after.Refunded).Add(closed.Refunded); !got.Equal(want) {
		t.Fatalf("buyer balance with both leases %s, want %s", got, want)
	}
	// The wallet's history, indexed from the chain's transfer events,
	// adds up to the balance: faucet in, both leases' escrows and the
	// extension's out, refunds in.
	var hist struct {
		Entries []struct {
			Kind, Direction, Amount string
		} `json:"entries"`
	}
	bal := e.balance(wallet.Address)
	waitFor(t, "the wallet history to add up to the balance", 30*time.Second, func() bool {
		buyer.do(http.MethodGet, "/wallet/history?limit=500", nil, &hist)
		sum, kinds := math.ZeroInt(), map[string]int{}
		for _, en := range hist.Entries {
			amt, ok := math.NewIntFromString(en.Amount)
			if !ok {
				t.Fatalf("history amount %q", en.Amount)
			}
			if en.Direction == "in" {
				sum = sum.Add(amt)
			} else {
				sum = sum.Sub(amt)
			}
			kinds[en.Kind+" "+en.Direction]++
		}
		return sum.Equal(bal) && kinds["faucet in"] == 1 && kinds["escrow out"] == 3 && kinds["refund in"] >= 2
	})
	if got, want := e.balance(prov.Address().String()), prov.Funds.Add(after.Paid).Add(closed.Paid); !got.Equal(want) {
		t.Fatalf("provider balance %s, want %s", got, want)
	}
	buyer.do(http.MethodGet, "/leases/"+leaseID, nil, &lv)
	if lv.Lease.Status != "closed" && lv.Lease.Status != "disputed" {
		t.Fatalf("lease status after resolution = %s", lv.Lease.Status)
	}
	t.Logf("epochs cleared %d, missed %d; paid %s, fees %s, refunded %s of %s", after.EpochsCleared, after.EpochsMissed,
		after.Paid, after.Fees, after.Refunded, escrowed)

	// The provider sees its machine's reliability and why: the indexer
	// counted the cleared and the missed epochs, and the figure is the
	// uptime scaled by the share cleared (docs/reliability.md).
	var mine struct {
		Machines []struct {
			Reliability struct {
				ReliabilityBps int64 `json:"reliability_bps"`
				UptimeBps      int64 `json:"uptime_bps"`
				EpochsCleared  int64 `json:"epochs_cleared"`
				EpochsMissed   int64 `json:"epochs_missed"`
			} `json:"reliability"`
		} `json:"machines"`
	}
	waitFor(t, "the machine's epochs in its reliability", 30*time.Second, func() bool {
		provAPI.do(http.MethodGet, "/machines", nil, &mine)
		return len(mine.Machines) == 1 && mine.Machines[0].Reliability.EpochsMissed >= 1 && mine.Machines[0].Reliability.EpochsCleared >= 1
	})
	if r := mine.Machines[0].Reliability; r.ReliabilityBps >= r.UptimeBps || r.UptimeBps != 10_000 {
		t.Fatalf("reliability %+v: a machine seen under an hour has full uptime, and missed epochs must lower the figure", r)
	}
	pc := provBrowser.get("/provider")
	if got := text(pc, `[data-testid="machine-epochs"]`); !strings.Contains(got, " of ") {
		t.Fatalf("console reliability = %q", text(pc, `[data-testid="machine-reliability"]`))
	}

	// The fabricating agent: never verified, never listed, never paid.
	var machines struct {
		Machines []struct {
			Verified    bool   `json:"verified"`
			VerifyError string `json:"verify_error"`
		} `json:"machines"`
	}
	cheatAPI.do(http.MethodGet, "/machines", nil, &machines)
	if len(machines.Machines) != 1 || machines.Machines[0].Verified || machines.Machines[0].VerifyError == "" {
		t.Fatalf("cheater's machine = %+v, want unverified with the reason", machines.Machines)
	}
	provAPI.do(http.MethodGet, "/offers?model=H100", nil, &offers)
	for _, o := range offers.Offers {
		if o.Price == "100000" {
			t.Fatal("the cheater's machine is listed")
		}
	}
	var cl escrowtypes.Lease
	waitFor(t, "the cheater's epochs to be missed", 60*time.Second, func() bool {
		cl, err = e.chain.Lease(context.Background(), cheatLease)
		return err == nil && cl.EpochsMissed >= 2
	})
	if cl.EpochsCleared != 0 || !cl.Paid.IsZero() || !cl.Pending.IsZero() {
		t.Fatalf("the cheater's lease: cleared %d, paid %s, pending %s", cl.EpochsCleared, cl.Paid, cl.Pending)
	}
	if got := e.balance(cheat.Address().String()); !got.Equal(cheat.Funds) {
		t.Fatalf("cheater balance %s, want %s (never paid)", got, cheat.Funds)
	}
}
