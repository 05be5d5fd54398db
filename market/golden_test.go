package market

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	highway "github.com/highway-compute/highway"
)

var update = flag.Bool("update", false, "rewrite market/testdata/*.golden from the scenarios")

// Golden scenarios: testdata/<name>.txt holds commands, one a line, in the
// form `kind key=value ... flag`; testdata/<name>.golden holds each command
// followed by its events (indented) or its error (`! code: message`).
// Regenerate after an intentional rule change with
//
//	go test ./market -run TestGolden -update
//
// and review the diff: it is the rule's behaviour, written out.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txt")
		t.Run(name, func(t *testing.T) {
			got := runScenario(t, f)
			gf := strings.TrimSuffix(f, ".txt") + ".golden"
			if *update {
				if err := os.WriteFile(gf, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(gf)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from %s:\n%s", name, gf, got)
			}
		})
	}
}

func runScenario(t *testing.T, path string) string {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	cfg := Config{Models: []string{"H100", "A100", "L4"}, Regions: []string{"eu", "us", "ap"},
		HeartbeatIntervalMs: 1000, MissedBeats: 3, ReservationTTLms: 5000}
	var e *Engine
	n := newNaive(cfg)
	var out strings.Builder
	sc := bufio.NewScanner(fh)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			out.WriteString(text + "\n")
			continue
		}
		if e == nil {
			if e, err = NewEngine(cfg); err != nil {
				t.Fatal(err)
			}
		}
		c, err := parseCommand(text)
		if err != nil {
			t.Fatalf("%s:%d: %v", path, line, err)
		}
		out.WriteString("> " + text + "\n")
		evs, aerr := e.Apply(&c)
		nevs, nerr := n.Apply(&c) // scenarios double as differential cases
		if !errors.Is(aerr, nerr) || eventsString(evs) != eventsString(nevs) {
			t.Fatalf("%s:%d: engine and reference disagree: %v %v\n%s\n%s", path, line, aerr, nerr, eventsString(evs), eventsString(nevs))
		}
		if aerr != nil {
			fmt.Fprintf(&out, "  ! %s: %s\n", highway.ErrorCode(aerr), highway.ErrorMessage(aerr))
		}
		for _, ev := range evs {
			out.WriteString("  " + ev.String() + "\n")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

var kindByName = map[string]Kind{}

func init() {
	for k := KindUpsertMachine; k <= KindReleaseLease; k++ {
		kindByName[k.String()] = k
	}
}

// parseCommand reads the scenario form of a command.
func parseCommand(s string) (Command, error) {
	f := strings.Fields(s)
	k, ok := kindByName[f[0]]
	if !ok {
		return Command{}, fmt.Errorf("unknown kind %q", f[0])
	}
	c := Command{Kind: k}
	for _, kv := range f[1:] {
		key, val, _ := strings.Cut(kv, "=")
		num := func() int64 {
			v, err := strconv.ParseInt(val, 0, 64)
			if err != nil {
				panic(fmt.Sprintf("%s: %v", kv, err))
			}
			return v
		}
		switch key {
		case "now":
			c.Now = num()
		case "machine", "offer":
			c.Machine = val
		case "provider":
			c.Provider = val
		case "model":
			c.Model = val
		case "gpus":
			c.GPUs = num()
		case "vram":
			c.VRAMGiB = num()
		case "region":
			c.Region = val
		case "price":
			c.Price = num()
		case "rel":
			c.ReliabilityBps = num()
		case "verified":
			c.Verified = true
		case "rtt":
			for _, r := range strings.Split(val, ",") {
				v, err := strconv.ParseUint(r, 10, 16)
				if err != nil {
					return c, err
				}
				c.RTTms = append(c.RTTms, uint16(v))
			}
		case "free":
			v, err := strconv.ParseUint(val, 0, 64)
			if err != nil {
				return c, err
			}
			c.Free = v
		case "healthy":
			c.Healthy = true
		case "order":
			c.Order = val
		case "buyer":
			c.Buyer = val
		case "type":
			switch val {
			case "rent_now":
				c.Type = RentNow
			case "fok":
				c.Type = FillOrKill
			case "gtc":
				c.Type = GoodTilCancelled
			default:
				c.Type = 99
			}
		case "maxrtt":
			c.MaxRTTms = num()
		case "hours":
			c.Hours = num()
		case "expires":
			c.ExpiresAt = num()
		case "latency_first":
			c.LatencyFirst = true
		default:
			return c, fmt.Errorf("unknown field %q", key)
		}
	}
	return c, nil
}
