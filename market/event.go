package market

import (
	"strconv"
	"strings"
)

// EventKind names an event.
type EventKind uint8

// Event kinds.
const (
	// EvMatched: an order reserved GPUs on a machine at the machine's ask.
	EvMatched EventKind = iota + 1
	// EvOrderRested: a good-til-cancelled order found no offer and rests.
	EvOrderRested
	// EvOrderExpired: a resting order reached its expiry.
	EvOrderExpired
	// EvOrderCancelled: the buyer cancelled a resting order or a reservation.
	EvOrderCancelled
	// EvReservationExpired: a match was not confirmed in time; its GPUs are back.
	EvReservationExpired
	// EvLeaseConfirmed: a reservation became a lease.
	EvLeaseConfirmed
	// EvLeaseReleased: a lease (or reservation) ended; its GPUs are back.
	EvLeaseReleased
	// EvMachineOffline: a machine missed MissedBeats heartbeats; its offer is withdrawn.
	EvMachineOffline
	// EvMachineOnline: an offline machine beat again.
	EvMachineOnline
	// EvPreempted: an interruptible lease lost its GPUs to the order By;
	// its workload has until At to checkpoint and stop (spot.go).
	EvPreempted
)

var eventNames = [...]string{"", "matched", "rested", "expired", "cancelled", "reservation_expired", "lease_confirmed", "lease_released", "offline", "online", "preempted"}

// String is the kind's name.
func (k EventKind) String() string {
	if int(k) < len(eventNames) && k != 0 {
		return eventNames[k]
	}
	return "unknown"
}

// Event is one consequence of a command. Fields not used by a kind are zero.
type Event struct {
	Kind EventKind
	// Order is the order (= reservation = lease) id.
	Order string
	// Machine is the machine (= offer) id.
	Machine string
	// Provider owns Machine (Matched).
	Provider string
	// GPUs is the mask of GPU indices on Machine that the event reserves or frees.
	GPUs uint64
	// Count is the number of GPUs in the mask.
	Count int64
	// Price is the ask per GPU-hour the buyer pays (Matched).
	Price int64
	// Total is Price × Count × Hours (Matched).
	Total int64
	// RTTms is the offer's RTT to the buyer's region (Matched).
	RTTms int64
	// Expiry is when the reservation lapses unless confirmed (Matched).
	Expiry int64
	// At: Matched, when the GPUs are the order's (0: now; later when they
	// were taken from interruptible leases, which get notice until then);
	// Preempted, when the preempted workload must have stopped.
	At int64
	// By is the order that preempted the lease (Preempted).
	By string
	// Interruptible: Matched, the order is an interruptible bid.
	Interruptible bool
}

// String renders the event in the one-line form of the golden files; it is
// stable, so tests compare engines by it.
func (e Event) String() string {
	var b strings.Builder
	b.WriteString(e.Kind.String())
	kv := func(k, v string) {
		if v != "" {
			b.WriteByte(' ')
			b.WriteString(k)
			b.WriteByte('=')
			b.WriteString(v)
		}
	}
	num := func(k string, v int64) {
		if v != 0 {
			kv(k, strconv.FormatInt(v, 10))
		}
	}
	kv("order", e.Order)
	kv("machine", e.Machine)
	kv("provider", e.Provider)
	if e.GPUs != 0 {
		kv("gpus", "0x"+strconv.FormatUint(e.GPUs, 16))
	}
	num("count", e.Count)
	num("price", e.Price)
	num("total", e.Total)
	num("rtt", e.RTTms)
	num("expiry", e.Expiry)
	num("at", e.At)
	kv("by", e.By)
	if e.Interruptible {
		kv("spot", "1")
	}
	return b.String()
}
