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
	"strconv"
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
	state, _, err := Stat(pid)
	if err != nil {
		// Gone between the two calls, or no /proc: trust kill's answer
		// unless /proc exists and lacks the pid.
		_, perr := os.Stat("/proc/self/stat")
		return perr != nil
	}
	return !Exited(state)
}

// Exited reports whether a state letter is a process that has exited:
// a zombie, or dead.
func Exited(state byte) bool { return state == 'Z' || state == 'X' || state == 'x' }

// Stat reads a process's state letter (R running, S sleeping, T stopped,
// Z zombie, ...) and its parent's pid from /proc/<pid>/stat (Linux).
func Stat(pid int) (state byte, ppid int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	return parseStat(b)
}

// parseStat reads "pid (comm) S ppid ...". The command name may hold
// spaces and parentheses, so the fields start after the last ')'.
func parseStat(b []byte) (state byte, ppid int, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("procstate: malformed stat %q", b)
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 2 || len(f[0]) != 1 {
		return 0, 0, fmt.Errorf("procstate: malformed stat %q", b)
	}
	ppid, err = strconv.Atoi(string(f[1]))
	if err != nil {
		return 0, 0, fmt.Errorf("procstate: malformed stat %q", b)
	}
	return f[0][0], ppid, nil
}
