package handlers

import (
	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway/provider-agent/protocol"
)

// routes is the one route table.
func (s *Server) routes(e *gin.Engine) {
	e.Use(s.requestID, s.recoverer, s.observe, securityHeaders, limitBody)
	e.NoRoute(s.notFound)
	e.NoMethod(s.methodNotAllowed)

	// Operational endpoints: no session, no CSRF.
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", s.metricsHandler())
	e.GET("/static/*path", serveStatic)
	e.HEAD("/static/*path", serveStatic)

	// Agent API: ed25519-signed requests, no cookies, no CSRF.
	agents := e.Group(protocol.Prefix)
	agents.POST("/register", s.agentRegister)
	agents.POST("/heartbeat", s.agentHeartbeat)
	agents.GET("/assignments", s.agentAssignments)
	agents.POST("/logs", agentPost(s, protocol.DecodeLogBatch, s.broker.Logs))
	agents.POST("/quotes", agentPost(s, protocol.DecodeQuoteResponse, s.broker.QuoteAnswer))
	agents.POST("/verifications", agentPost(s, protocol.DecodeVerificationResponse, s.broker.Verification))

	// Public JSON API (shared/API.md, docs/api.md). Built on the engine,
	// not on pages: it authenticates by API key only, never by the session
	// cookie, because it has no CSRF check. Unknown /api/v1 paths fall
	// through to NoRoute, a JSON 404.
	{
		v1 := e.Group("/api/v1")
		// Public routes (market data): a key is optional and, when valid,
		// sets the user.
		public := v1.Group("", s.apiOptionalAuth)
		// Everything else needs a key; requireRole works inside as on pages.
		api := v1.Group("", s.apiAuth)
		api.GET("/me", s.apiMe)
		s.apiRoutes(public, api)
	}

	// Pages: cookie session and CSRF on every state-changing request.
	pages := e.Group("/", s.loadSession, s.csrf, s.loadFlash)
	pages.GET("/", s.home)
	pages.GET("/network", s.network)
	pages.GET("/signup", s.signupPage)
	pages.POST("/signup", s.signupSubmit)
	pages.GET("/login", s.loginPage)
	pages.POST("/login", s.loginSubmit)
	pages.POST("/logout", s.logout)

	member := pages.Group("/", s.requireUser)
	member.GET("/account", s.accountPage)
	member.POST("/account/api-keys", s.apiKeyCreate)
	member.POST("/account/api-keys/:id/revoke", s.apiKeyRevoke)

	// Market pages (pages_market.go): the market and its live stream are
	// public; orders, leases and the wallet need a session. Access to one
	// order or lease is checked in the handler (others get 404).
	{
		pages.GET("/market", s.liveGeneration, s.marketPage)
		pages.GET("/market/events", s.marketEvents)
		member.GET("/orders/new", s.orderNew)
		member.POST("/orders", s.orderCreate)
		member.GET("/orders/:id", s.liveGeneration, s.orderPage)
		member.GET("/leases/:id", s.liveGeneration, s.leasePage)
		member.POST("/leases/:id/close", s.leaseClose)
		member.POST("/leases/:id/disputes", s.leaseDispute)
		member.POST("/disputes/:id/statement", s.disputeStatement)
		member.GET("/wallet", s.walletPage)
		member.POST("/wallet/faucet", s.walletFaucet)
		member.POST("/wallet/withdraw", s.walletWithdraw)
	}

	provider := member.Group("/provider", s.requireRole("provider"))
	provider.GET("", s.providerConsole)
	provider.POST("/enrollments", s.providerEnroll)
	// Console additions (provider.go): asks per model.
	{
		provider.POST("/prices", s.providerSetPrice)
	}

	admin := member.Group("/admin", s.requireRole("admin"))
	admin.GET("", s.adminOverview)
	admin.GET("/users", s.adminUsers)
	admin.POST("/users/:id/roles", s.adminSetRoles)
	admin.POST("/users/:id/disable", s.adminSetDisabled)
	// Arbiter pages (pages_admin.go): the disputes queue, one dispute's
	// evidence and resolution, and suspending a provider.
	{
		admin.GET("/disputes", s.adminDisputes)
		admin.GET("/disputes/:id", s.adminDispute)
		admin.POST("/disputes/:id/resolve", s.adminResolveDispute)
		admin.POST("/providers/:id/suspend", s.adminSuspend(true))
		admin.POST("/providers/:id/reinstate", s.adminSuspend(false))
	}
}
