package market

import "encoding/binary"

// idTable maps caller-chosen ids to slots. It replaces map[string]uint32
// on the hot path because a Go map of a million string keys costs several
// cache misses a lookup (control word, key header, key bytes); this table
// costs one probe into a flat, pointer-free array of (tag, slot) entries,
// and the id is confirmed against the record the slot names, which the
// caller needs next anyway: a machine's idKey or an order's key, both on
// the record's first cache line. Linear probing, load ≤ 1/2, deletion by
// backward shift (no tombstones). It is never iterated, so its layout
// cannot leak into a result.
type idTable struct {
	e    []idEntry
	n    int
	mask uint64
}

type idEntry struct {
	t uint32 // tagOf the id's hash; 0 marks an empty entry
	v uint32 // the slot
}

// tagOf is what an entry keeps of an id's hash: its high 32 bits (the
// best mixed; the low bit of every hash is set), which give its home in
// any table of up to 2^31 entries, with the top bit set so that no tag is
// 0. Ids whose tags agree are told apart by the record's own copy of the
// id, so a 32-bit tag costs at most a rare wasted record read, and it
// halves the table: 8 bytes an entry, 8 entries a cache line, 16 MB for a
// million machines where 16-byte entries took 32. (Homes taken from the
// low bits, as before, were all odd.)
func tagOf(h uint64) uint32 { return uint32(h>>32) | 1<<31 }

// idKey is an exact, compact spelling of a machine id that a lookup can
// confirm against without reading the id's own bytes (a string in its own
// allocation: at a million machines, a cache miss on every heartbeat).
// The marketplace's ids are UUIDs (models.NewID), 36 characters that hold
// 16 bytes; the canonical lowercase spelling is stored as those bytes, an
// id of at most 16 bytes as itself, and any other id not at all (n = 0:
// confirmed against the id string).
type idKey struct {
	lo, hi uint64
	// n: 1..16, that many bytes of the id itself; keyUUID, a canonical
	// UUID's 16 bytes; 0, no key.
	n uint8
}

const keyUUID = 0x80

// keyOf returns id's key and the hash the tables file it under: a mix of
// the key when it has one (two words instead of 36 bytes), hashID of the
// string otherwise. Both are pure functions of the string.
func keyOf(id string) (idKey, uint64) {
	var k idKey
	switch {
	case len(id) == 36 && id[8] == '-' && id[13] == '-' && id[18] == '-' && id[23] == '-':
		// The 32 digits as four words of eight: 0-7, 9-12 and 14-17,
		// 19-22 and 24-27, 28-35.
		w0 := le64s(id[0:8])
		w1 := le32s(id[9:13]) | le32s(id[14:18])<<32
		w2 := le32s(id[19:23]) | le32s(id[24:28])<<32
		w3 := le64s(id[28:36])
		a, okA := hex8(w0)
		b, okB := hex8(w1)
		c, okC := hex8(w2)
		d, okD := hex8(w3)
		if okA && okB && okC && okD {
			k = idKey{lo: a<<32 | b, hi: c<<32 | d, n: keyUUID}
		}
	case len(id) <= 16 && len(id) > 0:
		var b [16]byte
		copy(b[:], id)
		k = idKey{lo: binary.LittleEndian.Uint64(b[:8]), hi: binary.LittleEndian.Uint64(b[8:]), n: uint8(len(id))}
	}
	if k.n == 0 {
		return k, hashID(id)
	}
	h := (k.lo ^ uint64(k.n)<<56) * 0xbf58476d1ce4e5b9
	h = (h ^ h>>31 ^ k.hi) * 0x94d049bb133111eb
	h ^= h >> 29
	return k, h | 1
}

// hex8 decodes eight lowercase hex digits, the first in w's low byte, all
// eight at once (SWAR): parsing a UUID digit by digit cost more than the
// rest of a heartbeat's lookup. Any other byte, an uppercase digit
// included, reports false: a key spells one string only.
func hex8(w uint64) (uint64, bool) {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	// With every byte below 0x80, adding 0x80-lo sets a byte's high bit
	// exactly when the byte is ≥ lo, and no carry crosses bytes.
	digit := (w + ones*(0x80-'0')) &^ (w + ones*(0x80-'9'-1))
	alpha := (w + ones*(0x80-'a')) &^ (w + ones*(0x80-'f'-1))
	if w&highs != 0 || (digit|alpha)&highs != highs {
		return 0, false
	}
	// A byte's value: its low nibble, plus 9 for a letter (bit 6 set).
	v := w&(ones*0x0F) + (w>>6&ones)*9
	// Pack the nibbles, first digit most significant.
	v = (v<<4 | v>>8) & 0x00FF00FF00FF00FF
	return v&0xFF<<24 | v>>16&0xFF<<16 | v>>32&0xFF<<8 | v>>48&0xFF, true
}

func le64s(s string) uint64 {
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func le32s(s string) uint64 {
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24
}

// hashID is a fixed (unseeded) 64-bit hash, so a table is the same on
// every run; it is never 0. The marketplace chooses ids (UUIDv7), so a
// seed against hash flooding is not needed.
func hashID(s string) uint64 {
	h := uint64(len(s)) * 0x9E3779B97F4A7C15
	for len(s) >= 8 {
		h = (h ^ le64s(s)) * 0xbf58476d1ce4e5b9
		h ^= h >> 31
		s = s[8:]
	}
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 0x100000001b3
	}
	h ^= h >> 29
	h *= 0x94d049bb133111eb
	h ^= h >> 32
	return h | 1
}

func (t *idTable) grow() {
	old := t.e
	size := 2 * len(old)
	if size == 0 {
		size = 1024
	}
	t.e = make([]idEntry, size)
	t.mask = uint64(size - 1)
	for _, x := range old {
		if x.t != 0 {
			i := uint64(x.t) & t.mask
			for t.e[i].t != 0 {
				i = (i + 1) & t.mask
			}
			t.e[i] = x
		}
	}
}

// insert adds (h, v); the id must not be present.
func (t *idTable) insert(h uint64, v uint32) {
	if 2*(t.n+1) > len(t.e) {
		t.grow()
	}
	tg := tagOf(h)
	i := uint64(tg) & t.mask
	for t.e[i].t != 0 {
		i = (i + 1) & t.mask
	}
	t.e[i] = idEntry{t: tg, v: v}
	t.n++
}

// delete removes (h, v), which must be present, and shifts later entries
// of the probe run back so lookups never stop early.
func (t *idTable) delete(h uint64, v uint32) {
	tg := tagOf(h)
	i := uint64(tg) & t.mask
	for t.e[i].t != tg || t.e[i].v != v {
		i = (i + 1) & t.mask
	}
	j := i
	for {
		j = (j + 1) & t.mask
		if t.e[j].t == 0 {
			break
		}
		k := uint64(t.e[j].t) & t.mask // the entry's home
		// Move it into the hole unless its home lies cyclically in (i, j].
		if i <= j && (k <= i || k > j) || i > j && k <= i && k > j {
			t.e[i] = t.e[j]
			i = j
		}
	}
	t.e[i] = idEntry{}
	t.n--
}

// idMemo is the key and hash of an id that ApplyBatch's warm-up derived
// for the command being applied (keyOf for a machine id, hashID for an
// order id), so that the command's own lookup does not decode the id's
// digits again. Only a string equal to the one memoised gets its values
// back: both functions are pure, so equal strings have equal keys.
type idMemo struct {
	id      string
	k       idKey
	h       uint64
	ok      bool
	machine bool
}

// machineKey is keyOf(id), from the memo when it holds id.
func (e *Engine) machineKey(id string) (idKey, uint64) {
	if p := &e.memo; p.ok && p.machine && p.id == id {
		return p.k, p.h
	}
	return keyOf(id)
}

// orderHash is hashID(id), from the memo when it holds id.
func (e *Engine) orderHash(id string) uint64 {
	if p := &e.memo; p.ok && !p.machine && p.id == id {
		return p.h
	}
	return hashID(id)
}

// machineSlot looks a machine up by id: a heartbeat, half of all
// commands, is this lookup and little else.
func (e *Engine) machineSlot(id string) (uint32, bool) {
	t := &e.machineIDs
	if t.n == 0 {
		return 0, false
	}
	k, h := e.machineKey(id)
	tg := tagOf(h)
	for i := uint64(tg) & t.mask; t.e[i].t != 0; i = (i + 1) & t.mask {
		if x := t.e[i]; x.t == tg && e.mach(x.v).named(k, id) {
			return x.v, true
		}
	}
	return 0, false
}

// orderSlot looks a live order up by id.
func (e *Engine) orderSlot(id string) (uint32, bool) {
	t := &e.orderIDs
	if t.n == 0 {
		return 0, false
	}
	tg := tagOf(e.orderHash(id))
	for i := uint64(tg) & t.mask; t.e[i].t != 0; i = (i + 1) & t.mask {
		if x := t.e[i]; x.t == tg && e.ord(x.v).is(id) {
			return x.v, true
		}
	}
	return 0, false
}
