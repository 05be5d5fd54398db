// Package client is the one way the marketplace and the provider agent
// talk to highwayd: build, simulate (gas), sign, broadcast and wait for
// transactions with per-account sequence tracking and retry on sequence
// mismatch; query the escrow, bank and auth modules; and follow new blocks
// with their events, catching up from any height after a disconnect.
package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	errorsmod "cosmossdk.io/errors"
	"cosmossdk.io/math"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	"github.com/cosmos/cosmos-sdk/client/grpc/cmtservice"
	"github.com/cosmos/cosmos-sdk/codec"
	cryptotypes "github.com/cosmos/cosmos-sdk/crypto/types"
	sdk "github.com/cosmos/cosmos-sdk/types"
	sdkerrors "github.com/cosmos/cosmos-sdk/types/errors"
	txtypes "github.com/cosmos/cosmos-sdk/types/tx"
	authtypes "github.com/cosmos/cosmos-sdk/x/auth/types"
	banktypes "github.com/cosmos/cosmos-sdk/x/bank/types"

	"github.com/highway-compute/highway/chain/app"
	escrowtypes "github.com/highway-compute/highway/chain/x/escrow/types"
)

// Config locates a node.
type Config struct {
	// GRPC is the node's gRPC address (host:port), or several nodes'
	// separated by commas: the client uses the first that answers and
	// moves to the next when it stops answering.
	GRPC string
	// RPC is the node's CometBFT RPC URL (http://host:port), for following
	// blocks; several separated by commas are tried in turn, a session at
	// a time.
	RPC string
	// ChainID must match the node's; transactions are bound to it.
	ChainID string
	// GasPrice is the fee per unit of gas, e.g. "0uhwy" on a dev chain or
	// "0.025uhwy"; empty means free.
	GasPrice string
	// GasAdjustmentPct scales simulated gas (default 140: simulation
	// under-counts a little when state moves between simulate and deliver).
	GasAdjustmentPct uint64
	// Timeout bounds the wait for inclusion (default 30 s). A wait that
	// ends without the transaction then waits on for its timeout height
	// (below), so Send still reports what happened to it.
	Timeout time.Duration
	// TimeoutBlocks is how many blocks past the latest a transaction may
	// still be included (its timeout_height; default 20). Past that it
	// never can be, so a transaction not yet seen is known not applied
	// and safe to send again.
	TimeoutBlocks uint64
}

// Client talks to one node. It is safe for concurrent use; transactions
// from one signer are serialised so sequences never collide.
type Client struct {
	cfg      Config
	conn     *grpc.ClientConn
	enc      app.EncodingConfig
	gasPrice sdk.DecCoins

	Escrow escrowtypes.QueryClient
	Bank   banktypes.QueryClient
	Auth   authtypes.QueryClient
	Tx     txtypes.ServiceClient
	Comet  cmtservice.ServiceClient

	mu       sync.Mutex
	accounts map[string]*account
	resends  atomic.Uint64
}

type account struct {
	mu       sync.Mutex
	number   uint64
	sequence uint64
	loaded   bool
}

// Dial connects to a node's gRPC endpoint.
func Dial(cfg Config) (*Client, error) {
	if len(Endpoints(cfg.GRPC)) == 0 || cfg.ChainID == "" {
		return nil, errors.New("chain client: GRPC address and chain id are required")
	}
	if cfg.GasAdjustmentPct == 0 {
		cfg.GasAdjustmentPct = 140
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.TimeoutBlocks == 0 {
		cfg.TimeoutBlocks = 20
	}
	var price sdk.DecCoins
	if cfg.GasPrice != "" {
		p, err := sdk.ParseDecCoins(cfg.GasPrice)
		if err != nil {
			return nil, fmt.Errorf("chain client: gas price %q: %w", cfg.GasPrice, err)
		}
		price = p
	}
	enc := app.MakeEncodingConfig()
	// The SDK's gogoproto codec: the default gRPC codec cannot marshal
	// gogoproto custom types such as math.Int.
	// Every node's address goes to one connection whose pick_first policy
	// uses the first that connects and, when it fails, the next: a dead
	// validator costs a reconnect, not an outage.
	opts := []grpc.DialOption{
		grpc.WithDefaultServiceConfig(nodesServiceConfig),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(codec.NewProtoCodec(enc.InterfaceRegistry).GRPCCodec())),
	}
	nodes := Endpoints(cfg.GRPC)
	target := nodes[0]
	if len(nodes) > 1 {
		// Each address keeps its own name as the connection's authority,
		// as it would alone (a proxy in front of a node routes by it).
		addrs := make([]resolver.Address, len(nodes))
		for i, n := range nodes {
			addrs[i] = resolver.Address{Addr: n, ServerName: n}
		}
		res := manual.NewBuilderWithScheme("highway-nodes")
		res.InitialState(resolver.State{Addresses: addrs})
		target = res.Scheme() + ":///chain"
		opts = append(opts, grpc.WithResolvers(res))
	}
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("chain client: dial %s: %w", cfg.GRPC, err)
	}
	return &Client{
		cfg: cfg, conn: conn, enc: enc, gasPrice: price,
		Escrow: escrowtypes.NewQueryClient(conn), Bank: banktypes.NewQueryClient(conn),
		Auth: authtypes.NewQueryClient(conn), Tx: txtypes.NewServiceClient(conn), Comet: cmtservice.NewServiceClient(conn),
		accounts: map[string]*account{},
	}, nil
}

// nodesServiceConfig: pick_first over the node list, and queries (never
// a broadcast, which must not reach a node twice) retried when the node
// they went to dropped them, so a call in flight when a node dies goes to
// the next one instead of failing.
const nodesServiceConfig = `{
  "loadBalancingConfig": [{"pick_first": {}}],
  "methodConfig": [{
    "name": [
      {"service": "highway.escrow.v1.Query"},
      {"service": "cosmos.bank.v1beta1.Query"},
      {"service": "cosmos.auth.v1beta1.Query"},
      {"service": "cosmos.base.tendermint.v1beta1.Service"},
      {"service": "cosmos.tx.v1beta1.Service", "method": "GetTx"},
      {"service": "cosmos.tx.v1beta1.Service", "method": "Simulate"}
    ],
    "retryPolicy": {
      "maxAttempts": 4,
      "initialBackoff": "0.1s",
      "maxBackoff": "1s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}`

// Endpoints splits a comma-separated list of node addresses, dropping
// blanks.
func Endpoints(list string) []string {
	var out []string
	for _, e := range strings.Split(list, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// ChainID is the chain the client signs for.
func (c *Client) ChainID() string { return c.cfg.ChainID }

// Encoding returns the codecs.
func (c *Client) Encoding() app.EncodingConfig { return c.enc }

// Signer signs transactions for one account. Keys never leave the process
// that holds them: the marketplace signs for its managed buyer wallets and
// the arbiter; the agent signs for its provider.
type Signer interface {
	Address() sdk.AccAddress
	PubKey() cryptotypes.PubKey
	Sign(msg []byte) ([]byte, error)
}

// KeySigner signs with an in-memory private key.
type KeySigner struct{ Key cryptotypes.PrivKey }

// Address implements Signer.
func (k KeySigner) Address() sdk.AccAddress { return sdk.AccAddress(k.Key.PubKey().Address()) }

// PubKey implements Signer.
func (k KeySigner) PubKey() cryptotypes.PubKey { return k.Key.PubKey() }

// Sign implements Signer.
func (k KeySigner) Sign(msg []byte) ([]byte, error) { return k.Key.Sign(msg) }

// TxResult is a committed transaction.
type TxResult struct {
	Hash    string
	Height  int64
	GasUsed int64
	Data    []byte
	Events  []Event

	// Of a broadcast attempt (settle.go): the sequence it was signed
	// with, the first and last heights that can include it, the height
	// where it failed at delivery (0: none), and whether it is known
	// never to apply.
	sequence, fromHeight, timeoutHeight, failedAt uint64
	dead                                          bool
}

// Attr returns the first value of attribute key in the first event of
// eventType, unquoted (typed events carry JSON values).
func (r *TxResult) Attr(eventType, key string) (string, bool) {
	for _, e := range r.Events {
		if e.Type == eventType {
			v, ok := e.Attributes[key]
			return strings.Trim(v, `"`), ok
		}
	}
	return "", false
}

// Event is an ABCI event with string attributes.
type Event struct {
	Type       string
	Attributes map[string]string
}

// WaitTx polls until the transaction commits (or ctx / the timeout ends).
// A committed transaction that failed returns its registered error.
func (c *Client) WaitTx(ctx context.Context, hash string) (*TxResult, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		res, err := c.Tx.GetTx(ctx, &txtypes.GetTxRequest{Hash: hash})
		if err == nil && res.TxResponse != nil {
			r := res.TxResponse
			out := c.result(r)
			if r.Code != 0 {
				return out, errorsmod.ABCIError(r.Codespace, r.Code, r.RawLog)
			}
			return out, nil
		}
		if err != nil && status.Code(err) != codes.NotFound {
			// "tx not found" is the normal answer until it commits; other
			// errors (node restarting) are retried until the timeout.
			if !strings.Contains(err.Error(), "not found") && ctx.Err() != nil {
				return &TxResult{Hash: hash}, fmt.Errorf("chain client: wait for %s: %w", hash, err)
			}
		}
		select {
		case <-ctx.Done():
			return &TxResult{Hash: hash}, fmt.Errorf("chain client: tx %s not committed yet, outcome unknown: %w", hash, ctx.Err())
		case <-tick.C:
		}
	}
}

// result converts a committed transaction's response.
func (c *Client) result(r *sdk.TxResponse) *TxResult {
	out := &TxResult{Hash: r.TxHash, Height: r.Height, GasUsed: r.GasUsed}
	for _, e := range r.Events {
		ev := Event{Type: e.Type, Attributes: map[string]string{}}
		for _, a := range e.Attributes {
			ev.Attributes[a.Key] = a.Value
		}
		out.Events = append(out.Events, ev)
	}
	if r.Code == 0 && r.Data != "" {
		out.Data = []byte(r.Data)
	}
	return out
}

// abciErrorFromStatus turns a simulation failure ("... [codespace:code]")
// back into the chain's registered error where it can.
func abciErrorFromStatus(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	msg := st.Message()
	// The SDK formats simulation errors as "...: <log>" with the codespace
	// and code in the gRPC details; fall back to matching registered text.
	for _, reg := range registeredErrors {
		if strings.Contains(msg, reg.Error()) {
			return errorsmod.Wrap(reg, msg)
		}
	}
	return fmt.Errorf("chain client: simulate: %s", msg)
}

// registeredErrors are matched in simulation failures so callers can use
// errors.Is before anything is broadcast.
var registeredErrors = []*errorsmod.Error{
	escrowtypes.ErrLeaseNotFound, escrowtypes.ErrUnauthorized, escrowtypes.ErrInvalidQuote, escrowtypes.ErrQuoteExpired,
	escrowtypes.ErrQuoteSignature, escrowtypes.ErrQuoteReused, escrowtypes.ErrInvalidAmount, escrowtypes.ErrLeaseNotActive,
	escrowtypes.ErrWrongEpoch, escrowtypes.ErrProofWindow, escrowtypes.ErrDuplicateProof, escrowtypes.ErrInvalidProof,
	escrowtypes.ErrDisputeWindow, escrowtypes.ErrNotArbiter, escrowtypes.ErrInvalidSplit, escrowtypes.ErrInvalidParams,
	escrowtypes.ErrUnknownClass, escrowtypes.ErrInvalidAuthority, escrowtypes.ErrNotDisputed, escrowtypes.ErrSeedUnavailable,
	escrowtypes.ErrInvalidAddress, escrowtypes.ErrInsufficientFunds, escrowtypes.ErrInvalidReason, escrowtypes.ErrExtension,
	sdkerrors.ErrInsufficientFunds, sdkerrors.ErrWrongSequence, sdkerrors.ErrOutOfGas, sdkerrors.ErrInsufficientFee,
}

// EscrowParams returns the escrow module's current parameters.
func (c *Client) EscrowParams(ctx context.Context) (escrowtypes.Params, error) {
	res, err := c.Escrow.Params(ctx, &escrowtypes.QueryParamsRequest{})
	if err != nil {
		return escrowtypes.Params{}, err
	}
	return res.Params, nil
}

// LatestHeight returns the height and time of the node's latest block.
func (c *Client) LatestHeight(ctx context.Context) (int64, time.Time, error) {
	res, err := c.Comet.GetLatestBlock(ctx, &cmtservice.GetLatestBlockRequest{})
	if err != nil {
		return 0, time.Time{}, err
	}
	return res.SdkBlock.Header.Height, res.SdkBlock.Header.Time, nil
}

// Balance returns addr's balance of denom.
func (c *Client) Balance(ctx context.Context, addr sdk.AccAddress, denom string) (math.Int, error) {
	res, err := c.Bank.Balance(ctx, &banktypes.QueryBalanceRequest{Address: addr.String(), Denom: denom})
	if err != nil {
		return math.Int{}, err
	}
	return res.Balance.Amount, nil
}

// Lease returns a lease.
func (c *Client) Lease(ctx context.Context, id uint64) (escrowtypes.Lease, error) {
	res, err := c.Escrow.Lease(ctx, &escrowtypes.QueryLeaseRequest{Id: id})
	if err != nil {
		if status.Code(err) == codes.NotFound {
			return escrowtypes.Lease{}, errorsmod.Wrapf(escrowtypes.ErrLeaseNotFound, "lease %d", id)
		}
		return escrowtypes.Lease{}, err
	}
	return res.Lease, nil
}
