package highway

import "math/big"

// Total is a sum of money in uhwy that may outgrow an Amount: a lease's
// whole escrow (price per epoch × epochs), a wallet's balance, the
// network's volume. Prices and single payments are Amounts; what adds them
// up is a Total, so the marketplace has two money types and not four
// (int64, decimal strings, the SDK's math.Int and *big.Int each had their
// corner before). The chain's math.Int is converted in chain/client alone.
//
// A Total is immutable: every operation returns a new one, so a copy is
// safe to share. The zero value is 0.
type Total struct{ v *big.Int }

// TotalOf is an Amount as a Total.
func TotalOf(a Amount) Total { return Total{big.NewInt(int64(a))} }

// TotalFromBig copies a big integer (the chain client's conversion).
func TotalFromBig(b *big.Int) Total {
	if b == nil {
		return Total{}
	}
	return Total{new(big.Int).Set(b)}
}

// ParseTotal reads a decimal string of uhwy of any size, as the chain and
// the database store sums: digits only, with an optional leading minus
// (read as written; the marketplace's own sums are never negative).
func ParseTotal(s string) (Total, bool) {
	if s == "" || s == "-" {
		return Total{}, false
	}
	digits := s
	if digits[0] == '-' {
		digits = digits[1:]
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return Total{}, false
		}
	}
	v, ok := new(big.Int).SetString(s, 10)
	return Total{v}, ok
}

func (t Total) big() *big.Int {
	if t.v == nil {
		return new(big.Int)
	}
	return t.v
}

// Add is t + u.
func (t Total) Add(u Total) Total { return Total{new(big.Int).Add(t.big(), u.big())} }

// Mul is t × n.
func (t Total) Mul(n int64) Total { return Total{new(big.Int).Mul(t.big(), big.NewInt(n))} }

// Quo is t ÷ n rounded towards zero (n > 0; what the chain's QuoRaw does).
func (t Total) Quo(n int64) Total { return Total{new(big.Int).Quo(t.big(), big.NewInt(n))} }

// Cmp compares t and u: -1, 0 or +1.
func (t Total) Cmp(u Total) int { return t.big().Cmp(u.big()) }

// Sign is -1, 0 or +1.
func (t Total) Sign() int { return t.big().Sign() }

// Amount is t as an Amount, when it fits one.
func (t Total) Amount() (Amount, bool) {
	b := t.big()
	if !b.IsInt64() {
		return 0, false
	}
	return Amount(b.Int64()), true
}

// String is the total in uhwy, as the wire carries it.
func (t Total) String() string { return t.big().String() }

// MarshalText writes the total as its decimal string of uhwy, as every
// amount in the API is written (without it, a Total in a JSON answer
// would silently be {}).
func (t Total) MarshalText() ([]byte, error) { return []byte(t.String()), nil }
