package handlers

import (
	"net/http"
	"net/url"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/broker"
	"github.com/highway-compute/highway/web"
)

// The market page (/market): live offers with filters and the summary.
// Pages share the API's parsing (offerFilter, orderBody → orderRequest) so
// a page and the API never disagree on what is valid; live parts re-fetch
// themselves (?fragment=1) when the /market/events stream (sse.go) says
// the market changed.

// marketParams are the filter fields of /market, named as the API's query
// parameters so a page URL doubles as an API query.
var marketParams = []string{"model", "min_vram_gib", "count", "max_price", "region", "max_rtt_ms", "min_reliability_bps", "sort"}

// marketPage is GET /market.
func (s *Server) marketPage(c *gin.Context) {
	f := web.NewForm()
	q := url.Values{}
	for _, k := range append(marketParams, "limit") {
		if v := c.Query(k); v != "" {
			f.Set(k, v)
			q.Set(k, v)
		}
	}
	models, regions := s.broker.Catalog()
	v := web.MarketView{Filter: f, Models: models, Regions: regions, Summary: summaryView(s.broker.Summary())}
	frag := cloneValues(q)
	if cur := c.Query("cursor"); cur != "" {
		frag.Set("cursor", cur)
	}
	frag.Set("fragment", "1")
	v.FragmentURL = "/market?" + frag.Encode()

	status := http.StatusOK
	filter, err := s.offerFilter(c)
	if err != nil {
		code := highway.ErrorCode(err)
		if code == highway.EINTERNAL {
			s.fail(c, err)
			return
		}
		f.Fail(highway.ErrorField(err), highway.ErrorMessage(err))
		fieldOrForm(f, marketParams)
		status = statusOf(code)
	} else {
		offers, next := s.broker.Offers(filter)
		v.RTTRegion = filter.Region
		v.Offers = make([]web.OfferRow, 0, len(offers))
		for _, o := range offers {
			v.Offers = append(v.Offers, offerRow(o, filter.Region))
		}
		if next != "" {
			nq := cloneValues(q)
			nq.Set("cursor", next)
			v.NextURL = "/market?" + nq.Encode()
		}
		if filter.Offset > 0 {
			v.FirstURL = "/market"
			if len(q) > 0 {
				v.FirstURL += "?" + q.Encode()
			}
		}
	}
	if c.Query("fragment") == "summary" {
		s.renderFragment(c, http.StatusOK, web.MarketSummary(v.Summary))
		return
	}
	if wantsFragment(c) {
		s.renderFragment(c, status, web.OffersTable(v))
		return
	}
	s.render(c, status, "Market", web.Market(s.page(c, "Market"), v))
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// offerRow is an offer as the table shows it; rttRegion is the visitor's
// region ("" means the offer's own, as broker.Offers measures it).
func offerRow(o highway.Offer, rttRegion string) web.OfferRow {
	if rttRegion == "" {
		rttRegion = o.Region
	}
	rtt, has := o.RTTms.Get(rttRegion)
	return web.OfferRow{ID: o.ID, Model: o.Model, GPUsFree: o.GPUsFree, GPUsTotal: o.GPUsTotal, VRAMGiB: o.VRAMGiB,
		Price: int64(o.PricePerGPUHour), Region: o.Region, RTTms: rtt, HasRTT: has, ReliabilityBps: o.ReliabilityBps,
		CUDA: o.CUDAVersion, Driver: o.DriverVersion, Provider: shortID(o.ProviderID), Simulated: o.Simulated, SpotFloor: int64(o.SpotFloor),
		MeasuredMilli: o.MeasuredMilliH100, PricePerH100: int64(o.PricePerH100Hour)}
}

// shortID names a provider on the public market without exposing who
// they are (the account's name or email is theirs to share).
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func summaryView(s broker.Summary) web.SummaryView {
	v := web.SummaryView{H100EquivalentsMilli: s.H100EquivalentsMilli, MachinesOnline: s.MachinesOnline, Leases: s.Leases}
	for _, m := range s.Models {
		v.Models = append(v.Models, web.SummaryRow{Model: m.Model, GPUsOnline: m.GPUsOnline, GPUsFree: m.GPUsFree, MedianPrice: m.MedianPrice})
	}
	return v
}
