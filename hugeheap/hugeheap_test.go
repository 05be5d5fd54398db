//go:build linux

package hugeheap

import (
	"testing"
)

// anonHugeKiB is the process's AnonHugePages in KiB.
func anonHugeKiB(t *testing.T) int {
	n := Huge()
	if n < 0 {
		t.Skip("the kernel does not report AnonHugePages here")
	}
	return n >> 10
}

var sink [][]byte

// TestPrepareGivesTheHeapHugePages: after Prepare, a heap built from many
// small objects, as the engine's is, lies mostly on 2 MiB pages.
func TestPrepareGivesTheHeapHugePages(t *testing.T) {
	r := Prepare(512 << 20)
	if r.Advised == 0 {
		t.Skipf("THP mode %s: %s; nothing to measure here", r.Mode, r.Why)
	}
	before := anonHugeKiB(t)
	const total = 128 << 20
	for range total / 4096 {
		b := make([]byte, 4096)
		b[0], b[4095] = 1, 1
		sink = append(sink, b)
	}
	got := anonHugeKiB(t) - before
	t.Logf("THP mode %s, %d MiB advised: %d of the %d KiB allocated since lie on huge pages", r.Mode, r.Advised>>20, got, total>>10)
	if got < total>>10/2 {
		t.Fatalf("only %d KiB of %d KiB on huge pages", got, total>>10)
	}
	sink = nil
}

func TestPrepareRefusesWhatItCannotUse(t *testing.T) {
	if r := Prepare(0); r.Advised != 0 || r.Why != "disabled" {
		t.Fatalf("Prepare(0) = %+v", r)
	}
}
