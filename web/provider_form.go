package web

import "github.com/highway-compute/highway"

// PriceForm is the provider console's ask for one model, typed in HWY per
// GPU-hour. The model is the broker's to check (it knows the catalog);
// its error names "model".
type PriceForm struct {
	Form
	Model string
	Price highway.Amount
	// SpotFloor is the interruptible floor (0: interruptible off) and
	// NoticeS the preemption notice in seconds (0: the default 30 s); the
	// broker checks their ranges.
	SpotFloor highway.Amount
	NoticeS   int64
}

// Bind keeps the model as chosen and the amounts without surrounding spaces.
func (f *PriceForm) Bind(get func(field string) string) {
	f.bind(get, "model")
	f.bind(trimmed(get), "price_per_gpu_hour", "spot_floor_per_gpu_hour", "notice_s")
}

// Validate reads the price (HWY, above 0) and the interruptible terms
// (empty: off).
func (f *PriceForm) Validate() error {
	f.Model = f.Value("model")
	f.Price = f.hwy("price_per_gpu_hour", "a price", "2.49", false)
	f.SpotFloor = 0
	if f.Value("spot_floor_per_gpu_hour") != "" {
		f.SpotFloor = f.hwy("spot_floor_per_gpu_hour", "a floor", "1.20", true)
	}
	f.NoticeS = f.wholeNumber("notice_s")
	return f.invalid()
}
