package app_test

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"cosmossdk.io/collections"
	"cosmossdk.io/log"
	pruningtypes "cosmossdk.io/store/pruning/types"
	dbm "github.com/cosmos/cosmos-db"

	"github.com/cosmos/cosmos-sdk/baseapp"
	simtestutil "github.com/cosmos/cosmos-sdk/testutil/sims"
	sdk "github.com/cosmos/cosmos-sdk/types"
	simtypes "github.com/cosmos/cosmos-sdk/types/simulation"
	"github.com/cosmos/cosmos-sdk/x/simulation"

	"github.com/highway-compute/highway/chain/app"
	escrowsim "github.com/highway-compute/highway/chain/x/escrow/simulation"
	"github.com/highway-compute/highway/chain/x/escrow/types"
)

// TestEscrowSimulation runs the SDK's simulator over the whole app with
// the escrow operations (creates, extensions, honest, fabricated and late proofs,
// closes, disputes, resolutions, each also in rejected forms) for
// simSeeds seeds × simBlocks blocks, checking the escrow invariant in
// every block's EndBlock.
func TestEscrowSimulation(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation")
	}
	totals := map[string]int{}
	for seed := int64(1); seed <= simSeeds; seed++ {
		t.Run(fmt.Sprintf("seed-%d", seed), func(t *testing.T) {
			got := runSimulation(t, seed)
			for k, v := range got {
				totals[k] += v
			}
		})
	}
	t.Logf("over %d seeds × %d blocks: %v", simSeeds, simBlocks, totals)
	for _, k := range []string{"invariant_checks", "leases", "extensions", "epochs_cleared", "epochs_missed", "proofs_rejected", "paid_out", "disputes_resolved", "closed_by_party"} {
		if totals[k] == 0 {
			t.Errorf("the simulation never produced %s", k)
		}
	}
	if totals["invariant_checks"] < totals["blocks"] {
		t.Errorf("invariant checked %d times in %d blocks, want every block", totals["invariant_checks"], totals["blocks"])
	}
}

const chainID = "highway-sim"

func runSimulation(t *testing.T, seed int64) map[string]int {
	t.Helper()
	// Prune old versions: the simulation only ever reads the latest state,
	// and keeping 500 versions of every store in memory costs ~400 MB a seed.
	// Pruning runs inside Commit, not in IAVL's background goroutine: on a
	// MemDB that goroutine can deadlock against the commit (a MemDB iterator
	// holds the read lock until it is drained, a batch write then waits for
	// the write lock, and the pruner's next Get waits behind that writer).
	// It hung one CI run for 27 minutes (stop 36).
	a := app.New(log.NewNopLogger(), dbm.NewMemDB(), nil, false, simtestutil.EmptyAppOptions{}, baseapp.SetChainID(chainID),
		baseapp.SetPruning(pruningtypes.NewPruningOptions(pruningtypes.PruningEverything)),
		baseapp.SetIAVLSyncPruning(true))
	checks := 0
	a.SetEndBlocker(func(ctx sdk.Context) (sdk.EndBlock, error) {
		res, err := a.EndBlocker(ctx)
		if err != nil {
			return res, err
		}
		if msg, broken := a.EscrowKeeper.CheckInvariant(ctx); broken {
			return res, fmt.Errorf("escrow invariant broken at height %d: %s", ctx.BlockHeight(), msg)
		}
		checks++
		return res, nil
	})
	if err := a.LoadLatestVersion(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.Close() }()
	cfg := simtypes.Config{
		Seed: seed, NumBlocks: simBlocks, BlockSize: 12, ChainID: chainID, Commit: true,
		InitialBlockHeight: 1, GenesisTime: 1_800_000_000, BlockMaxGas: -1, TB: t,
	}
	extendedBefore := escrowsim.Extended()
	ops := escrowsim.WeightedOperations(a.TxConfig(), a.EscrowKeeper, a.AccountKeeper, a.BankKeeper)
	_, _, err := simulation.SimulateFromSeedX(t, log.NewNopLogger(), io.Discard, a.BaseApp,
		simtestutil.AppStateFn(a.AppCodec(), a.SimulationManager(), a.DefaultGenesis()),
		simtypes.RandomAccounts, ops, app.BlockedAddresses(), cfg, a.AppCodec(), simulation.NewLogWriter(false))
	if err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}

	ctx := a.NewContext(true)
	// The simulator decides how many blocks a run executes (it may end
	// early); every block that ran must have checked the invariant.
	out := map[string]int{"invariant_checks": checks, "blocks": int(a.LastBlockHeight()), "extensions": int(escrowsim.Extended() - extendedBefore)}
	_ = a.EscrowKeeper.Leases.Walk(ctx, nil, func(_ uint64, l types.Lease) (bool, error) {
		out["leases"]++
		out["epochs_cleared"] += int(l.EpochsCleared)
		out["epochs_missed"] += int(l.EpochsMissed)
		if l.Paid.IsPositive() {
			out["paid_out"]++
		}
		switch l.CloseReason {
		case "dispute_resolved":
			out["disputes_resolved"]++
		case "buyer", "provider":
			out["closed_by_party"]++
		}
		return false, nil
	})
	_ = a.EscrowKeeper.Epochs.Walk(ctx, nil, func(_ collections.Pair[uint64, uint64], r types.EpochRecord) (bool, error) {
		if strings.HasPrefix(r.Reason, "proof rejected") {
			out["proofs_rejected"]++
		}
		return false, nil
	})
	return out
}
