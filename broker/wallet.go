package broker

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"

	"cosmossdk.io/math"
	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"
	sdk "github.com/cosmos/cosmos-sdk/types"
	sdkerrors "github.com/cosmos/cosmos-sdk/types/errors"
	banktypes "github.com/cosmos/cosmos-sdk/x/bank/types"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/chain/client"
	"github.com/highway-compute/highway/models"
)

// Managed wallets: each buyer gets a secp256k1 chain account whose key the
// marketplace holds sealed with AES-256-GCM under the wallet key from the
// environment (docs/decisions.md, Custody). The user id is the GCM
// additional data, so a sealed key copied onto another user's row does
// not open.

func (b *Broker) seal(userID string, key []byte) (string, error) {
	block, err := aes.NewCipher(b.cfg.WalletKey)
	if err != nil {
		return "", err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(gcm.Seal(nonce, nonce, key, []byte(userID))), nil
}

func (b *Broker) unseal(userID, sealed string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(b.cfg.WalletKey)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	if len(raw) < gcm.NonceSize() {
		return nil, errors.New("sealed key too short")
	}
	return gcm.Open(nil, raw[:gcm.NonceSize()], raw[gcm.NonceSize():], []byte(userID))
}

// EnsureWallet returns the user's wallet, creating it on first use.
func (b *Broker) EnsureWallet(ctx context.Context, userID string) (*models.Wallet, error) {
	w, err := b.store.WalletOf(ctx, userID)
	if err == nil || highway.ErrorCode(err) != highway.ENOTFOUND {
		return w, err
	}
	if len(b.cfg.WalletKey) != 32 {
		return nil, &highway.Error{Code: highway.ECONFLICT, Message: "Wallets are not configured on this marketplace."}
	}
	key := secp256k1.GenPrivKey()
	sealed, err := b.seal(userID, key.Key)
	if err != nil {
		return nil, err
	}
	return b.store.CreateWallet(ctx, &models.Wallet{UserID: userID, Address: sdk.AccAddress(key.PubKey().Address()).String(), SealedKey: sealed})
}

func (b *Broker) walletSigner(ctx context.Context, userID string) (client.Signer, error) {
	w, err := b.store.WalletOf(ctx, userID)
	if err != nil {
		return nil, err
	}
	raw, err := b.unseal(userID, w.SealedKey)
	if err != nil {
		return nil, fmt.Errorf("unseal wallet of %s: %w", userID, err)
	}
	return client.KeySigner{Key: &secp256k1.PrivKey{Key: raw}}, nil
}

func (b *Broker) balance(ctx context.Context, address string) (highway.Total, error) {
	addr, err := sdk.AccAddressFromBech32(address)
	if err != nil {
		return highway.Total{}, err
	}
	bal, err := b.cfg.Chain.Balance(ctx, addr, b.cfg.Denom)
	return client.TotalFromChain(bal), err
}

// walletBalance is the balance of a user's managed wallet in the lease
// denom; ENOTFOUND when the user has no wallet yet.
func (b *Broker) walletBalance(ctx context.Context, userID string) (math.Int, error) {
	w, err := b.store.WalletOf(ctx, userID)
	if err != nil {
		return math.Int{}, err
	}
	addr, err := sdk.AccAddressFromBech32(w.Address)
	if err != nil {
		return math.Int{}, err
	}
	return b.cfg.Chain.Balance(ctx, addr, b.cfg.Denom)
}

// WalletInfo is a wallet with its balance.
type WalletInfo struct {
	Address string
	Balance highway.Total
	Denom   string
}

// Wallet returns the user's wallet and its on-chain balance.
func (b *Broker) Wallet(ctx context.Context, userID string) (WalletInfo, error) {
	if b.cfg.Chain == nil {
		return WalletInfo{}, &highway.Error{Code: highway.ECONFLICT, Message: "This marketplace is not connected to a chain."}
	}
	w, err := b.EnsureWallet(ctx, userID)
	if err != nil {
		return WalletInfo{}, err
	}
	bal, err := b.balance(ctx, w.Address)
	if err != nil {
		return WalletInfo{}, fmt.Errorf("read balance: %w", err)
	}
	return WalletInfo{Address: w.Address, Balance: bal, Denom: b.cfg.Denom}, nil
}

// WalletHistory is the user's wallet's transfers as the chain indexer
// recorded them, newest first (none before the wallet exists).
func (b *Broker) WalletHistory(ctx context.Context, userID string, limit int) ([]models.WalletEvent, error) {
	w, err := b.store.WalletOf(ctx, userID)
	if highway.ErrorCode(err) == highway.ENOTFOUND {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return b.store.WalletEvents(ctx, w.Address, limit)
}

// HasFaucet reports whether the dev faucet is on.
func (b *Broker) HasFaucet() bool { return b.cfg.Faucet != nil && b.cfg.Chain != nil }

// Faucet sends the dev faucet's amount to the user's wallet.
func (b *Broker) Faucet(ctx context.Context, userID string) (string, error) {
	if !b.HasFaucet() {
		return "", highway.Errorf(highway.ENOTFOUND, "There is no faucet on this marketplace.")
	}
	info, err := b.Wallet(ctx, userID)
	if err != nil {
		return "", err
	}
	// The faucet tops up, it does not fill: anyone can sign up, and an
	// uncapped faucet is a way to drain its account.
	if limit := b.faucetCap(); info.Balance.Cmp(limit) >= 0 {
		return "", &highway.Error{Code: highway.ECONFLICT, Message: fmt.Sprintf(
			"Your wallet holds %s %s: the faucet only tops up wallets below %s.", info.Balance, b.cfg.Denom, limit)}
	}
	to, _ := sdk.AccAddressFromBech32(info.Address)
	res, err := b.cfg.Chain.Send(ctx, b.cfg.Faucet, banktypes.NewMsgSend(b.cfg.Faucet.Address(), to,
		client.Coins(b.cfg.Denom, b.cfg.FaucetAmount)))
	if errors.Is(err, sdkerrors.ErrInsufficientFunds) {
		return "", &highway.Error{Code: highway.ECONFLICT, Message: "The faucet is empty."}
	}
	if err != nil {
		return "", fmt.Errorf("faucet: %w", err)
	}
	return res.Hash, nil
}

// faucetCap is the balance at and above which the faucet refuses.
func (b *Broker) faucetCap() highway.Total {
	if b.cfg.FaucetCap <= 0 {
		return highway.TotalOf(b.cfg.FaucetAmount).Mul(5)
	}
	return highway.TotalOf(b.cfg.FaucetCap)
}

// Withdraw sends amount from the user's wallet to a bech32 address.
func (b *Broker) Withdraw(ctx context.Context, userID, to string, amount highway.Amount) (string, error) {
	dest, err := sdk.AccAddressFromBech32(to)
	if err != nil {
		return "", &highway.Error{Code: highway.EINVALID, Field: "to", Message: "Not a valid address for this chain (hwy1…)."}
	}
	if amount <= 0 {
		return "", &highway.Error{Code: highway.EINVALID, Field: "amount", Message: "Amount must be a positive integer of micro-units."}
	}
	// What open orders hold in view stays: their leases are funded from
	// it. Under the buyer's lock until the transfer commits, so parallel
	// withdrawals (or an order placed meanwhile) see each other; the open
	// orders are read before the balance, as PlaceOrder reads them.
	mu := b.buyerLock(userID)
	mu.Lock()
	defer mu.Unlock()
	held, open, err := b.fundsInView(ctx, userID)
	if err != nil {
		return "", err
	}
	info, err := b.Wallet(ctx, userID)
	if err != nil {
		return "", err
	}
	if info.Balance.Cmp(highway.TotalOf(amount)) < 0 {
		return "", &highway.Error{Code: highway.EINSUFFICIENTFUNDS, Field: "amount", Message: fmt.Sprintf("Your balance is %s %s.", info.Balance, b.cfg.Denom)}
	}
	if info.Balance.Cmp(held.Add(highway.TotalOf(amount))) < 0 {
		return "", &highway.Error{Code: highway.EINSUFFICIENTFUNDS, Field: "amount",
			Message: fmt.Sprintf("Your balance is %s %s, and your %d open orders hold up to %s of it for their leases; cancel them to withdraw it.", info.Balance, b.cfg.Denom, open, held)}
	}
	signer, err := b.walletSigner(ctx, userID)
	if err != nil {
		return "", err
	}
	res, err := b.cfg.Chain.Send(ctx, signer, banktypes.NewMsgSend(signer.Address(), dest, client.Coins(b.cfg.Denom, amount)))
	if err != nil {
		return "", chainError(err)
	}
	return res.Hash, nil
}
