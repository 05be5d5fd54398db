// Package procstate tells whether a process still runs. kill(pid, 0)
// alone cannot: it succeeds on a zombie, a process that has exited but
// whose parent has not yet reaped it. A workload's children killed with
// their group, or a chain child whose parent crashed, become orphans, and
// their new parent (init, or whatever runs as PID 1 in a container: on
// the CI machines a supervisor that reaps when it gets to it) may leave
// them as zombies for seconds. A zombie holds no memory, GPU, file lock
// or port, so for every question asked here it has stopped.
package procstate

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"syscall"
)

// Running reports whether process pid exists and has not exited (is not a
// zombie). Off Linux, without /proc, a zombie still counts as running.
func Running(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false // ESRCH: no such process (EPERM: one exists, not ours)
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		// Gone between the two calls, or no /proc: trust kill's answer
		// unless /proc exists and lacks the pid.
		_, perr := os.Stat("/proc/self/stat")
		return perr != nil
	}
	return !exited(stat)
}

// exited reads the state letter of a /proc/<pid>/stat line: "pid (comm)
// S ...". The command name may hold spaces and parentheses, so the state
// is the field after the last ')'.
func exited(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return false // unreadable: not evidence that it exited
	}
	switch stat[i+2] {
	case 'Z', 'X', 'x': // zombie, dead
		return true
	}
	return false
}
