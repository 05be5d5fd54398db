package broker

import (
	"context"
	"time"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/models"
)

// Store is everything the broker reads and writes, as the narrow
// interfaces of its jobs; *models.Store implements it. Each job's
// interface names exactly the queries that job makes, so a change to one
// is visible in what it may touch.
type Store interface {
	alertStore
	engineStore
	orderStore
	leaseStore
	indexerStore
	machineStore
	providerStore
	walletStore
	statsStore
	agentStore
	mailboxStore
	followStore
}

var _ Store = (*models.Store)(nil)

// engineStore: the engine writer (engine.go) and start-up (broker.go): the
// command log and its checkpoints, the charts' snapshots, and what a
// restart reads back.
type engineStore interface {
	AppendMarketLog(ctx context.Context, entries []models.MarketLogEntry) error
	MarketLog(ctx context.Context, after int64, fn func([]models.MarketLogEntry) error) error
	SaveMarketCheckpoint(ctx context.Context, seq int64, state string, now time.Time) error
	MarketCheckpoints(ctx context.Context) ([]models.MarketCheckpoint, error)
	FirstMarketLogSeq(ctx context.Context) (int64, error)
	AddSnapshots(ctx context.Context, rows []models.MarketSnapshot) error
	AllMachines(ctx context.Context) ([]models.Machine, error)
	AgentOfMachine(ctx context.Context, machineID string) (*models.Agent, error)
	OrdersWithStatus(ctx context.Context, status string) ([]models.Order, error)
	Prices(ctx context.Context) ([]models.Price, error)
}

// orderStore: orders and their flight to a lease (orders.go, flight.go).
type orderStore interface {
	CreateOrder(ctx context.Context, o *models.Order) (existing bool, err error)
	OrderByID(ctx context.Context, id string) (*models.Order, error)
	OrderByIdempotencyKey(ctx context.Context, buyerID, key string, now time.Time) (*models.Order, error)
	OpenOrdersOf(ctx context.Context, buyerID string, limit int) ([]models.Order, error)
	UpdateOrder(ctx context.Context, o *models.Order) error
	SetOrderQuoteNonce(ctx context.Context, orderID string, nonce int64) error
	ClearRegistryLogin(ctx context.Context, orderID string) error
	OrderByQuoteNonce(ctx context.Context, nonce int64) (*models.Order, error)
	CreateLease(ctx context.Context, l *models.Lease) error
	WalletOf(ctx context.Context, userID string) (*models.Wallet, error)
}

// leaseStore: leases after they start: workload reports, close, disputes
// (leases.go).
type leaseStore interface {
	AppendLogs(ctx context.Context, lines []models.LeaseLog) error
	CreateDispute(ctx context.Context, d *models.Dispute) error
	DisputeByID(ctx context.Context, id string) (*models.Dispute, error)
	LeaseByChainID(ctx context.Context, chainID uint64) (*models.Lease, error)
	LeaseByID(ctx context.Context, id string) (*models.Lease, error)
	UpdateDispute(ctx context.Context, id string, cols map[string]any) error
	UpdateLease(ctx context.Context, id string, cols map[string]any) error
	GrowLease(ctx context.Context, id string, from, to int64, endsAt time.Time) (bool, error)
	AutoExtendDue(ctx context.Context, before time.Time, limit int) ([]models.Lease, error)
	PreemptLease(ctx context.Context, orderID, by string, at time.Time) (*models.Lease, bool, error)
	PreemptedDue(ctx context.Context, now time.Time, limit int) ([]models.Lease, error)
	UnpreemptedInterruptible(ctx context.Context) ([]models.Lease, error)
	CreateShellSession(ctx context.Context, ss *models.ShellSession) error
	EndShellSession(ctx context.Context, id string, bytesIn, bytesOut int64, reason string) error
	CreatePortForward(ctx context.Context, f *models.PortForward) error
	PortForwards(ctx context.Context, leaseID string, limit int) ([]models.PortForward, error)
	ClosePortForwards(ctx context.Context, leaseID string, port int, reason string) ([]string, error)
	PortForwardBySlug(ctx context.Context, slug string) (*models.PortForward, error)
}

// indexerStore: the chain indexer (indexer.go).
type indexerStore interface {
	AddPendingEpoch(ctx context.Context, e models.LeaseEpoch) error
	AddWalletEvents(ctx context.Context, evs []models.WalletEvent) error
	Cursor(ctx context.Context, name string) (int64, error)
	SetCursor(ctx context.Context, name string, height int64) error
	LeaseByChainID(ctx context.Context, chainID uint64) (*models.Lease, error)
	ManagedAddresses(ctx context.Context, addrs []string) ([]string, error)
	UpsertEpoch(ctx context.Context, e models.LeaseEpoch) error
}

// machineStore: machines: listing, verification, uptime and reliability
// (machines.go, verify.go, uptime.go).
type machineStore interface {
	MachineByID(ctx context.Context, id string) (*models.Machine, error)
	SetMachineListing(ctx context.Context, machineID, providerAddress, region string) error
	SetMachineVerified(ctx context.Context, machineID string, at *time.Time, verifyErr string, measuredMilliH100 int64) error
	DeleteUptimeBefore(ctx context.Context, day int32) error
	EpochCounts(ctx context.Context, since time.Time, machineID string) ([]models.EpochCount, error)
	PutUptime(ctx context.Context, rows []models.MachineUptime) error
	UptimeSince(ctx context.Context, day int32) ([]models.MachineUptime, error)
}

// providerStore: providers: enrollment, registration, suspension, asks
// (providers.go, prices.go).
type providerStore interface {
	CreateEnrollmentToken(ctx context.Context, t *models.EnrollmentToken) error
	RegisterAgent(ctx context.Context, tokenHash string, now time.Time, m *models.Machine, a *models.Agent) error
	SetProviderSuspended(ctx context.Context, providerID, reason string, at *time.Time) error
	UserByID(ctx context.Context, id string) (*models.User, error)
	SetPrice(ctx context.Context, p models.Price) error
	SetSpotTerms(ctx context.Context, providerID, model string, floor, noticeS int64) (bool, error)
}

// walletStore: managed wallets (wallet.go).
type walletStore interface {
	CreateWallet(ctx context.Context, w *models.Wallet) (*models.Wallet, error)
	WalletEvents(ctx context.Context, address string, limit int) ([]models.WalletEvent, error)
	WalletOf(ctx context.Context, userID string) (*models.Wallet, error)
}

// statsStore: the network figures (stats.go).
type statsStore interface {
	Totals(ctx context.Context) (models.NetworkTotals, error)
	Volumes(ctx context.Context) (escrowed, paid highway.Total, err error)
	RestingBids(ctx context.Context, model, region string, limit int) ([]models.Order, error)
	Matches(ctx context.Context, model, region string, since time.Time, limit int) ([]models.Match, error)
}

// alertStore: notifications and their webhooks (alerts.go).
type alertStore interface {
	AddNotification(ctx context.Context, n *models.Notification, body func(*models.Notification) string) (bool, error)
	AddWebhook(ctx context.Context, h *models.Webhook, max int) error
	Webhook(ctx context.Context, userID, id string) (*models.Webhook, error)
	AddDelivery(ctx context.Context, d *models.WebhookDelivery) error
	DueDeliveries(ctx context.Context, now time.Time, limit int) ([]models.WebhookDelivery, error)
	RecordDelivery(ctx context.Context, d *models.WebhookDelivery) error
	SetBalanceAlert(ctx context.Context, userID string, below int64) error
	BalanceAlerts(ctx context.Context, after string, limit int) ([]models.User, error)
	PendingDeliveries(ctx context.Context, webhookID, kind string) (int64, error)
	SetBalanceLow(ctx context.Context, userID string, low bool) error
	LeasesEndingBefore(ctx context.Context, t time.Time, limit int) ([]models.Lease, error)
}
