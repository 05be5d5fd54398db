package chainlink

import (
	"testing"
	"time"

	escrowtypes "github.com/highway-compute/highway/chain/x/escrow/types"
)

// The agent proves for the work window and never past it: in full when it
// sees the seed before the window's opening block exists, what is left of
// it when it sees the seed late, and not at all once the window is over.
func TestWorkTime(t *testing.T) {
	now := time.UnixMilli(1_800_000_000_000)
	for _, tc := range []struct {
		name string
		open time.Time // zero: the window's opening block does not exist yet
		want time.Duration
	}{
		{"seed just committed", time.Time{}, 60 * time.Second},
		{"window opened 300 ms ago", now.Add(-300 * time.Millisecond), 60*time.Second - 300*time.Millisecond},
		{"caught up 59 s late", now.Add(-59 * time.Second), time.Second},
		{"window over", now.Add(-61 * time.Second), 0},
		{"window opens in the future (clock behind)", now.Add(time.Second), 60 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			task := &escrowtypes.QueryProofTaskResponse{WorkSeconds: 60, GraceMs: 2000}
			if !tc.open.IsZero() {
				task.WindowOpenMs = tc.open.UnixMilli()
			}
			if got := workTime(task, now); got != tc.want {
				t.Fatalf("work time %s, want %s", got, tc.want)
			}
		})
	}
}
