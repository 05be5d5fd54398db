package market

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	highway "github.com/highway-compute/highway"
)

func eventsString(evs []Event) string {
	var b strings.Builder
	for _, e := range evs {
		b.WriteString(e.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// applyBoth applies ec to the engine and rc (the same command) to the
// reference matcher, and returns the engine's events, diff saying how the
// two differ ("" when they agree) and the engine's error.
func applyBoth(e *Engine, n *naive, ec, rc *Command) (got []Event, diff string, gerr error) {
	got, gerr = e.Apply(ec)
	want, werr := n.Apply(rc)
	if !errors.Is(gerr, werr) || !errors.Is(werr, gerr) {
		return got, fmt.Sprintf("engine error %v, naive %v", gerr, werr), gerr
	}
	if gs, ws := eventsString(got), eventsString(want); gs != ws {
		return got, fmt.Sprintf("\nengine:\n%snaive:\n%s", gs, ws), gerr
	}
	return got, "", gerr
}

// TestDifferential runs diffCommands random commands through the engine
// and the naive reference matcher and requires identical events and
// errors for every one. Each command goes through the wire codec first, as
// the persisted log does.
//
// Four streams of diffCommands/4 run in the small world (contention, ties,
// churn); a fifth, diffCommands/10 long, runs in the wide world where
// books hold hundreds of offers and chunks split and merge.
func TestDifferential(t *testing.T) {
	const streams = 5
	for s := 0; s < streams; s++ {
		t.Run(fmt.Sprint("seed", s), func(t *testing.T) {
			t.Parallel()
			g, per := newGen(uint64(100+s)), diffCommands/4
			if s == 4 {
				g, per = newWideGen(uint64(100+s)), diffCommands/10
			}
			e, err := NewEngine(g.cfg)
			if err != nil {
				t.Fatal(err)
			}
			n := newNaive(g.cfg)
			var buf []byte
			matched := 0
			kinds := map[string]int{}
			for i := 0; i < per; i++ {
				c := g.next()
				buf = MarshalCommand(buf[:0], &c)
				dc, err := UnmarshalCommand(buf)
				if err != nil {
					t.Fatalf("cmd %d: decode: %v", i, err)
				}
				got, diff, gerr := applyBoth(e, n, &dc, &c)
				if diff != "" {
					t.Fatalf("cmd %d %+v: %s", i, c, diff)
				}
				g.observe(got)
				if gerr != nil {
					kinds["err:"+strings.ReplaceAll(highway.ErrorMessage(gerr), " ", "_")]++
				}
				for j, ev := range got {
					kinds[ev.Kind.String()]++
					if ev.Kind == EvMatched && (c.Kind != KindPlaceOrder || j > 0) {
						kinds["matched-from-rest"]++
					}
					if ev.Kind == EvMatched {
						matched++
					}
				}
			}
			t.Logf("%d commands, %d matches, final %+v, by kind %v", per, matched, e.Stats(), kinds)
			if matched < per/100 {
				t.Fatalf("only %d matches: the generator does not exercise matching", matched)
			}
		})
	}
}
