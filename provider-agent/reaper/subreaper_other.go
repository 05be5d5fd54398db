//go:build unix && !linux

package reaper

import "errors"

// setSubreaper: only Linux has child subreapers; as PID 1 Run still reaps.
func setSubreaper() error { return errors.New("child subreapers are Linux only") }
