package broker

import (
	"context"
	"slices"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/models"
)

// Providers' asks per model: stored, cached, and fed to the engine.

// SetPrice stores a provider's ask for a model and relists its machines.
// Its interruptible terms stay; a floor above the new ask is listed at
// the ask.
func (b *Broker) SetPrice(ctx context.Context, providerID, model string, price highway.Amount) error {
	if err := checkPrice(b.cfg.Models, model, price); err != nil {
		return err
	}
	if err := b.store.SetPrice(ctx, models.Price{ProviderID: providerID, Model: model, PricePerGPUHour: int64(price)}); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.setPriceLocked(providerID, model, int64(price))
	b.relistProviderLocked(ctx, providerID)
	return nil
}

func checkPrice(catalog []string, model string, price highway.Amount) error {
	if !slices.Contains(catalog, model) {
		return &highway.Error{Code: highway.EINVALID, Field: "model", Message: "Unknown GPU model " + model + "."}
	}
	if price <= 0 || price > 1_000_000_000_000 {
		return &highway.Error{Code: highway.EINVALID, Field: "price_per_gpu_hour", Message: "Price must be a positive number of micro-units, at most 10^12."}
	}
	return nil
}

// relistProviderLocked relists a provider's machines after its terms changed.
func (b *Broker) relistProviderLocked(ctx context.Context, providerID string) {
	for _, id := range b.sortedMachineIDsLocked() {
		if m := b.machines[id]; m.providerID == providerID {
			b.relistLocked(ctx, m)
		}
	}
}

// Prices returns a provider's asks by model.
func (b *Broker) Prices(providerID string) map[string]int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]int64{}
	for k, v := range b.prices[providerID] {
		out[k] = v
	}
	return out
}

func (b *Broker) setPriceLocked(providerID, model string, price int64) {
	if b.prices[providerID] == nil {
		b.prices[providerID] = map[string]int64{}
	}
	b.prices[providerID][model] = price
}
