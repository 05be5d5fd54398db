//go:build !linux

package hugeheap

// Prepare does nothing off Linux: there is no THP setting to work around.
func Prepare(int) Report { return Report{Mode: "unsupported", Why: "not Linux"} }

// Huge is -1 off Linux: unknown.
func Huge() int { return -1 }

// Mode is "unsupported" off Linux.
func Mode() string { return "unsupported" }
