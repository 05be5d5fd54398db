package highway

import "encoding/json"

// The market's listings as buyers see them: an offer is a machine's free
// GPUs at its provider's ask, with the round trips its agent measured.
// The broker builds them from its live state; pages and the API show them.

// Offer is a live listing as pages and the API show it.
type Offer struct {
	ID              string `json:"id"`
	ProviderID      string `json:"provider_id"`
	MachineID       string `json:"machine_id"`
	Model           string `json:"model"`
	VRAMGiB         int64  `json:"vram_gib"`
	GPUsFree        int64  `json:"gpus_free"`
	GPUsTotal       int64  `json:"gpus_total"`
	PricePerGPUHour Amount `json:"-"`
	Region          string `json:"region"`
	RTTms           RTTs   `json:"rtt_ms"`
	ReliabilityBps  int64  `json:"reliability_bps"`
	CUDAVersion     string `json:"cuda_version"`
	DriverVersion   string `json:"driver_version"`
	Verified        bool   `json:"verified"`
	Simulated       bool   `json:"simulated"`
	// Interruptible terms (0: none): the floor a bid must reach, written
	// as spot_floor_per_gpu_hour beside the price, and the preemption
	// notice an interruptible lease gets.
	SpotFloor Amount `json:"-"`
	NoticeS   int64  `json:"notice_s,omitempty"`
	// MeasuredMilliH100 is the machine's measured Proof-of-Compute rate per
	// GPU in thousandths of an H100 (its verification proof; 0: not
	// measured), and PricePerH100Hour the price of one measured
	// H100-hour at it (price × 1000 / measured; 0: not measured), written
	// as price_per_h100_hour.
	MeasuredMilliH100 int64  `json:"measured_milli_h100,omitempty"`
	PricePerH100Hour  Amount `json:"-"`
}

// OfferFilter selects and orders offers; zero fields do not filter.
type OfferFilter struct {
	Model          string
	MinVRAMGiB     int64
	Count          int64
	MaxPrice       int64
	Region         string // RTTs are measured to it; MaxRTTms applies to it
	MaxRTTms       int64
	MinReliability int64
	Sort           string // price (default), rtt, reliability, price_per_h100
	Offset, Limit  int
}

// RegionRTT is the round trip from a machine to one region.
type RegionRTT struct {
	Region string
	Ms     int64
}

// RTTs are an offer's measured round trips, by region name. A slice, not
// a map: a browse page builds fifty of them.
type RTTs []RegionRTT

// Get returns the RTT to region, if measured.
func (r RTTs) Get(region string) (int64, bool) {
	for _, v := range r {
		if v.Region == region {
			return v.Ms, true
		}
	}
	return 0, false
}

// MarshalJSON writes the RTTs as the API has them: an object from region
// to milliseconds.
func (r RTTs) MarshalJSON() ([]byte, error) {
	if r == nil {
		return []byte("null"), nil
	}
	m := make(map[string]int64, len(r))
	for _, v := range r {
		m[v.Region] = v.Ms
	}
	return json.Marshal(m)
}
