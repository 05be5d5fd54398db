package handlers

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/web"
)

// ReferencePrice is a public list price per GPU-hour that the price
// charts draw as a reference line, so buyers see what they save. It names
// its source and date: a reference nobody can check is not one.
type ReferencePrice struct {
	Model           string
	PricePerGPUHour int64 // micro-units of the chain denom
	Source          string
}

// network is GET /network: the public dashboard — capacity in
// H100-equivalents over time, GPUs by model, leases, volume, the share of
// epochs cleared, and price history per model.
func (s *Server) network(c *gin.Context) {
	ctx := c.Request.Context()
	sum := s.broker.Summary()
	totals, err := s.broker.NetworkStats(ctx)
	if err != nil {
		s.fail(c, err)
		return
	}
	v := web.NetworkView{H100eMilli: sum.H100EquivalentsMilli, MachinesOnline: sum.MachinesOnline, LeasesActive: totals.LeasesActive,
		EpochsCleared: totals.EpochsCleared, EpochsMissed: totals.EpochsMissed, Escrowed: totals.Escrowed.String(), Paid: totals.Paid.String(),
		CountedAt: web.FormatTime(totals.At)}
	if n := totals.EpochsCleared + totals.EpochsMissed; n > 0 {
		v.ClearedBps = totals.EpochsCleared * 10_000 / n
	}
	for _, m := range sum.Models {
		v.Models = append(v.Models, web.NetworkModel{Model: m.Model, GPUsOnline: m.GPUsOnline, GPUsFree: m.GPUsFree, MedianPrice: m.MedianPrice})
	}
	for _, r := range sum.Regions {
		v.Regions = append(v.Regions, web.NetworkRegion{Region: r.Region, Machines: r.Machines, GPUsOnline: r.GPUsOnline, GPUsFree: r.GPUsFree})
	}
	since := s.now().Add(-24 * time.Hour)
	rows, err := s.store.Snapshots(ctx, models.SnapshotTotal, since)
	if err != nil {
		s.fail(c, err)
		return
	}
	capacity := web.ChartSeries{Name: "H100-equivalents online"}
	for _, r := range rows {
		capacity.Points = append(capacity.Points, web.ChartPoint{X: r.At.Unix(), Y: r.H100eMilli})
	}
	v.Capacity = web.Chart{ID: "capacity", Title: "Capacity online, last 24 hours", XLabel: "time (UTC)", YLabel: "H100-equivalents",
		Desc:    "Compute online in H100-equivalent units, recorded every minute.",
		Series:  []web.ChartSeries{capacity},
		FormatY: func(milli int64) string { return web.FormatMilli(uint64(milli)) }}
	catalog, _ := s.broker.Catalog()
	for _, model := range catalog {
		rows, err := s.store.Snapshots(ctx, model, since)
		if err != nil {
			s.fail(c, err)
			return
		}
		if len(rows) == 0 {
			continue
		}
		series := web.ChartSeries{Name: "median ask"}
		for _, r := range rows {
			if r.MedianPrice > 0 {
				series.Points = append(series.Points, web.ChartPoint{X: r.At.Unix(), Y: r.MedianPrice})
			}
		}
		ch := web.Chart{ID: "price-" + model, Title: model + ": median ask per GPU-hour", XLabel: "time (UTC)", YLabel: "HWY / GPU-hour",
			Desc:    "The median ask of listed " + model + " offers over the last 24 hours.",
			Series:  []web.ChartSeries{series},
			FormatY: web.FormatHWYInt}
		for _, ref := range s.references {
			if ref.Model == model {
				ch.Ref = &web.ChartRef{Value: ref.PricePerGPUHour, Label: "list price " + web.FormatHWYInt(ref.PricePerGPUHour)}
				v.ReferenceSource = ref.Source
			}
		}
		v.Prices = append(v.Prices, ch)
	}
	s.render(c, http.StatusOK, "Network", web.Network(s.page(c, "Network"), v))
}
