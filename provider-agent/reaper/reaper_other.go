//go:build !unix

package reaper

import "os"

// Needed is false where there are no zombies to reap.
func Needed() bool { return false }

// Run is never called where Needed is false.
func Run([]string, *os.File) int { return 1 }
