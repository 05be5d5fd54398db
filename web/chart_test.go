package web

import (
	"strings"
	"testing"
)

// Every point lands inside the plot area, the baseline is zero, and the
// reference line sits where its value is.
func TestChartGeometry(t *testing.T) {
	c := Chart{Series: []ChartSeries{{Name: "a", Points: []ChartPoint{{X: 100, Y: 0}, {X: 160, Y: 500}, {X: 220, Y: 1000}}}},
		Ref: &ChartRef{Value: 2000, Label: "ref"}}
	lines := c.lines()
	if len(lines) != 1 || !strings.HasPrefix(lines[0].D, "M72 ") {
		t.Fatalf("lines = %+v", lines)
	}
	// y range is 0..2200 (reference 2000 + 10 % headroom); y=0 is the
	// bottom of the plot, the last point is at x = right edge.
	if want := "M72 204 L348 "; !strings.HasPrefix(lines[0].D, want) {
		t.Fatalf("path %q, want prefix %q", lines[0].D, want)
	}
	if !strings.Contains(lines[0].D, "L624 ") {
		t.Fatalf("last point not at the right edge: %q", lines[0].D)
	}
	if y := c.refY(); y != 16+188-2000*188/2200 {
		t.Fatalf("reference at y=%d", y)
	}
	ticks := c.yTicks()
	if len(ticks) != 5 || ticks[0].Label != "0" || ticks[4].Pos != padT {
		t.Fatalf("ticks = %+v", ticks)
	}
	if (Chart{}).Empty() != true || c.Empty() {
		t.Fatal("Empty is wrong")
	}
	if FormatClock(3600*13+60*5) != "13:05" {
		t.Fatalf("clock = %s", FormatClock(3600*13+60*5))
	}
}
