package broker

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"cosmossdk.io/math"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/chain/client"
	escrowtypes "github.com/highway-compute/highway/chain/x/escrow/types"
	"github.com/highway-compute/highway/poc"
)

// Chain is what the broker needs from the chain; *client.Client implements it.
type Chain interface {
	ChainID() string
	Send(ctx context.Context, s client.Signer, msgs ...sdk.Msg) (*client.TxResult, error)
	Lease(ctx context.Context, id uint64) (escrowtypes.Lease, error)
	EscrowParams(ctx context.Context) (escrowtypes.Params, error)
	Balance(ctx context.Context, addr sdk.AccAddress, denom string) (math.Int, error)
	Follow(ctx context.Context, from int64, opts client.FollowOptions, fn func(client.Block) error) error
	LatestHeight(ctx context.Context) (int64, time.Time, error)
}

// Config configures a Broker.
type Config struct {
	Store  Store
	Chain  Chain // nil: the market lists and matches, but nothing can be leased
	Logger *slog.Logger
	// Regions are the catalog regions (ids), in a fixed order: the engine's
	// log depends on it, so changing the list needs a fresh log.
	Regions []string
	// Models are the GPU models that may be listed; default: every class
	// poc calibrates.
	Models            []string
	HeartbeatInterval time.Duration
	OfflineMisses     int
	// ReservationTTL is how long a match may take to become a lease on
	// chain (quote from the agent + one transaction); default 60 s.
	ReservationTTL time.Duration
	// MaxOpenOrders is how many open orders (resting, or matched with the
	// lease not yet on chain) one buyer may have at once; default 100.
	MaxOpenOrders int
	// EpochDuration is the chain's epoch (epoch blocks × block time); it
	// converts prices per GPU-hour to prices per epoch.
	EpochDuration time.Duration
	// QuoteTTL is how long a quote stays valid (≤ the chain's max_quote_ttl).
	QuoteTTL time.Duration
	// Denom is the chain denom leases are paid in.
	Denom string
	// WalletKey seals the managed wallets' keys (32 bytes).
	WalletKey []byte
	// Faucet, when set, funds buyers in dev mode (FaucetAmount each time,
	// only to a wallet holding less than FaucetCap: default 5 × the amount;
	// the marketplace also allows one grant per account per hour).
	Faucet       client.Signer
	FaucetAmount highway.Amount
	FaucetCap    highway.Amount
	// Arbiter signs MsgResolveDispute; nil: disputes cannot be resolved here.
	Arbiter client.Signer
	// VerifyParams and VerifyWork shape the verification PoC a machine
	// must clear before it is listed (the chain's PoC params in practice).
	VerifyParams poc.Params
	VerifyWork   time.Duration
	// SnapshotEvery is how often the market is recorded for the charts
	// (default one minute).
	SnapshotEvery time.Duration
	// CheckpointEvery is how many logged commands pass between checkpoints
	// of the engine (default 10 000): a start or takeover restores the
	// newest and replays at most about this many commands.
	CheckpointEvery int
	// Follower makes a read-only view of the market for a replica that
	// does not lead: Follow keeps it current from the leader's log, and
	// every write is refused with ErrFollower (follow.go).
	Follower bool
	// PublishChanges has Run record the change count in the database
	// after each change, for the followers' open pages (on PostgreSQL,
	// where there can be followers).
	PublishChanges bool
	// AutoExtendBefore is how long before its end a lease with auto-extend
	// on is extended (default 15 minutes), and AutoExtendEvery how often
	// the leader looks (default 30 s).
	AutoExtendBefore time.Duration
	AutoExtendEvery  time.Duration
	// AllowPrivateWebhooks lets webhooks point at loopback and private
	// addresses (dev mode and tests, with a local receiver).
	AllowPrivateWebhooks bool
	// WebhookEvery is how often due webhook deliveries are sent (default
	// 2 s), WebhookRetryBase the first retry's wait, doubling after each
	// failure (default 30 s), and AlertEvery how often the leader looks
	// for leases about to end and low balances (default 30 s).
	WebhookEvery, WebhookRetryBase, AlertEvery time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// fill checks c and fills in the defaults of what it leaves unset.
func (c *Config) fill() error {
	if c.Store == nil {
		return errors.New("broker: Store is required")
	}
	if len(c.Regions) == 0 {
		return errors.New("broker: at least one region is required")
	}
	if len(c.Models) == 0 {
		for _, r := range poc.ClassRates() {
			c.Models = append(c.Models, r.Class)
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.HeartbeatInterval, 10*time.Second)
	def(&c.ReservationTTL, 60*time.Second)
	def(&c.EpochDuration, time.Hour)
	def(&c.QuoteTTL, 2*time.Minute)
	def(&c.VerifyWork, 5*time.Second)
	def(&c.SnapshotEvery, time.Minute)
	if c.CheckpointEvery <= 0 {
		c.CheckpointEvery = 10_000
	}
	if c.MaxOpenOrders <= 0 {
		c.MaxOpenOrders = DefaultMaxOpenOrders
	}
	if c.OfflineMisses < 2 {
		c.OfflineMisses = 3
	}
	if c.WebhookEvery <= 0 {
		c.WebhookEvery = 2 * time.Second
	}
	if c.WebhookRetryBase <= 0 {
		c.WebhookRetryBase = 30 * time.Second
	}
	if c.AlertEvery <= 0 {
		c.AlertEvery = 30 * time.Second
	}
	if c.AutoExtendBefore <= 0 {
		c.AutoExtendBefore = 15 * time.Minute
	}
	if c.AutoExtendEvery <= 0 {
		c.AutoExtendEvery = 30 * time.Second
	}
	if c.Denom == "" {
		c.Denom = "uhwy"
	}
	if c.VerifyParams.Dim == 0 {
		c.VerifyParams = poc.DefaultParams()
	}
	if c.Chain != nil && len(c.WalletKey) != 32 {
		return errors.New("broker: WalletKey must be 32 bytes")
	}
	return nil
}
