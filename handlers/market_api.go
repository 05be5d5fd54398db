package handlers

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/broker"
)

// The market's public data: offers, the summary, regions.

// offerFilter reads the offer filters from the query string (the browse
// page and the API share it, so a page URL is a shareable API query).
func (s *Server) offerFilter(c *gin.Context) (highway.OfferFilter, error) {
	f := highway.OfferFilter{Model: c.Query("model"), Region: c.Query("region"), Sort: c.Query("sort")}
	var err error
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"min_vram_gib", &f.MinVRAMGiB}, {"count", &f.Count}, {"max_price", &f.MaxPrice}, {"max_rtt_ms", &f.MaxRTTms}, {"min_reliability_bps", &f.MinReliability}} {
		if *p.dst, err = queryInt(c, p.name); err != nil {
			return f, err
		}
	}
	switch f.Sort {
	case "", "price", "rtt", "reliability", "price_per_h100":
	default:
		return f, &highway.Error{Code: highway.EINVALID, Field: "sort", Message: "sort is price, rtt, reliability or price_per_h100."}
	}
	models, regions := s.broker.Catalog()
	if f.Model != "" && !contains(models, f.Model) {
		return f, &highway.Error{Code: highway.EINVALID, Field: "model", Message: "Unknown GPU model."}
	}
	if f.Region != "" && !contains(regions, f.Region) {
		return f, &highway.Error{Code: highway.EINVALID, Field: "region", Message: "Unknown region."}
	}
	limit, err := listLimit(c)
	if err != nil {
		return f, err
	}
	f.Limit = limit
	if cur := c.Query("cursor"); cur != "" {
		off, err := strconv.Atoi(cur)
		if err != nil || off < 0 || off > broker.MaxOfferOffset {
			return f, &highway.Error{Code: highway.EINVALID, Field: "cursor", Message: "Invalid cursor."}
		}
		f.Offset = off
	}
	return f, nil
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func (s *Server) apiOffers(c *gin.Context) {
	f, err := s.offerFilter(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	p := offerPages.Get().(*offerPage)
	next := s.broker.OffersInto(&p.page, f)
	p.json = appendOffersJSON(p.json[:0], p.page.Offers, next)
	c.Data(http.StatusOK, "application/json; charset=utf-8", p.json)
	if cap(p.json) <= 1<<20 { // an odd huge page is not kept
		offerPages.Put(p)
	}
}

func (s *Server) apiSummary(c *gin.Context) {
	sum := s.broker.Summary()
	type line struct {
		broker.ModelSummary
		Median string `json:"median_price_per_gpu_hour"`
	}
	out := make([]line, len(sum.Models))
	for i, m := range sum.Models {
		out[i] = line{ModelSummary: m, Median: strconv.FormatInt(m.MedianPrice, 10)}
	}
	c.JSON(http.StatusOK, gin.H{"models": out, "regions": sum.Regions, "h100_equivalents_online": float64(sum.H100EquivalentsMilli) / 1000,
		"machines_online": sum.MachinesOnline, "leases_active": sum.Leases})
}

func (s *Server) apiRegions(c *gin.Context) {
	_, regions := s.broker.Catalog()
	out := make([]gin.H, len(regions))
	for i, r := range regions {
		out[i] = gin.H{"id": r, "name": r}
	}
	c.JSON(http.StatusOK, gin.H{"regions": out})
}
