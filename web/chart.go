package web

import (
	"strconv"
	"strings"
)

// Charts are drawn on the server as SVG: no chart library, no JavaScript,
// and every figure is computed in integers (prices are micro-units).

// ChartPoint is one sample: X in unix seconds, Y in the series' unit.
type ChartPoint struct{ X, Y int64 }

// ChartSeries is one line.
type ChartSeries struct {
	Name   string
	Points []ChartPoint
}

// ChartRef is a horizontal reference line (e.g. a hyperscaler's list price).
type ChartRef struct {
	Value int64
	Label string
}

// Chart is a line chart's data and labels.
type Chart struct {
	ID, Title, Desc string
	YLabel, XLabel  string
	Series          []ChartSeries
	Ref             *ChartRef
	// FormatY renders a Y value for the axis (default: the integer).
	FormatY func(int64) string
	// XFrom and XTo fix the X extent (when XTo > XFrom) instead of the
	// data's: a window with gaps keeps its width.
	XFrom, XTo int64
	// Step, when set, draws each point as a bar Step wide from its X (an
	// hour's figure) instead of a line: sparse samples stay visible and a
	// gap reads as a gap, not as a slope.
	Step int64
}

// chartBar is one bar, in SVG user units.
type chartBar struct {
	X, Y, W, H int64
	Class      string
	Title      string
}

// Chart geometry, in SVG user units.
const (
	chartW, chartH         = 640, 240
	padL, padR, padT, padB = 72, 16, 16, 36
	plotW, plotH           = chartW - padL - padR, chartH - padT - padB
)

type chartLine struct {
	Name, D string
	Class   string
}

type chartTick struct {
	Pos   int64
	Label string
}

// bounds are the data's extent, with the reference line included and a
// zero baseline so lines are not exaggerated.
func (c Chart) bounds() (x0, x1, y0, y1 int64, ok bool) {
	first := true
	for _, s := range c.Series {
		for _, p := range s.Points {
			if first {
				x0, x1, y1 = p.X, p.X, p.Y
				first = false
			}
			x0, x1, y1 = min(x0, p.X), max(x1, p.X), max(y1, p.Y)
		}
	}
	if first {
		return 0, 0, 0, 0, false
	}
	if c.XTo > c.XFrom {
		x0, x1 = c.XFrom, c.XTo
	}
	if c.Ref != nil {
		y1 = max(y1, c.Ref.Value)
	}
	if y1 <= 0 {
		y1 = 1
	}
	y1 += y1 / 10 // headroom
	if x1 == x0 {
		x1 = x0 + 1
	}
	return x0, x1, 0, y1, true
}

func scale(v, lo, hi, span int64) int64 { return (v - lo) * span / (hi - lo) }

// lines are the series' SVG paths.
func (c Chart) lines() []chartLine {
	x0, x1, y0, y1, ok := c.bounds()
	if !ok || c.Step > 0 {
		return nil
	}
	var out []chartLine
	for i, s := range c.Series {
		var b strings.Builder
		for j, p := range s.Points {
			if j == 0 {
				b.WriteString("M")
			} else {
				b.WriteString(" L")
			}
			b.WriteString(strconv.FormatInt(padL+scale(p.X, x0, x1, plotW), 10))
			b.WriteByte(' ')
			b.WriteString(strconv.FormatInt(padT+plotH-scale(p.Y, y0, y1, plotH), 10))
		}
		out = append(out, chartLine{Name: s.Name, D: b.String(), Class: "series s" + strconv.Itoa(i%6)})
	}
	return out
}

// bars are the series' bars when the chart has a Step.
func (c Chart) bars() []chartBar {
	x0, x1, y0, y1, ok := c.bounds()
	if !ok || c.Step <= 0 {
		return nil
	}
	f := c.FormatY
	if f == nil {
		f = func(v int64) string { return strconv.FormatInt(v, 10) }
	}
	var out []chartBar
	for i, s := range c.Series {
		for _, p := range s.Points {
			left, right := scale(p.X, x0, x1, plotW), scale(min(p.X+c.Step, x1), x0, x1, plotW)
			h := scale(p.Y, y0, y1, plotH)
			out = append(out, chartBar{X: padL + left, Y: padT + plotH - h, W: max(right-left-1, 1), H: h,
				Class: "bar s" + strconv.Itoa(i%6), Title: FormatClock(p.X) + ": " + f(p.Y)})
		}
	}
	return out
}

// refY is the reference line's y coordinate.
func (c Chart) refY() int64 {
	_, _, y0, y1, ok := c.bounds()
	if !ok || c.Ref == nil {
		return 0
	}
	return padT + plotH - scale(c.Ref.Value, y0, y1, plotH)
}

// yTicks are four labelled levels from 0 to the top.
func (c Chart) yTicks() []chartTick {
	_, _, y0, y1, ok := c.bounds()
	if !ok {
		return nil
	}
	f := c.FormatY
	if f == nil {
		f = func(v int64) string { return strconv.FormatInt(v, 10) }
	}
	var out []chartTick
	for i := int64(0); i <= 4; i++ {
		v := y0 + (y1-y0)*i/4
		out = append(out, chartTick{Pos: padT + plotH - scale(v, y0, y1, plotH), Label: f(v)})
	}
	return out
}

// xTicks label the first and last sample times (UTC, HH:MM).
func (c Chart) xTicks() []chartTick {
	x0, x1, _, _, ok := c.bounds()
	if !ok {
		return nil
	}
	if c.XTo > c.XFrom {
		// A fixed window (a day) is labelled at its quarters: its two ends
		// may read the same on a clock.
		var out []chartTick
		for i := int64(0); i <= 4; i++ {
			out = append(out, chartTick{Pos: padL + plotW*i/4, Label: FormatClock(x0 + (x1-x0)*i/4)})
		}
		return out
	}
	return []chartTick{{Pos: padL, Label: FormatClock(x0)}, {Pos: padL + plotW, Label: FormatClock(x1)}}
}

// Empty reports whether the chart has no data yet.
func (c Chart) Empty() bool {
	_, _, _, _, ok := c.bounds()
	return !ok
}

// FormatClock renders unix seconds as UTC HH:MM.
func FormatClock(unix int64) string {
	s := ((unix % 86400) + 86400) % 86400
	h, m := s/3600, s%3600/60
	return pad2(h) + ":" + pad2(m)
}

func pad2(n int64) string {
	if n < 10 {
		return "0" + strconv.FormatInt(n, 10)
	}
	return strconv.FormatInt(n, 10)
}
