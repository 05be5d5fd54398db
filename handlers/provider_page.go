package handlers

import (
	"fmt"
	stdmath "math"
	"net/http"
	"sort"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/protocol"
	"github.com/highway-compute/highway/web"
)

func (s *Server) providerConsole(c *gin.Context) {
	s.renderConsole(c, http.StatusOK, "", &web.PriceForm{})
}

// providerEnroll creates a one-time enrollment token and shows it once.
func (s *Server) providerEnroll(c *gin.Context) {
	token, err := s.broker.Enroll(c.Request.Context(), currentUser(c).ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.renderConsole(c, http.StatusCreated, token, &web.PriceForm{})
}

// consoleLeases is how many of the provider's latest leases the console lists.
const consoleLeases = 50

// renderConsole shows the console; token is a just-created enrollment
// token ("" for none) and prices the price form as typed.
func (s *Server) renderConsole(c *gin.Context, status int, token string, prices *web.PriceForm) {
	ctx := c.Request.Context()
	u := currentUser(c)
	machines, err := s.store.ProviderMachines(ctx, u.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	now := s.now()
	v := web.ConsoleView{Token: token, BaseURL: s.baseURL, PriceForm: prices}
	catalog, _ := s.broker.Catalog()
	v.Models = catalog
	asks := s.broker.Prices(u.ID)
	for _, m := range catalog {
		p, ok := asks[m]
		v.Prices = append(v.Prices, web.PriceRow{Model: m, Price: p, Set: ok})
	}
	if len(catalog) > 0 {
		v.PriceForm.Default("model", catalog[0])
	}
	if v.Leases, err = s.consoleLeases(c, u.ID); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.consoleEarnings(c, u.ID, &v); err != nil {
		s.fail(c, err)
		return
	}
	for _, m := range machines {
		mv := web.MachineView{
			ID: m.ID, Hostname: m.Hostname, Online: m.Online(now, s.agentCfg.HeartbeatInterval, s.agentCfg.OfflineMisses),
			Simulated: m.Simulated, Verified: m.VerifiedAt != nil, Suspended: m.SuspendedAt != nil,
			Driver: m.DriverVersion, CUDA: m.CUDAVersion, LastBeat: "never",
			Region: m.Region, VerifyError: m.VerifyError, SuspendReason: m.SuspendReason,
		}
		if m.LastHeartbeatAt != nil {
			mv.LastBeat = humanAgo(now.Sub(*m.LastHeartbeatAt))
		}
		if r, ok := s.broker.Reliability(m.ID); ok {
			mv.Reliability = &web.ReliabilityView{ReliabilityBps: r.ReliabilityBps, UptimeBps: r.UptimeBps,
				Cleared: r.EpochsCleared, Missed: r.EpochsMissed}
		}
		rtts := m.RTTs()
		regions := make([]string, 0, len(rtts))
		for r := range rtts {
			regions = append(regions, r)
		}
		sort.Strings(regions)
		for _, r := range regions {
			mv.RTTs = append(mv.RTTs, fmt.Sprintf("%s %d ms", r, rtts[r]))
		}
		for _, g := range m.GPUs {
			mv.GPUs = append(mv.GPUs, web.GPUView{
				Index: g.Idx, Class: g.Class, Name: g.Name, UUID: g.UUID, MemTotalGiB: protocol.GiB(g.MemoryTotalMiB),
				MemUsedGiB: protocol.GiB(g.MemoryUsedMiB), Util: g.UtilizationPct, Temp: g.TemperatureC,
				PowerW: g.PowerMW / 1000, Free: g.Free,
			})
		}
		v.Machines = append(v.Machines, mv)
	}
	s.render(c, status, "Provider console", web.Console(s.page(c, "Provider console"), v))
}

func humanAgo(d time.Duration) string {
	switch {
	case d < 2*time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%d s ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	default:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
}

// consoleHistory is how many of the latest settled epochs the console
// lists.
const consoleHistory = 20

// consoleEarnings draws the provider's last 24 hours in hourly buckets:
// escrow released to it (cleared epochs) and epochs cleared and missed,
// summed by the database over every epoch of the day, and lists the
// latest settled epochs.
func (s *Server) consoleEarnings(c *gin.Context, providerID string, v *web.ConsoleView) error {
	ctx := c.Request.Context()
	now := s.now().UTC()
	start := now.Truncate(time.Hour).Add(-23 * time.Hour)
	hours, err := s.store.ProviderHours(ctx, providerID, start, start.Add(24*time.Hour))
	if err != nil {
		return err
	}
	const buckets = 24
	var earned [buckets]highway.Total
	var cleared, missed [buckets]int64
	var total highway.Total
	for _, h := range hours {
		i := int(h.Hour - start.Unix()/3600)
		if i < 0 || i >= buckets {
			continue
		}
		cleared[i], missed[i] = h.Cleared, h.Missed
		earned[i] = h.Earned()
		total = total.Add(earned[i])
	}
	pay := web.ChartSeries{Name: "released to you"}
	ok := web.ChartSeries{Name: "epochs cleared"}
	bad := web.ChartSeries{Name: "epochs missed"}
	for i := 0; i < buckets; i++ {
		x := start.Add(time.Duration(i) * time.Hour).Unix()
		y := int64(stdmath.MaxInt64) // a day's pay beyond int64 micro-units is drawn at the top
		if a, fits := earned[i].Amount(); fits {
			y = int64(a)
		}
		pay.Points = append(pay.Points, web.ChartPoint{X: x, Y: y})
		ok.Points = append(ok.Points, web.ChartPoint{X: x, Y: cleared[i]})
		bad.Points = append(bad.Points, web.ChartPoint{X: x, Y: missed[i]})
	}
	v.Earned = total.String()
	v.Earnings = web.Chart{ID: "earnings", Title: "Released to you per hour, last 24 hours", XLabel: "hour (UTC)", YLabel: "HWY",
		Desc:   "Escrow released for your cleared epochs, per hour, before the network fee.",
		Series: []web.ChartSeries{pay}, FormatY: web.FormatHWYInt}
	v.Proofs = web.Chart{ID: "proofs", Title: "Proof-of-Compute per hour, last 24 hours", XLabel: "hour (UTC)", YLabel: "epochs",
		Desc:   "Epochs of your leases whose proofs cleared on chain, and epochs missed (refunded to the buyer), per hour.",
		Series: []web.ChartSeries{ok, bad}}
	eps, err := s.store.ProviderEpochs(ctx, providerID, start, consoleHistory)
	if err != nil {
		return err
	}
	for _, e := range eps {
		r := web.ProofRow{LeaseID: e.LeaseID, ChainLeaseID: e.ChainLeaseID, N: e.N, Status: e.Status, ValidNonces: e.ValidNonces,
			Required: e.Required, Amount: orZero(e.Amount), TxHash: e.TxHash}
		if e.SettledAt != nil {
			r.At = web.FormatTime(*e.SettledAt)
		}
		v.History = append(v.History, r)
	}
	return nil
}

// consoleLeases lists the provider's latest leases with their epoch counts.
func (s *Server) consoleLeases(c *gin.Context, providerID string) ([]web.ProviderLeaseRow, error) {
	ctx := c.Request.Context()
	ls, err := s.store.LeasesOf(ctx, providerID, true, consoleLeases)
	if err != nil {
		return nil, err
	}
	rows := make([]web.ProviderLeaseRow, 0, len(ls))
	for _, l := range ls {
		eps, err := s.store.Epochs(ctx, l.ID)
		if err != nil {
			return nil, err
		}
		r := web.ProviderLeaseRow{ID: l.ID, ChainLeaseID: l.ChainLeaseID, Status: l.Status, Model: l.Model, GPUs: l.GPUs,
			EpochsTotal: l.EpochsTotal, Paid: orZero(l.Paid), Frozen: orZero(l.Frozen), Created: web.FormatTime(l.CreatedAt)}
		for _, e := range eps {
			switch e.Status {
			case "cleared":
				r.Cleared++
			case "missed":
				r.Missed++
			}
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// providerSetPrice is POST /provider/prices: the ask for one model, typed
// in HWY per GPU-hour.
func (s *Server) providerSetPrice(c *gin.Context) {
	f := &web.PriceForm{}
	f.Bind(c.PostForm)
	err := f.Validate()
	if err == nil {
		err = s.broker.SetPriceTerms(c.Request.Context(), currentUser(c).ID, f.Model, f.Price, f.SpotFloor, f.NoticeS)
	}
	if err != nil {
		s.formError(c, &f.Form, err, func(*web.Page) {
			fieldOrForm(&f.Form, []string{"model", "price_per_gpu_hour", "spot_floor_per_gpu_hour", "notice_s"})
			s.renderConsole(c, statusOf(highway.ErrorCode(err)), "", f)
		})
		return
	}
	msg := "Price for " + f.Model + " set to " + f.Price.HWY() + " HWY per GPU-hour"
	if f.SpotFloor > 0 {
		msg += "; idle GPUs rent as interruptible from " + f.SpotFloor.HWY() + " HWY"
	}
	s.setFlash(c, "success", msg+".")
	c.Redirect(http.StatusSeeOther, "/provider")
}
