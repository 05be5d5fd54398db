package broker

import (
	"testing"
	"time"

	"github.com/highway-compute/highway/models"
)

// The clearing price is each hour's GPU-weighted median (the lower one
// on an even split), hours without matches are empty, and matches outside
// the window are left out.
func TestClearingHours(t *testing.T) {
	first := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	at := func(h, m int) time.Time { return first.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	ms := []models.Match{
		{At: at(0, 5), GPUs: 1, PricePerHour: 900},
		{At: at(0, 10), GPUs: 8, PricePerHour: 2000}, // most of hour 0's GPUs
		{At: at(0, 50), GPUs: 1, PricePerHour: 100},
		{At: at(2, 0), GPUs: 2, PricePerHour: 300}, // hour 2: 2 GPUs each side, the lower
		{At: at(2, 59), GPUs: 2, PricePerHour: 500},
		{At: at(-1, 0), GPUs: 4, PricePerHour: 1}, // before the window
		{At: at(3, 0), GPUs: 4, PricePerHour: 1},  // after it (3 hours)
		{At: at(1, 0), GPUs: 0, PricePerHour: 7},  // no GPUs: ignored
	}
	got := clearing(ms, first, 3)
	want := []ClearingHour{{first, 2000, 10}, {first.Add(time.Hour), 0, 0}, {first.Add(2 * time.Hour), 300, 4}}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("hour %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

// Bids come highest first and asks lowest first, at most DepthLevels of
// each, with the rest counted.
func TestDepthLevels(t *testing.T) {
	byPrice := map[int64]*DepthLevel{}
	for p := int64(1); p <= DepthLevels+3; p++ {
		byPrice[p*10] = &DepthLevel{Price: p * 10, GPUs: p, Count: 1}
	}
	asks, hidden := levels(byPrice, false)
	if len(asks) != DepthLevels || hidden != 3 || asks[0].Price != 10 || asks[1].Price != 20 {
		t.Fatalf("asks %v… hidden %d", asks[:2], hidden)
	}
	bids, hidden := levels(byPrice, true)
	if len(bids) != DepthLevels || hidden != 3 || bids[0].Price != (DepthLevels+3)*10 {
		t.Fatalf("bids %v… hidden %d", bids[:2], hidden)
	}
}
