package keeper

import (
	"math/big"
	"math/rand/v2"
	"reflect"
	"testing"

	"cosmossdk.io/math"
	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/cosmos/gogoproto/proto"

	"github.com/highway-compute/highway/chain/x/escrow/types"
)

// TestFastEventsMatchTypedEvents: each event the end of a block builds by
// hand is the event sdk.TypedEventToEvent makes of the same message, for
// every field filled with edge values (zero, the extremes, strings that
// JSON escapes, invalid UTF-8). A field added to one of these messages is
// filled here by reflection, so the comparison fails until events.go
// writes it too; a field of a kind this test cannot fill fails it as well.
func TestFastEventsMatchTypedEvents(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 16))
	cases := []struct {
		msg  func() proto.Message
		fast func(proto.Message) sdk.Event
	}{
		{func() proto.Message { return &types.EventProofAccepted{} }, func(m proto.Message) sdk.Event { return proofAcceptedEvent(m.(*types.EventProofAccepted)) }},
		{func() proto.Message { return &types.EventEpochMissed{} }, func(m proto.Message) sdk.Event { return epochMissedEvent(m.(*types.EventEpochMissed)) }},
		{func() proto.Message { return &types.EventPayout{} }, func(m proto.Message) sdk.Event { return payoutEvent(m.(*types.EventPayout)) }},
		{func() proto.Message { return &types.EventLeaseClosed{} }, func(m proto.Message) sdk.Event { return leaseClosedEvent(m.(*types.EventLeaseClosed)) }},
	}
	for _, c := range cases {
		for i := 0; i < 300; i++ {
			m := c.msg()
			if i > 0 { // the first is the zero message
				fillEvent(t, rng, reflect.ValueOf(m).Elem())
			}
			want, err := sdk.TypedEventToEvent(m)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.fast(m); !reflect.DeepEqual(got, want) {
				t.Fatalf("%T %+v:\nfast  %v\ntyped %v", m, m, got, want)
			}
		}
	}
}

var eventStrings = []string{"", "no proof by the deadline", `quote " and \ backslash`, "<html> & more", "line\nbreak\ttab",
	"\u2028\u2029", "ünïcødé ✓", "\xff\xfe invalid utf-8", "\x00\x01 control", "cosmos1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"}

// fillEvent sets every exported field of the struct v to an edge value or
// a random one.
func fillEvent(t *testing.T, rng *rand.Rand, v reflect.Value) {
	t.Helper()
	for i := 0; i < v.NumField(); i++ {
		f, sf := v.Field(i), v.Type().Field(i)
		if !sf.IsExported() {
			continue
		}
		switch {
		case f.Type() == reflect.TypeOf(math.Int{}):
			switch rng.IntN(4) {
			case 0: // left nil, as a zero Int
			case 1:
				f.Set(reflect.ValueOf(math.ZeroInt()))
			case 2:
				f.Set(reflect.ValueOf(math.NewIntFromBigInt(new(big.Int).Lsh(big.NewInt(rng.Int64()), 100))))
			default:
				f.Set(reflect.ValueOf(math.NewInt(rng.Int64())))
			}
		case f.Kind() == reflect.Uint64 || f.Kind() == reflect.Uint32:
			top := ^uint64(0) >> (64 - f.Type().Bits())
			edges := []uint64{0, 1, top, rng.Uint64() & top}
			f.SetUint(edges[rng.IntN(len(edges))])
		case f.Kind() == reflect.Int64:
			edges := []int64{0, 1, -1, 1<<63 - 1, -1 << 63, rng.Int64()}
			f.SetInt(edges[rng.IntN(len(edges))])
		case f.Kind() == reflect.String:
			f.SetString(eventStrings[rng.IntN(len(eventStrings))])
		default:
			t.Fatalf("%s.%s is a %s: teach this test and events.go to write it", v.Type(), sf.Name, f.Type())
		}
	}
}
