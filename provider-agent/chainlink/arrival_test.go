//go:build !race

package chainlink_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"cosmossdk.io/math"
	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/highway-compute/highway/chain/app"
	"github.com/highway-compute/highway/chain/client"
	"github.com/highway-compute/highway/chain/network"
	escrowtypes "github.com/highway-compute/highway/chain/x/escrow/types"
	"github.com/highway-compute/highway/provider-agent/chainlink"
	"github.com/highway-compute/highway/provider-agent/prover"
)

// BenchmarkProofArrival measures how late honest agents' proofs land, the
// figure the chain's proof grace is sized from (docs/poc.md §11): a real
// chain with 1 s blocks, several provider machines on this host, each
// with its own key, lease and the agent's own follower, prover and
// submitter, proving for exactly the work window from the moment each
// saw its seed, on cores they share (and, with HIGHWAY_ARRIVAL_BURN=1, with
// a busy loop per core besides). Lateness is the time of the block that
// carried the proof minus the end of the work window (window open + work
// seconds); the grace must cover it. HIGHWAY_ARRIVAL_MACHINES and
// HIGHWAY_ARRIVAL_EPOCHS size the run (4 × 6 by default, about 80 s);
// HIGHWAY_ARRIVAL_OUT names a file for the raw samples;
// HIGHWAY_ARRIVAL_ONE_KEY=1 gives every lease the same provider key (one
// provider's machines sharing its account: their proofs go out side by
// side from one account).
func BenchmarkProofArrival(b *testing.B) {
	machines, epochs := envInt("HIGHWAY_ARRIVAL_MACHINES", 4), envInt("HIGHWAY_ARRIVAL_EPOCHS", 6)
	var late []int64
	var missed int
	for i := 0; i < b.N; i++ {
		late, missed = measureArrival(b, machines, epochs, os.Getenv("HIGHWAY_ARRIVAL_BURN") != "")
	}
	if len(late) == 0 {
		b.Fatal("no proof landed")
	}
	slices.Sort(late)
	q := func(p float64) float64 { return float64(late[min(len(late)-1, int(p*float64(len(late))))]) }
	b.ReportMetric(q(0.5), "BENCH:poc_proof_arrival_p50_ms:ms")
	b.ReportMetric(q(0.99), "BENCH:poc_proof_arrival_p99_ms:ms")
	b.ReportMetric(float64(late[len(late)-1]), "BENCH:poc_proof_arrival_max_ms:ms")
	b.ReportMetric(float64(len(late)), "BENCH:poc_proof_arrival_samples:proofs")
	b.ReportMetric(float64(missed), "BENCH:poc_proof_arrival_missed:epochs")
	if out := os.Getenv("HIGHWAY_ARRIVAL_OUT"); out != "" {
		var sb strings.Builder
		for _, v := range late {
			fmt.Fprintln(&sb, v)
		}
		if err := os.WriteFile(out, []byte(sb.String()), 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// measureArrival runs the machines for the epochs and returns each landed
// proof's lateness in ms, and how many epochs had no cleared verdict.
func measureArrival(tb testing.TB, machines, epochs int, burn bool) ([]int64, int) {
	app.SetAddressConfig()
	buyer := network.Account{Name: "buyer", Key: secp256k1.GenPrivKey(), Funds: math.NewInt(1_000_000_000_000)}
	accs := []network.Account{buyer}
	var provs []network.Account
	oneKey := os.Getenv("HIGHWAY_ARRIVAL_ONE_KEY") != ""
	for i := 0; i < machines; i++ {
		p := network.Account{Name: fmt.Sprintf("provider-%d", i), Key: secp256k1.GenPrivKey(), Funds: math.NewInt(1_000_000_000)}
		if oneKey && i > 0 {
			p = provs[0]
		} else {
			accs = append(accs, p)
		}
		provs = append(provs, p)
	}
	params := escrowtypes.DevParams()
	// Measure, do not refuse: a late proof still lands and is timed.
	params.ProofGraceMs = 60_000
	params.EpochBlocks = 10
	params.Arbiter = buyer.Address().String()
	_, c := network.StartForTest(tb, network.Options{ChainID: "highway-arrival", TimeoutCommit: time.Second, Escrow: params, Accounts: accs})
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(epochs*int(params.EpochBlocks)+60)*3*time.Second)
	defer cancel()

	// Every block's time, from the chain.
	var mu sync.Mutex
	times := map[int64]time.Time{}
	go func() {
		_ = c.Follow(ctx, 1, client.FollowOptions{Poll: 200 * time.Millisecond}, func(blk client.Block) error {
			mu.Lock()
			times[blk.Height] = blk.Time
			mu.Unlock()
			return nil
		})
	}()
	if burn {
		for i := 0; i < runtime.NumCPU(); i++ {
			go func() {
				x := 0
				for ctx.Err() == nil {
					for j := 0; j < 1_000_000; j++ {
						x += j
					}
				}
				_ = x
			}()
		}
	}

	type landed struct {
		lease, epoch uint64
		height       int64
	}
	var lmu sync.Mutex
	var got []landed
	var wg sync.WaitGroup
	leaseIDs := make([]uint64, machines)
	for i, p := range provs {
		q, err := escrowtypes.SignQuote("highway-arrival", escrowtypes.Quote{
			Provider: p.Address().String(), Buyer: buyer.Address().String(), GpuClass: "H100", Gpus: 1,
			PricePerEpoch: math.NewInt(1000), Epochs: uint64(epochs), ExpiresAt: time.Now().Add(5 * time.Minute).Unix(), Nonce: uint64(i + 1),
		}, p.Key)
		if err != nil {
			tb.Fatal(err)
		}
		res, err := c.Send(ctx, client.KeySigner{Key: buyer.Key}, &escrowtypes.MsgCreateLease{Buyer: buyer.Address().String(), Quote: q})
		if err != nil {
			tb.Fatal(err)
		}
		id, _ := res.Attr("highway.escrow.v1.EventLeaseCreated", "lease_id")
		leaseIDs[i], _ = strconv.ParseUint(id, 10, 64)
		if oneKey && i > 0 {
			continue // one agent (started with the first lease) proves them all
		}
		// The machine's agent: follower, local prover, submitter, an epoch
		// at a time as it comes, each in its own goroutine (as agent.Agent).
		f := &chainlink.Follower{Client: c, Provider: sdk.AccAddress(p.Key.PubKey().Address())}
		sub := &chainlink.Submitter{Client: c, Key: p.Key}
		jobs := f.Jobs(ctx)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var pw sync.WaitGroup
			for job := range jobs {
				pw.Add(1)
				go func() {
					defer pw.Done()
					res, err := (&prover.Local{}).Prove(ctx, job)
					if err != nil {
						return
					}
					s, err := sub.Submit(ctx, job, res)
					if err != nil {
						return
					}
					lease, _ := strconv.ParseUint(job.LeaseID, 10, 64)
					lmu.Lock()
					got = append(got, landed{lease, job.Epoch, s.Height})
					lmu.Unlock()
				}()
			}
			pw.Wait()
		}()
		// Stagger the machines across the epoch, as leases start at any
		// time (one key: leases a block apart, their windows nearly aligned).
		if !oneKey {
			time.Sleep(time.Duration(int(params.EpochBlocks)) * time.Second / time.Duration(machines))
		}
	}
	// Until every lease has run its course.
	for _, id := range leaseIDs {
		for {
			l, err := c.Lease(ctx, id)
			if err == nil && l.Status == escrowtypes.LEASE_STATUS_CLOSED {
				break
			}
			if ctx.Err() != nil {
				tb.Fatalf("lease %d did not finish: %v", id, ctx.Err())
			}
			time.Sleep(time.Second)
		}
	}
	missed := 0
	for _, id := range leaseIDs {
		l, err := c.Lease(ctx, id)
		if err != nil {
			tb.Fatal(err)
		}
		missed += int(l.EpochsTotal - l.EpochsCleared)
	}
	var late []int64
	for _, g := range got {
		task, err := c.Escrow.ProofTask(ctx, &escrowtypes.QueryProofTaskRequest{LeaseId: g.lease, Epoch: g.epoch})
		if err != nil {
			tb.Fatal(err)
		}
		mu.Lock()
		at, ok := times[g.height]
		mu.Unlock()
		if !ok {
			tb.Fatalf("no time for block %d", g.height)
		}
		late = append(late, at.UnixMilli()-task.WindowOpenMs-int64(task.WorkSeconds)*1000)
	}
	cancel()
	wg.Wait()
	return late, missed
}
