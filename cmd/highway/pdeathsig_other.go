//go:build !linux

package main

import "syscall"

// dieWithParent has no portable equivalent outside Linux; the dev chain's
// pid file stops an orphan at the next start instead.
func dieWithParent(*syscall.SysProcAttr) {}
