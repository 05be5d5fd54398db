//go:build linux

package hugeheap

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

const hugePage = 2 << 20

// Prepare marks size bytes of fresh heap address space for huge pages
// (see the package comment). It changes nothing when the kernel's mode is
// "always" (the heap gets them anyway) or "never", or when strict
// overcommit could refuse the reservation.
func Prepare(size int) Report {
	mode := Mode()
	r := Report{Mode: mode}
	switch {
	case size < 2*hugePage:
		r.Why = "disabled"
		return r
	case mode != "madvise":
		r.Why = "nothing to do in THP mode " + mode
		return r
	case readMode("/proc/sys/vm/overcommit_memory") == "2":
		// Under strict overcommit the reservation is charged in full and
		// could make a tight machine fail an allocation it needs.
		r.Why = "strict overcommit (vm.overcommit_memory=2)"
		return r
	}
	// A large allocation comes straight from fresh address space and is
	// never written here, so it costs no memory, only its mapping.
	buf := make([]byte, size)
	base := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	start, end := (base+hugePage-1)&^(hugePage-1), (base+uintptr(size))&^(hugePage-1)
	if end > start {
		if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, start, end-start, syscall.MADV_HUGEPAGE); e != 0 {
			r.Why = fmt.Sprintf("madvise: %v", e)
		} else {
			r.Advised = int(end - start)
		}
	}
	runtime.KeepAlive(buf)
	// Free the reservation now, so the next allocations take it rather
	// than fresh, unmarked space while it waits for a collection.
	runtime.GC()
	return r
}

// Mode is the kernel's THP mode: "always", "madvise", "never", or
// "unsupported" where there is no such setting.
func Mode() string { return readMode("/sys/kernel/mm/transparent_hugepage/enabled") }

// readMode reads a sysfs or procfs setting: the bracketed choice of a
// list ("always [madvise] never"), or the whole value.
func readMode(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unsupported"
	}
	s := string(b)
	if i, j := strings.IndexByte(s, '['), strings.IndexByte(s, ']'); i >= 0 && j > i {
		return s[i+1 : j]
	}
	return strings.TrimSpace(s)
}

// Huge reports how many bytes of the process's anonymous memory lie on
// huge pages now (AnonHugePages), or -1 where the kernel does not say.
func Huge() int {
	b, err := os.ReadFile("/proc/self/smaps_rollup")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "AnonHugePages:" {
			if n, err := strconv.Atoi(f[1]); err == nil {
				return n << 10
			}
		}
	}
	return -1
}
