//go:build !race

// Built without -race only, like the end-to-end tests: the in-process
// chain trips a known data race inside the SDK's store.

package main

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"cosmossdk.io/math"
	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"
	sdk "github.com/cosmos/cosmos-sdk/types"
	banktypes "github.com/cosmos/cosmos-sdk/x/bank/types"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/chain/app"
	chainclient "github.com/highway-compute/highway/chain/client"
)

// TestHostileInputOnChain replays the attacks on the money paths against
// the marketplace on a real chain: draining the dev faucet, racing
// withdrawals past the balance, and reusing an Idempotency-Key.
func TestHostileInputOnChain(t *testing.T) {
	e := startE2E(t)
	ctx := context.Background()

	t.Run("faucet", func(t *testing.T) {
		_, api := e.user("tap@example.com", "buyer")
		codes := tally(25, func() int { return api.do(http.MethodPost, "/wallet/faucet", nil, nil) })
		for i := 0; i < 5; i++ {
			codes[api.do(http.MethodPost, "/wallet/faucet", nil, nil)]++
		}
		if codes[http.StatusOK] != 1 || codes[http.StatusTooManyRequests] != 29 {
			t.Fatalf("30 faucet calls: %v, want one grant and 29 × 429", codes)
		}
		var w struct {
			Balances []struct{ Amount string } `json:"balances"`
		}
		api.do(http.MethodGet, "/wallet", nil, &w)
		if len(w.Balances) == 0 || w.Balances[0].Amount != e.faucet.String() {
			t.Fatalf("balance after the faucet storm: %+v, want one grant of %s", w, e.faucet)
		}
		// A wallet already holding 5 grants is not topped up, whatever the clock.
		_, rich := e.user("rich@example.com", "buyer")
		var rw struct {
			Address string `json:"address"`
		}
		rich.do(http.MethodGet, "/wallet", nil, &rw)
		to, _ := sdk.AccAddressFromBech32(rw.Address)
		faucet := e.faucetSigner
		if _, err := e.chain.Send(ctx, faucet, banktypes.NewMsgSend(faucet.Address(), to, sdk.NewCoins(sdk.NewCoin(app.BondDenom, e.faucet.MulRaw(5))))); err != nil {
			t.Fatal(err)
		}
		var out struct {
			Error struct{ Code string } `json:"error"`
		}
		if code := rich.do(http.MethodPost, "/wallet/faucet", nil, &out); code != http.StatusConflict {
			t.Fatalf("faucet for a full wallet: %d %+v", code, out)
		}
	})

	t.Run("withdrawals race", func(t *testing.T) {
		_, api := e.user("race@example.com", "buyer")
		if code := api.do(http.MethodPost, "/wallet/faucet", nil, nil); code != http.StatusOK {
			t.Fatalf("faucet: %d", code)
		}
		dest := chainclient.KeySigner{Key: secp256k1.GenPrivKey()}.Address().String()
		amount := e.faucet.MulRaw(6).QuoRaw(10).String()
		codes := tally(10, func() int {
			return api.do(http.MethodPost, "/wallet/withdraw", map[string]string{"to": dest, "amount": amount}, nil)
		})
		if codes[http.StatusOK] != 1 || codes[http.StatusPaymentRequired] != 9 {
			t.Fatalf("10 parallel withdrawals of 60 %%: %v, want one 200 and nine 402", codes)
		}
		if got := e.balance(dest); !got.Equal(e.faucet.MulRaw(6).QuoRaw(10)) {
			t.Fatalf("withdrawn %s, want exactly one withdrawal", got)
		}
	})

	t.Run("funds in view", func(t *testing.T) {
		// One faucet grant, and resting orders that each need a little
		// more than a quarter of it: ten placed at once, and only three
		// may rest; the balance they hold cannot be withdrawn.
		_, api := e.user("inview@example.com", "buyer")
		if code := api.do(http.MethodPost, "/wallet/faucet", nil, nil); code != http.StatusOK {
			t.Fatalf("faucet: %d", code)
		}
		const price = 1_000_000 // under every ask: the orders rest
		hours, need := int64(0), highway.Total{}
		for h := int64(1); h < 10_000; h++ {
			if _, _, n, ok := e.srv.market().EscrowFor(price, 1, h); ok && n.Cmp(highway.TotalOf(highway.Amount(e.faucet.Int64()/4))) > 0 {
				hours, need = h, n
				break
			}
		}
		if hours == 0 || need.Mul(3).Cmp(highway.TotalOf(highway.Amount(e.faucet.Int64()))) > 0 {
			t.Fatalf("no duration whose escrow is just over a quarter of the grant (%d h, %s)", hours, need)
		}
		body := map[string]any{"type": "gtc", "model": "H100", "count": 1, "hours": hours, "max_price_per_gpu_hour": strconv.Itoa(price),
			"expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "workload": map[string]string{"command": "true"}}
		type result struct {
			code                int
			id, status, refusal string
		}
		results := tally(10, func() result {
			var out placedOrder
			code := api.do(http.MethodPost, "/orders", body, &out)
			return result{code, out.Order.ID, out.Order.Status, out.Error.Code}
		})
		var ids []string
		codes := map[string]int{}
		for r, n := range results {
			codes[strconv.Itoa(r.code)+" "+r.status+r.refusal] += n
			if r.code == http.StatusCreated {
				ids = append(ids, r.id)
			}
		}
		if len(ids) != 3 || codes["201 open"] != 3 || codes["402 insufficient_funds"] != 7 {
			t.Fatalf("10 parallel resting orders, each over a quarter of the balance: %v, want 3 resting and 7 refused", codes)
		}
		dest := chainclient.KeySigner{Key: secp256k1.GenPrivKey()}.Address().String()
		a, _ := need.Amount()
		free := e.faucet.SubRaw(3 * int64(a))
		var out placedOrder
		if code := api.do(http.MethodPost, "/wallet/withdraw", map[string]string{"to": dest, "amount": free.AddRaw(1).String()}, &out); code != http.StatusPaymentRequired {
			t.Fatalf("withdrawing into what open orders hold: %d %+v", code, out)
		}
		if code := api.do(http.MethodDelete, "/orders/"+ids[0], nil, nil); code != http.StatusOK {
			t.Fatalf("cancel: %d", code)
		}
		// Two orders hold 2·need now: what is free fits one withdrawal of
		// just over half of it, however many race for it.
		half := free.Add(math.NewIntFromUint64(uint64(a))).QuoRaw(2).AddRaw(1).String()
		codes = map[string]int{}
		for code, n := range tally(4, func() int {
			return api.do(http.MethodPost, "/wallet/withdraw", map[string]string{"to": dest, "amount": half}, nil)
		}) {
			codes[strconv.Itoa(code)] += n
		}
		if codes["200"] != 1 || codes["402"] != 3 {
			t.Fatalf("4 parallel withdrawals, each over half of what open orders leave free: %v, want one 200 and three 402", codes)
		}
		// Cheap orders fill up to the account's cap (8 here): two rest
		// already, six more may, and the ninth is refused.
		body["hours"] = 1
		for i := 0; i < 6; i++ {
			if code := api.do(http.MethodPost, "/orders", body, &out); code != http.StatusCreated {
				t.Fatalf("cheap resting order %d: %d %+v", i+3, code, out)
			}
		}
		if code := api.do(http.MethodPost, "/orders", body, &out); code != http.StatusConflict || out.Error.Code != "conflict" {
			t.Fatalf("an order past the open-order cap: %d %+v", code, out)
		}
	})

	t.Run("idempotency key", func(t *testing.T) {
		_, api := e.user("retry@example.com", "buyer")
		if code := api.do(http.MethodPost, "/wallet/faucet", nil, nil); code != http.StatusOK {
			t.Fatalf("faucet: %d", code)
		}
		body := map[string]any{"type": "gtc", "model": "H100", "count": 1, "hours": 1, "max_price_per_gpu_hour": "1000000",
			"expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "workload": map[string]string{"command": "true"}}
		ids := tally(10, func() string {
			var out placedOrder
			code := api.doWith(http.MethodPost, "/orders", map[string]string{"Idempotency-Key": "k-1"}, body, &out)
			return out.Order.ID + "/" + http.StatusText(code)
		})
		if len(ids) != 1 {
			t.Fatalf("10 racing requests with one key: %v, want one order", ids)
		}
		body["hours"] = 2
		var out placedOrder
		if code := api.doWith(http.MethodPost, "/orders", map[string]string{"Idempotency-Key": "k-1"}, body, &out); code != http.StatusUnprocessableEntity || out.Error.Field != "Idempotency-Key" {
			t.Fatalf("the key with another body: %d %+v", code, out)
		}
		var list struct {
			Orders []struct{ ID string } `json:"orders"`
		}
		api.do(http.MethodGet, "/orders", nil, &list)
		if len(list.Orders) != 1 {
			t.Fatalf("orders stored: %d, want 1", len(list.Orders))
		}
		// Retries racing with one key for an order that needs most of the
		// balance: each gets the first's order, none is refused for the
		// funds that order holds.
		grant := highway.TotalOf(highway.Amount(e.faucet.Int64()))
		for h := int64(1); h < 10_000; h++ {
			if _, _, n, ok := e.srv.market().EscrowFor(1_000_000, 1, h); ok && n.Mul(10).Cmp(grant.Mul(6)) > 0 {
				if n.Mul(10).Cmp(grant.Mul(9)) > 0 {
					t.Fatalf("no duration whose escrow is 60–90 %% of the grant")
				}
				body["hours"] = h
				break
			}
		}
		ids = tally(10, func() string {
			var out placedOrder
			code := api.doWith(http.MethodPost, "/orders", map[string]string{"Idempotency-Key": "k-big"}, body, &out)
			return out.Order.ID + "/" + http.StatusText(code) + out.Error.Code
		})
		if len(ids) != 1 {
			t.Fatalf("10 racing requests with one key for most of the balance: %v, want one order", ids)
		}
	})
}

// tally runs f n times at once and counts what the runs return.
func tally[K comparable](n int, f func() K) map[K]int {
	out := map[K]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := f()
			mu.Lock()
			out[k]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}
