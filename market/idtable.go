package market

// idTable maps caller-chosen ids to slots. It replaces map[string]uint32
// on the hot path because a Go map of a million string keys costs several
// cache misses a lookup (control word, key header, key bytes); this table
// costs one probe into a flat, pointer-free array of (hash, slot) pairs,
// and the caller confirms the id on the machine or order it needs next
// anyway. Linear probing, load ≤ 1/2, deletion by backward shift (no
// tombstones). It is never iterated, so its layout cannot leak into a
// result.
type idTable struct {
	e    []idEntry
	n    int
	mask uint64
}

type idEntry struct {
	h uint64 // hashID of the id; 0 marks an empty entry
	v uint32 // the slot
}

// hashID is a fixed (unseeded) 64-bit hash, so a table is the same on
// every run; it is never 0. The marketplace chooses ids (UUIDv7), so a
// seed against hash flooding is not needed.
func hashID(s string) uint64 {
	h := uint64(len(s)) * 0x9E3779B97F4A7C15
	for len(s) >= 8 {
		x := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
		h = (h ^ x) * 0xbf58476d1ce4e5b9
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
		if x.h != 0 {
			i := x.h & t.mask
			for t.e[i].h != 0 {
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
	i := h & t.mask
	for t.e[i].h != 0 {
		i = (i + 1) & t.mask
	}
	t.e[i] = idEntry{h: h, v: v}
	t.n++
}

// delete removes (h, v), which must be present, and shifts later entries
// of the probe run back so lookups never stop early.
func (t *idTable) delete(h uint64, v uint32) {
	i := h & t.mask
	for t.e[i].h != h || t.e[i].v != v {
		i = (i + 1) & t.mask
	}
	j := i
	for {
		j = (j + 1) & t.mask
		if t.e[j].h == 0 {
			break
		}
		k := t.e[j].h & t.mask // the entry's home
		// Move it into the hole unless its home lies cyclically in (i, j].
		if i <= j && (k <= i || k > j) || i > j && k <= i && k > j {
			t.e[i] = t.e[j]
			i = j
		}
	}
	t.e[i] = idEntry{}
	t.n--
}

// machineSlot looks a machine up by id.
func (e *Engine) machineSlot(id string) (uint32, bool) {
	t := &e.machineIDs
	if t.n == 0 {
		return 0, false
	}
	h := hashID(id)
	for i := h & t.mask; t.e[i].h != 0; i = (i + 1) & t.mask {
		if t.e[i].h == h && e.mach(t.e[i].v).id == id {
			return t.e[i].v, true
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
	h := hashID(id)
	for i := h & t.mask; t.e[i].h != 0; i = (i + 1) & t.mask {
		if t.e[i].h == h && e.orders[t.e[i].v].id == id {
			return t.e[i].v, true
		}
	}
	return 0, false
}
