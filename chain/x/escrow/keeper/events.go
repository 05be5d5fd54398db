package keeper

import (
	"encoding/json"
	"strconv"

	"cosmossdk.io/math"
	abci "github.com/cometbft/cometbft/abci/types"
	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/cosmos/gogoproto/proto"

	"github.com/highway-compute/highway/chain/x/escrow/types"
)

// The events the end of a block emits by the hundred (an epoch missed,
// cleared or paid, a lease closed) are built here rather than by
// EmitTypedEvent, which marshals the message to JSON through reflection
// and parses it back into a map to sort its keys: that round trip was
// half of EndBlock's time in a 10 000-lease burst. The result is the same
// event, byte for byte: the type's full proto name, one attribute per
// field in sorted key order, each value as jsonpb writes it (64-bit
// integers and math.Int quoted, 32-bit bare, strings as encoding/json
// escapes them). TestFastEventsMatchTypedEvents compares every field of
// each against sdk.TypedEventToEvent, so a field added to one of these
// messages fails that test until it is added here. Indexers parse them
// with sdk.ParseTypedEvent as before.

var (
	typeProofAccepted = proto.MessageName(&types.EventProofAccepted{})
	typeEpochMissed   = proto.MessageName(&types.EventEpochMissed{})
	typePayout        = proto.MessageName(&types.EventPayout{})
	typeLeaseClosed   = proto.MessageName(&types.EventLeaseClosed{})
)

// attrs builds an event's attributes; keys must be added in sorted order.
type attrs []abci.EventAttribute

func (a attrs) u64(key string, v uint64) attrs {
	return append(a, abci.EventAttribute{Key: key, Value: `"` + strconv.FormatUint(v, 10) + `"`})
}

func (a attrs) i64(key string, v int64) attrs {
	return append(a, abci.EventAttribute{Key: key, Value: `"` + strconv.FormatInt(v, 10) + `"`})
}

func (a attrs) u32(key string, v uint32) attrs {
	return append(a, abci.EventAttribute{Key: key, Value: strconv.FormatUint(uint64(v), 10)})
}

func (a attrs) str(key, v string) attrs {
	b, _ := json.Marshal(v) // a string always marshals
	return append(a, abci.EventAttribute{Key: key, Value: string(b)})
}

func (a attrs) amount(key string, v math.Int) attrs {
	b, _ := v.MarshalJSON() // never fails: a nil Int is "0"
	return append(a, abci.EventAttribute{Key: key, Value: string(b)})
}

func proofAcceptedEvent(e *types.EventProofAccepted) sdk.Event {
	a := make(attrs, 0, 6).amount("amount", e.Amount).u64("epoch", e.Epoch).u64("lease_id", e.LeaseId).
		i64("payout_height", e.PayoutHeight).u64("required", e.Required).u64("valid_nonces", e.ValidNonces)
	return sdk.Event{Type: typeProofAccepted, Attributes: a}
}

func epochMissedEvent(e *types.EventEpochMissed) sdk.Event {
	a := make(attrs, 0, 7).u64("epoch", e.Epoch).u64("lease_id", e.LeaseId).u32("missed_in_row", e.MissedInRow).
		str("reason", e.Reason).amount("refunded", e.Refunded).u64("required", e.Required).u64("valid_nonces", e.ValidNonces)
	return sdk.Event{Type: typeEpochMissed, Attributes: a}
}

func payoutEvent(e *types.EventPayout) sdk.Event {
	a := make(attrs, 0, 5).amount("amount", e.Amount).u64("epoch", e.Epoch).amount("fee", e.Fee).
		u64("lease_id", e.LeaseId).str("provider", e.Provider)
	return sdk.Event{Type: typePayout, Attributes: a}
}

func leaseClosedEvent(e *types.EventLeaseClosed) sdk.Event {
	a := make(attrs, 0, 4).str("by", e.By).u64("lease_id", e.LeaseId).str("reason", e.Reason).amount("refunded", e.Refunded)
	return sdk.Event{Type: typeLeaseClosed, Attributes: a}
}
