//go:build !unix

package runner

import (
	"errors"
	"os/exec"
)

// setProcessGroup is a no-op where process groups do not exist; the agent
// targets Linux, this only keeps the package compiling elsewhere.
func setProcessGroup(*exec.Cmd) {}

// killGroup cannot signal a group here; workloads are not supported.
func killGroup(int, bool) {}

type signal int

const (
	sigStop signal = iota
	sigCont
)

// signalGroup cannot signal a group here.
func signalGroup(int, signal) error {
	return errors.New("process groups are not supported on this system")
}
