package market

import (
	"errors"
	"testing"
)

// fuzzPrefix is a short random history, so fuzzed commands hit an engine
// with machines, resting orders, reservations and leases in it.
var fuzzPrefix = func() []Command {
	g := newGen(3)
	e, _ := NewEngine(g.cfg)
	out := make([]Command, 0, 300)
	for i := 0; i < 300; i++ {
		c := g.next()
		evs, _ := e.Apply(&c)
		g.observe(evs)
		out = append(out, c)
	}
	return out
}()

// FuzzDecodeCommand decodes arbitrary bytes as a logged command. Decoding
// never panics; whatever decodes re-encodes to the same bytes (the log is
// canonical); and applying it either fails with the state digest unchanged
// or succeeds with every invariant intact.
func FuzzDecodeCommand(f *testing.F) {
	g := newGen(11)
	for i := 0; i < 64; i++ {
		c := g.next()
		f.Add(MarshalCommand(nil, &c))
	}
	f.Add([]byte{})
	f.Add([]byte{1, 4, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := UnmarshalCommand(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadFlag) {
				t.Fatalf("decode error %v is not a named one", err)
			}
			return
		}
		if again := MarshalCommand(nil, &c); string(again) != string(b) {
			t.Fatalf("not canonical: %x re-encodes as %x", b, again)
		}
		_ = c.Validate()
		e, err := Rebuild(testConfig(), fuzzPrefix)
		if err != nil {
			t.Fatal(err)
		}
		before := e.StateDigest()
		if _, err := e.Apply(&c); err != nil {
			if e.StateDigest() != before {
				t.Fatalf("%+v failed with %v and changed the state", c, err)
			}
			return
		}
		if err := checkInvariants(e); err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
	})
}
