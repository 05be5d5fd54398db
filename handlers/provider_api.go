package handlers

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
)

// The provider's API: machines and asks.

func (s *Server) apiMachines(c *gin.Context) {
	ms, err := s.store.ProviderMachines(c.Request.Context(), currentUser(c).ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	now := s.now()
	out := make([]gin.H, len(ms))
	for i, m := range ms {
		gpus := make([]gin.H, len(m.GPUs))
		for j, g := range m.GPUs {
			gpus[j] = gin.H{"index": g.Idx, "uuid": g.UUID, "name": g.Name, "model": g.Class, "memory_total_mib": g.MemoryTotalMiB,
				"utilization_pct": g.UtilizationPct, "temperature_c": g.TemperatureC, "free": g.Free, "lease_id": g.LeaseID}
		}
		out[i] = gin.H{"id": m.ID, "hostname": m.Hostname, "region": m.Region, "simulated": m.Simulated,
			"online": m.Online(now, s.agentCfg.HeartbeatInterval, s.agentCfg.OfflineMisses), "verified": m.VerifiedAt != nil,
			"verify_error": m.VerifyError, "suspended": m.SuspendedAt != nil, "provider_address": m.ProviderAddress, "gpus": gpus}
		if r, ok := s.broker.Reliability(m.ID); ok {
			out[i]["reliability"] = gin.H{"reliability_bps": r.ReliabilityBps, "uptime_bps": r.UptimeBps,
				"epochs_cleared": r.EpochsCleared, "epochs_missed": r.EpochsMissed}
		}
	}
	c.JSON(http.StatusOK, gin.H{"machines": out})
}

func (s *Server) apiPrices(c *gin.Context) {
	ps := s.broker.Prices(currentUser(c).ID)
	spot := s.broker.SpotTerms(currentUser(c).ID)
	out := []gin.H{}
	models, _ := s.broker.Catalog()
	for _, m := range models {
		if p, ok := ps[m]; ok {
			var terms any // null: no interruptible use
			if t, ok := spot[m]; ok {
				terms = gin.H{"floor_per_gpu_hour": strconv.FormatInt(t.Floor, 10), "notice_s": t.NoticeMs / 1000}
			}
			out = append(out, gin.H{"model": m, "price_per_gpu_hour": strconv.FormatInt(p, 10), "interruptible": terms})
		}
	}
	c.JSON(http.StatusOK, gin.H{"prices": out})
}

func (s *Server) apiSetPrice(c *gin.Context) {
	var b struct {
		Model string `json:"model"`
		Price string `json:"price_per_gpu_hour"`
		// Interruptible terms; absent: unchanged, "0": off.
		SpotFloor *string `json:"spot_floor_per_gpu_hour"`
		NoticeS   int64   `json:"notice_s"`
	}
	if err := bindJSON(c, &b); err != nil {
		s.fail(c, err)
		return
	}
	p, err := amount("price_per_gpu_hour", b.Price, false)
	switch {
	case err != nil:
	case b.SpotFloor == nil:
		err = s.broker.SetPrice(c.Request.Context(), currentUser(c).ID, b.Model, p)
	default:
		var floor highway.Amount
		if floor, err = amount("spot_floor_per_gpu_hour", *b.SpotFloor, true); err == nil {
			err = s.broker.SetPriceTerms(c.Request.Context(), currentUser(c).ID, b.Model, p, floor, b.NoticeS)
		}
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	out := gin.H{"model": b.Model, "price_per_gpu_hour": b.Price}
	if t, ok := s.broker.SpotTerms(currentUser(c).ID)[b.Model]; ok {
		out["interruptible"] = gin.H{"floor_per_gpu_hour": strconv.FormatInt(t.Floor, 10), "notice_s": t.NoticeMs / 1000}
	}
	c.JSON(http.StatusOK, out)
}
