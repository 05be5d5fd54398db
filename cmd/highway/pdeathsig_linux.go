package main

import "syscall"

// dieWithParent makes the kernel send the child SIGTERM when this process
// dies, however it dies.
func dieWithParent(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGTERM }
