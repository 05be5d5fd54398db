//go:build !unix

package runner

import "os/exec"

// setProcessGroup is a no-op where process groups do not exist; the agent
// targets Linux, this only keeps the package compiling elsewhere.
func setProcessGroup(*exec.Cmd) {}

// killGroup cannot signal a group here; workloads are not supported.
func killGroup(int, bool) {}
