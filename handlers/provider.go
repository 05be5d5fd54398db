package handlers

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/web"
)

// enrollmentTTL is how long a new enrollment token works: long enough to
// install the agent, short enough that a leaked token soon dies.
const enrollmentTTL = time.Hour

func (s *Server) providerConsole(c *gin.Context) {
	s.renderConsole(c, "")
}

// providerEnroll creates a one-time enrollment token and shows it once.
func (s *Server) providerEnroll(c *gin.Context) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		s.fail(c, err)
		return
	}
	token := "hwe_" + base64.RawURLEncoding.EncodeToString(b)
	now := s.now().UTC()
	t := &models.EnrollmentToken{TokenHash: accounts.HashToken(token), ProviderID: currentUser(c).ID, CreatedAt: now, ExpiresAt: now.Add(enrollmentTTL)}
	if err := s.store.CreateEnrollmentToken(c.Request.Context(), t); err != nil {
		s.fail(c, err)
		return
	}
	s.renderConsole(c, token)
}

func (s *Server) renderConsole(c *gin.Context, token string) {
	u := currentUser(c)
	machines, err := s.store.ProviderMachines(c.Request.Context(), u.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	now := s.now()
	v := web.ConsoleView{Token: token, BaseURL: s.baseURL}
	for _, m := range machines {
		mv := web.MachineView{
			ID: m.ID, Hostname: m.Hostname, Online: m.Online(now, s.agentCfg.HeartbeatInterval, s.agentCfg.OfflineMisses),
			Simulated: m.Simulated, Verified: m.VerifiedAt != nil, Suspended: m.SuspendedAt != nil,
			Driver: m.DriverVersion, CUDA: m.CUDAVersion, LastBeat: "never",
		}
		if m.LastHeartbeatAt != nil {
			mv.LastBeat = humanAgo(now.Sub(*m.LastHeartbeatAt))
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
				Index: g.Idx, Class: g.Class, Name: g.Name, UUID: g.UUID, MemTotalGiB: g.MemoryTotalMiB / 1024,
				MemUsedGiB: g.MemoryUsedMiB / 1024, Util: g.UtilizationPct, Temp: g.TemperatureC,
				PowerW: g.PowerMW / 1000, Free: g.Free,
			})
		}
		v.Machines = append(v.Machines, mv)
	}
	status := http.StatusOK
	if token != "" {
		status = http.StatusCreated
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
