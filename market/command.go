package market

// Limits. They bound every input so that no arithmetic in the engine can
// overflow except price × GPUs × hours, which is checked (ErrOverflow), and
// so that the fixed-size index entries (one RTT per region inline) suffice.
const (
	// MaxRegions is the most catalog regions: each index entry carries one
	// RTT per region inline, so the array size is a compile-time constant.
	MaxRegions = 32
	// MaxModels is the most catalog GPU models.
	MaxModels = 4096
	// MaxGPUs is the most GPUs on one machine (one bit each in a uint64
	// mask, which is what makes double-renting checkable and cheap).
	MaxGPUs = 64
	// MaxRTTms bounds measured RTTs and an order's max RTT (10 s: beyond
	// that a "latency" is a timeout).
	MaxRTTms = 10000
	// MaxVRAMGiB bounds VRAM per GPU.
	MaxVRAMGiB = 65535
	// MaxReliabilityBps is 100.00 %.
	MaxReliabilityBps = 10000
	// MaxHours is ten years of GPU-hours per lease.
	MaxHours = 87600
	// MaxIDLen bounds every caller-chosen id (UUIDv7 text is 36 bytes).
	MaxIDLen = 128
	// MaxTime bounds Now and expiries (unix ms; year ~287 000), leaving
	// room to add an interval without overflow.
	MaxTime = 1 << 53
	// MaxInterval bounds the configured heartbeat interval and reservation TTL.
	MaxInterval = 1 << 40
	// MinNoticeMs and MaxNoticeMs bound the preemption notice a provider
	// gives an interruptible lease (10 s to 5 min): long enough to write a
	// checkpoint, short enough that an on-demand buyer still gets GPUs now.
	MinNoticeMs = 10_000
	MaxNoticeMs = 300_000
	// DefaultNoticeMs is the notice when the provider names none.
	DefaultNoticeMs = 30_000
)

// Config is the engine's catalog and its timing rules. The catalogs are
// ordered lists: a model's or region's index is its position, so two
// engines built from the same Config intern names identically.
type Config struct {
	// Models are the GPU models that may be listed or ordered.
	Models []string
	// Regions are the buyer/provider regions; an offer reports one RTT per
	// region, in this order.
	Regions []string
	// HeartbeatIntervalMs is how often agents beat.
	HeartbeatIntervalMs int64
	// MissedBeats is how many intervals may pass without a heartbeat before
	// the machine is offline. At least 2: one lost packet never delists a
	// machine that is serving leases.
	MissedBeats int64
	// ReservationTTLms is how long a match holds GPUs waiting for the lease
	// to be confirmed on-chain before they return to the book.
	ReservationTTLms int64
}

func (c *Config) validate() error {
	if len(c.Models) == 0 || len(c.Models) > MaxModels || len(c.Regions) == 0 || len(c.Regions) > MaxRegions {
		return ErrBadConfig
	}
	if c.HeartbeatIntervalMs <= 0 || c.HeartbeatIntervalMs > MaxInterval || c.MissedBeats < 2 || c.MissedBeats > 1000 ||
		c.ReservationTTLms <= 0 || c.ReservationTTLms > MaxInterval {
		return ErrBadConfig
	}
	for _, names := range [][]string{c.Models, c.Regions} {
		seen := make(map[string]bool, len(names))
		for _, n := range names {
			if n == "" || len(n) > MaxIDLen || seen[n] {
				return ErrBadConfig
			}
			seen[n] = true
		}
	}
	return nil
}

// Kind names a command.
type Kind uint8

// Command kinds. The numbers are the wire encoding: never renumber.
const (
	// KindUpsertMachine lists a machine or changes its listing (price,
	// GPUs, VRAM, region, RTTs, reliability, verification).
	KindUpsertMachine Kind = 1
	// KindRemoveMachine withdraws a machine's offer; its leases run on.
	KindRemoveMachine Kind = 2
	// KindHeartbeat applies an agent report: free GPUs, RTTs, health.
	KindHeartbeat Kind = 3
	// KindTick advances time: reservation expiries, offline machines,
	// order expiries, then matching on the capacity that freed.
	KindTick Kind = 4
	// KindSuspendProvider stops a provider's offers from matching.
	KindSuspendProvider Kind = 5
	// KindReinstateProvider lifts a suspension.
	KindReinstateProvider Kind = 6
	// KindPlaceOrder places a rent-now, fill-or-kill or good-til-cancelled order.
	KindPlaceOrder Kind = 7
	// KindCancelOrder cancels a resting order or drops a reservation.
	KindCancelOrder Kind = 8
	// KindConfirmLease turns a reservation into a lease (the lease is on-chain).
	KindConfirmLease Kind = 9
	// KindReleaseLease ends a lease or reservation; its GPUs return to the book.
	KindReleaseLease Kind = 10
)

var kindNames = [...]string{"", "upsert", "remove", "heartbeat", "tick", "suspend", "reinstate", "place", "cancel", "confirm", "release"}

// String is the kind's name as used in scenario files.
func (k Kind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return "unknown"
}

// OrderType is how an order treats the book.
type OrderType uint8

// Order types; the numbers are the wire encoding.
const (
	// RentNow takes GPUs from one named offer or fails.
	RentNow OrderType = 1
	// FillOrKill matches the best offer now or fails; it never rests.
	FillOrKill OrderType = 2
	// GoodTilCancelled matches now or rests until matched, cancelled or
	// ExpiresAt.
	GoodTilCancelled OrderType = 3
)

var orderTypeNames = [...]string{"", "rent_now", "fok", "gtc"}

// String is the API name of the type.
func (t OrderType) String() string {
	if int(t) < len(orderTypeNames) && t != 0 {
		return orderTypeNames[t]
	}
	return "unknown"
}

// Command is one entry of the engine's input log. It is a flat struct rather
// than one type per kind so that the log is one table and the codec one
// function; each kind uses the fields its doc comment lists and the rest
// stay zero (the encoding carries only the used fields).
type Command struct {
	Kind Kind
	// Now is the time of the command, unix milliseconds; never earlier than
	// the previous command's.
	Now int64

	// Machine: the machine (= offer) id. Upsert, Remove, Heartbeat; for a
	// rent-now order, the offer to rent.
	Machine string
	// Provider: Upsert, Suspend, Reinstate.
	Provider string
	// Model: Upsert; PlaceOrder ("" means any model).
	Model string
	// GPUs: Upsert (GPUs on the machine); PlaceOrder (GPUs wanted on one machine).
	GPUs int64
	// VRAMGiB: Upsert (per GPU); PlaceOrder (minimum per GPU).
	VRAMGiB int64
	// Region: Upsert (where the machine is); PlaceOrder (the buyer's region).
	Region string
	// Price: Upsert (ask per GPU-hour); PlaceOrder (max per GPU-hour). Micro-units.
	Price int64
	// ReliabilityBps: Upsert.
	ReliabilityBps int64
	// Verified: Upsert; true once the machine's verification PoC cleared.
	Verified bool
	// RTTms: Upsert (required) and Heartbeat (empty: unchanged): the
	// measured RTT to each catalog region, in catalog order.
	RTTms []uint16
	// Free: Heartbeat; bit i set means GPU i is idle on the machine.
	Free uint64
	// Healthy: Heartbeat.
	Healthy bool

	// Order: PlaceOrder, CancelOrder, ConfirmLease, ReleaseLease. The
	// order's reservation and lease carry the same id.
	Order string
	// Buyer: PlaceOrder, CancelOrder.
	Buyer string
	// Type: PlaceOrder.
	Type OrderType
	// MaxRTTms: PlaceOrder; the most RTT from the buyer's region.
	MaxRTTms int64
	// Hours: PlaceOrder; the lease duration.
	Hours int64
	// ExpiresAt: PlaceOrder, good-til-cancelled only (unix ms).
	ExpiresAt int64
	// LatencyFirst: PlaceOrder; rank by RTT before price.
	LatencyFirst bool

	// SpotFloor: Upsert; the least per GPU-hour the provider takes for
	// interruptible use of idle GPUs (0: the machine is on-demand only).
	// At most Price: interruptible never costs more than on demand.
	SpotFloor int64
	// NoticeMs: Upsert; the preemption notice an interruptible lease on
	// this machine gets (MinNoticeMs to MaxNoticeMs; 0 when SpotFloor is 0).
	NoticeMs int64
	// Interruptible: PlaceOrder; a bid for interruptible GPUs, Price being
	// the most per GPU-hour (spot.go has the rules).
	Interruptible bool
}

func validID(s string) bool { return s != "" && len(s) <= MaxIDLen }

// Validate checks everything about the command that does not depend on the
// engine's state (ranges, required fields). Apply calls it first; the
// broker may call it early to reject a request before it enters the log.
func (c *Command) Validate() error {
	if c.Now < 0 || c.Now > MaxTime {
		return ErrBadTime
	}
	switch c.Kind {
	case KindUpsertMachine:
		switch {
		case !validID(c.Machine) || !validID(c.Provider):
			return ErrBadID
		case c.Model == "":
			return ErrUnknownModel
		case c.Region == "":
			return ErrUnknownRegion
		case c.GPUs <= 0 || c.GPUs > MaxGPUs:
			return ErrBadCount
		case c.VRAMGiB <= 0 || c.VRAMGiB > MaxVRAMGiB:
			return ErrBadVRAM
		case c.Price <= 0:
			return ErrBadPrice
		case c.ReliabilityBps < 0 || c.ReliabilityBps > MaxReliabilityBps:
			return ErrBadReliability
		case c.SpotFloor < 0 || c.SpotFloor > c.Price:
			return ErrBadFloor
		case c.SpotFloor == 0 && c.NoticeMs != 0, c.SpotFloor > 0 && (c.NoticeMs < MinNoticeMs || c.NoticeMs > MaxNoticeMs):
			return ErrBadNotice
		}
		return validRTTs(c.RTTms, false)
	case KindRemoveMachine:
		if !validID(c.Machine) {
			return ErrBadID
		}
	case KindHeartbeat:
		if !validID(c.Machine) {
			return ErrBadID
		}
		return validRTTs(c.RTTms, true)
	case KindTick:
	case KindSuspendProvider, KindReinstateProvider:
		if !validID(c.Provider) {
			return ErrBadID
		}
	case KindPlaceOrder:
		switch {
		case !validID(c.Order) || !validID(c.Buyer):
			return ErrBadID
		case c.Type < RentNow || c.Type > GoodTilCancelled:
			return ErrBadOrderType
		case (c.Type == RentNow) != (c.Machine != ""):
			return ErrBadOrderType
		case c.Type == RentNow && !validID(c.Machine):
			return ErrBadID
		case c.Type != GoodTilCancelled && c.ExpiresAt != 0:
			return ErrBadOrderType
		case c.Type == GoodTilCancelled && (c.ExpiresAt <= c.Now || c.ExpiresAt > MaxTime):
			return ErrBadExpiry
		case c.Region == "":
			return ErrUnknownRegion
		case c.GPUs <= 0 || c.GPUs > MaxGPUs:
			return ErrBadCount
		case c.VRAMGiB < 0 || c.VRAMGiB > MaxVRAMGiB:
			return ErrBadVRAM
		case c.Price <= 0:
			return ErrBadPrice
		case c.MaxRTTms <= 0 || c.MaxRTTms > MaxRTTms:
			return ErrBadRTT
		case c.Hours <= 0 || c.Hours > MaxHours:
			return ErrBadHours
		}
		if _, ok := orderTotal(c.Price, c.GPUs, c.Hours); !ok {
			return ErrOverflow
		}
	case KindCancelOrder:
		if !validID(c.Order) || !validID(c.Buyer) {
			return ErrBadID
		}
	case KindConfirmLease, KindReleaseLease:
		if !validID(c.Order) {
			return ErrBadID
		}
	default:
		return ErrBadKind
	}
	return nil
}

func validRTTs(rtts []uint16, mayBeEmpty bool) error {
	if (len(rtts) == 0 && !mayBeEmpty) || len(rtts) > MaxRegions {
		return ErrBadRTT
	}
	for _, r := range rtts {
		if r > MaxRTTms {
			return ErrBadRTT
		}
	}
	return nil
}

// orderTotal is price × gpus × hours, or false when it does not fit in an
// int64. All three are positive here; checking against MaxInt64 by division
// keeps it exact without floats.
func orderTotal(price, gpus, hours int64) (int64, bool) {
	const maxInt64 = 1<<63 - 1
	if price > maxInt64/gpus {
		return 0, false
	}
	pg := price * gpus
	if pg > maxInt64/hours {
		return 0, false
	}
	return pg * hours, true
}
