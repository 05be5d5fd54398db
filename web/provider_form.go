package web

import "github.com/highway-compute/highway"

// PriceForm is the provider console's ask for one model, typed in HWY per
// GPU-hour. The model is the broker's to check (it knows the catalog);
// its error names "model".
type PriceForm struct {
	Form
	Model string
	Price highway.Amount
}

// Bind keeps the model as chosen and the price without surrounding spaces.
func (f *PriceForm) Bind(get func(field string) string) {
	f.bind(get, "model")
	f.bind(trimmed(get), "price_per_gpu_hour")
}

// Validate reads the price: HWY, above 0.
func (f *PriceForm) Validate() error {
	f.Model = f.Value("model")
	f.Price = f.hwy("price_per_gpu_hour", "a price", "2.49", false)
	return f.invalid()
}
