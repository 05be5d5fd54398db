package handlers

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/broker"
	"github.com/highway-compute/highway/web"
)

// Market depth (/market/depth and GET /api/v1/market/depth): one GPU
// model's resting bids and rentable asks by price level, the spread, the
// last matches and the clearing price over 24 hours. The page's book is a
// live region like the market's.

// apiDepth: GET /api/v1/market/depth?model=&region=.
func (s *Server) apiDepth(c *gin.Context) {
	d, err := s.broker.Depth(c.Request.Context(), c.Query("model"), c.Query("region"))
	if err != nil {
		s.fail(c, err)
		return
	}
	side := func(ls []broker.DepthLevel, counted string) []gin.H {
		out := make([]gin.H, len(ls))
		for i, l := range ls {
			out[i] = gin.H{"price_per_gpu_hour": strconv.FormatInt(l.Price, 10), "gpus": l.GPUs, counted: l.Count}
		}
		return out
	}
	price := func(p int64) any {
		if p == 0 {
			return nil
		}
		return strconv.FormatInt(p, 10)
	}
	var spread any
	if d.Spread != nil {
		spread = strconv.FormatInt(*d.Spread, 10)
	}
	matches := make([]gin.H, len(d.Matches))
	for i, m := range d.Matches {
		matches[i] = gin.H{"time": m.At.UTC().Format(time.RFC3339), "gpus": m.GPUs, "price_per_gpu_hour": strconv.FormatInt(m.PricePerHour, 10)}
	}
	hours := make([]gin.H, len(d.Clearing))
	for i, h := range d.Clearing {
		hours[i] = gin.H{"hour": h.Start.UTC().Format(time.RFC3339), "price_per_gpu_hour": price(h.Price), "gpus": h.GPUs}
	}
	c.JSON(http.StatusOK, gin.H{"model": d.Model, "region": d.Region, "bids": side(d.Bids, "orders"), "asks": side(d.Asks, "machines"),
		"more_bid_levels": d.HiddenBids, "more_ask_levels": d.HiddenAsks,
		"best_bid": price(d.BestBid), "best_ask": price(d.BestAsk), "spread": spread, "last_matches": matches, "clearing": hours})
}

// depthPage is GET /market/depth (?fragment=1: the live book alone).
func (s *Server) depthPage(c *gin.Context) {
	models, regions := s.broker.Catalog()
	f := web.NewForm()
	model, region := c.Query("model"), c.Query("region")
	if model == "" && len(models) > 0 {
		model = models[0]
	}
	f.Set("model", model)
	f.Set("region", region)
	q := url.Values{"model": {model}, "fragment": {"1"}}
	if region != "" {
		q.Set("region", region)
	}
	v := web.DepthView{Filter: f, Models: models, Regions: regions, FragmentURL: "/market/depth?" + q.Encode()}
	status := http.StatusOK
	d, err := s.broker.Depth(c.Request.Context(), model, region)
	if err != nil {
		code := highway.ErrorCode(err)
		if code == highway.EINTERNAL {
			s.fail(c, err)
			return
		}
		f.Fail(highway.ErrorField(err), highway.ErrorMessage(err))
		status = statusOf(code)
	} else {
		v.Ready = true
		depthView(&v, d)
	}
	if wantsFragment(c) {
		if !v.Ready {
			c.Status(status)
			return
		}
		s.renderFragment(c, status, web.DepthBook(v))
		return
	}
	s.render(c, status, "Market depth", web.Depth(s.page(c, "Market depth"), v))
}

// depthView fills the page's book from a depth: bars in proportion to
// the deepest level on either side, the clearing chart's points.
func depthView(v *web.DepthView, d broker.Depth) {
	v.Model, v.Region, v.BestBid, v.BestAsk = d.Model, d.Region, d.BestBid, d.BestAsk
	v.HiddenBids, v.HiddenAsks = d.HiddenBids, d.HiddenAsks
	if d.Spread != nil {
		v.HasSpread, v.Spread = true, *d.Spread
	}
	deepest := int64(1)
	for _, l := range append(append([]broker.DepthLevel(nil), d.Bids...), d.Asks...) {
		deepest = max(deepest, l.GPUs)
	}
	rows := func(ls []broker.DepthLevel) []web.DepthRow {
		out := make([]web.DepthRow, len(ls))
		for i, l := range ls {
			out[i] = web.DepthRow{Price: l.Price, GPUs: l.GPUs, Count: l.Count, BarPct: l.GPUs * 100 / deepest}
		}
		return out
	}
	v.Bids, v.Asks = rows(d.Bids), rows(d.Asks)
	for _, m := range d.Matches {
		v.Matches = append(v.Matches, web.MatchRow{At: web.FormatTime(m.At), GPUs: m.GPUs, Price: m.PricePerHour})
	}
	series := web.ChartSeries{Name: d.Model}
	for _, h := range d.Clearing {
		if h.GPUs > 0 {
			series.Points = append(series.Points, web.ChartPoint{X: h.Start.Unix(), Y: h.Price})
		}
	}
	v.Chart = web.Chart{ID: "clearing", Title: "Clearing price per GPU-hour, " + d.Model,
		Desc:   "Each hour's GPU-weighted median price of the leases made in it, over the last 24 hours.",
		YLabel: "HWY per GPU-hour", XLabel: "hour (UTC)", Series: []web.ChartSeries{series}, FormatY: web.FormatHWYInt, Step: 3600}
	if n := len(d.Clearing); n > 0 {
		v.Chart.XFrom, v.Chart.XTo = d.Clearing[0].Start.Unix(), d.Clearing[n-1].Start.Add(time.Hour).Unix()
	}
}
