package market

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"testing"
	"unsafe"
)

// TestIDTable drives the open-addressing table with colliding hashes
// (wrapping around the end of the array too) against a Go map.
func TestIDTable(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var tb idTable
	ref := map[uint32]uint64{} // slot → hash
	for i := 0; i < 200_000; i++ {
		// Inserts outweigh deletions up to 1 500 live entries, so the
		// table grows twice on the way (checked below).
		if r.IntN(5) < 3 && len(ref) < 1500 {
			v := uint32(r.IntN(1 << 20))
			if _, ok := ref[v]; ok {
				continue
			}
			// Few distinct homes near the end of the array (the tag is
			// the hash's high half), so probe runs collide and wrap.
			h := (uint64(1020+r.IntN(8))&1023 | uint64(r.IntN(1<<20))<<10) << 32
			tb.insert(h, v)
			ref[v] = h
		} else {
			for v, h := range ref {
				tb.delete(h, v)
				delete(ref, v)
				break
			}
		}
		if i%97 == 0 {
			if tb.n != len(ref) {
				t.Fatalf("n %d, want %d", tb.n, len(ref))
			}
			for v, h := range ref {
				found := false
				tg := tagOf(h)
				for j := uint64(tg) & tb.mask; tb.e[j].t != 0; j = (j + 1) & tb.mask {
					if tb.e[j].t == tg && tb.e[j].v == v {
						found = true
						break
					}
				}
				if !found {
					t.Fatalf("step %d: slot %d lost", i, v)
				}
			}
		}
	}
	if len(tb.e) < 4096 {
		t.Fatalf("the table never grew past %d entries", len(tb.e))
	}
}

// TestIDKey: a machine is found by its own id only, whatever form the id
// takes (a canonical UUID, stored as its 16 bytes; an id of up to 16
// bytes, stored as itself; a longer one, confirmed against the string),
// and ids that spell the same bytes differently (case, length, zero bytes,
// a UUID's dashes) are told apart.
func TestIDKey(t *testing.T) {
	uuid := "018f3c2e-7b1a-7c3d-9e4f-0123456789ab"
	ids := []string{"a", "a\x00", "\x00", "machine-17", "0123456789abcdef", "0123456789abcdef0",
		uuid, strings.ToUpper(uuid), uuid[:35] + "c", "118f3c2e-7b1a-7c3d-9e4f-0123456789ab",
		"018f3c2e-7b1a-7c3d-9e4f-0123456789ag", "018f3c2e+7b1a-7c3d-9e4f-0123456789ab",
		"018f3c2e7b1a7c3d9e4f0123456789ab", strings.Repeat("f", 36), "ffffffff-ffff-ffff-ffff-ffffffffffff",
		"00000000-0000-0000-0000-000000000000", strings.Repeat("z", MaxIDLen)}
	r := rand.New(rand.NewPCG(9, 10))
	for range 2000 {
		b := []byte(uuid)
		for _, i := range []int{0, 7, 9, 14, 19, 24, 35} {
			b[i] = "0123456789abcdef"[r.IntN(16)]
		}
		ids = append(ids, string(b))
	}
	e, err := NewEngine(Config{Models: []string{"m"}, Regions: []string{"r"}, HeartbeatIntervalMs: 1000, MissedBeats: 3, ReservationTTLms: 1000})
	if err != nil {
		t.Fatal(err)
	}
	slots := map[string]uint32{}
	for _, id := range ids {
		if _, dup := slots[id]; dup {
			continue
		}
		if _, ok := e.machineSlot(id); ok {
			t.Fatalf("%q found before it was added", id)
		}
		slots[id] = e.newMachine(id, "p")
	}
	if k, _ := keyOf(uuid); k.n != keyUUID {
		t.Fatalf("a canonical UUID has key kind %d", k.n)
	}
	if k, _ := keyOf(strings.ToUpper(uuid)); k.n != 0 {
		t.Fatalf("an uppercase UUID has key kind %d, want none", k.n)
	}
	// The word-at-a-time decoding against encoding/hex, every digit
	// position with every digit, and with the bytes that border the digit
	// ranges (and one past ASCII), which must not decode.
	for pos := 0; pos < 36; pos++ {
		if pos == 8 || pos == 13 || pos == 18 || pos == 23 {
			continue
		}
		for c := 0; c < 256; c++ {
			b := []byte(uuid)
			b[pos] = byte(c)
			k, _ := keyOf(string(b))
			raw, err := hex.DecodeString(strings.ReplaceAll(string(b), "-", ""))
			valid := err == nil && (c < 'A' || c > 'F')
			if !valid {
				if k.n == keyUUID {
					t.Fatalf("%q decoded as a UUID", b)
				}
				continue
			}
			if k.n != keyUUID || k.lo != binary.BigEndian.Uint64(raw[:8]) || k.hi != binary.BigEndian.Uint64(raw[8:]) {
				t.Fatalf("%q: key %x %x kind %d, want %x", b, k.lo, k.hi, k.n, raw)
			}
		}
	}
	for id, want := range slots {
		if got, ok := e.machineSlot(id); !ok || got != want {
			t.Fatalf("%q: slot %d, %v; want %d", id, got, ok, want)
		}
	}
	for _, id := range []string{"b", "machine-1", uuid[:35], uuid + "0", "018F3c2e-7b1a-7c3d-9e4f-0123456789ab"} {
		if _, ok := e.machineSlot(id); ok {
			t.Fatalf("%q found, never added", id)
		}
	}
}

// TestMachineLayout: a record is a whole number of cache lines and starts
// on one, and the fields a heartbeat reads share its first.
func TestMachineLayout(t *testing.T) {
	var m machine
	if unsafe.Sizeof(m) != machineSize || machineSize%64 != 0 {
		t.Fatalf("machine is %d bytes, want machineSize %d (a multiple of 64): adjust machinePad", unsafe.Sizeof(m), machineSize)
	}
	for name, end := range map[string]uintptr{
		"keys": unsafe.Offsetof(m.keyHi) + 8, "free": unsafe.Offsetof(m.free) + 8, "lastBeat": unsafe.Offsetof(m.lastBeat) + 8,
		"deadline": unsafe.Offsetof(m.deadline) + 8, "flags": unsafe.Offsetof(m.suspended) + 1, "provider": unsafe.Offsetof(m.provider) + 4,
	} {
		if end > 64 {
			t.Errorf("%s ends at byte %d, past the first cache line", name, end)
		}
	}
	e, err := NewEngine(Config{Models: []string{"m"}, Regions: []string{"r"}, HeartbeatIntervalMs: 1000, MissedBeats: 3, ReservationTTLms: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if p := uintptr(unsafe.Pointer(e.mach(e.newMachine("x", "p")))); p%64 != 0 {
		t.Fatalf("a page of machines starts at %#x, not on a cache line", p)
	}
}

// TestOrderIs checks an order's id comparison on both sides of the copy's
// length: ids that differ only past the copy, or only in length, are
// told apart.
func TestOrderIs(t *testing.T) {
	long := strings.Repeat("x", orderKeyLen)
	ids := []string{"", "a", "ab", "order-1", "018f3c2e-7b1a-7c3d-9e4f-0123456789ab",
		long[:orderKeyLen-1], long, long + "y", long + "z", long + "yy", strings.Repeat("y", MaxIDLen)}
	for _, a := range ids {
		var o order
		o.setID(a, hashID(a))
		for _, b := range ids {
			if got := o.is(b); got != (a == b) {
				t.Errorf("order %q is %q: %v", a, b, got)
			}
		}
	}
}
