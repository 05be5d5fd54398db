package handlers

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway/protocol"
)

// routes is the one route table: every page, API and agent route, with
// the middleware each group runs. A handler lives in the file named after
// its resource (orders_page.go, orders_api.go, ...; see docs/decisions.md).
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
	agents.GET("/shells/:session", s.agentShell)
	agents.GET("/tunnels/:session", s.agentTunnel)

	// Public JSON API (shared/API.md, docs/api.md). Built on the engine,
	// not on pages: it authenticates by API key only, never by the session
	// cookie, because it has no CSRF check. Unknown /api/v1 paths fall
	// through to NoRoute, a JSON 404.
	{
		v1 := e.Group("/api/v1")
		// Public routes (market data): a key is optional and, when valid,
		// sets the user.
		public := v1.Group("", s.apiOptionalAuth, s.apiRate)
		// Everything else needs a key; requireRole works inside as on pages.
		api := v1.Group("", s.apiAuth, s.apiRate)
		api.GET("/me", s.apiMe)

		public.GET("/offers", s.apiOffers)
		public.GET("/market/summary", s.apiSummary)
		public.GET("/market/depth", s.apiDepth)
		public.GET("/regions", s.apiRegions)

		api.POST("/orders", s.apiPlaceOrder)
		api.GET("/orders", s.apiOrders)
		api.GET("/orders/:id", s.apiOrder)
		api.DELETE("/orders/:id", s.apiCancelOrder)
		api.GET("/leases", s.apiLeases)
		api.GET("/leases/:id", s.apiLease)
		api.GET("/leases/:id/logs", s.apiLeaseLogs)
		api.POST("/leases/:id/close", s.apiCloseLease)
		api.GET("/leases/:id/shell", s.buyerShell)
		api.GET("/leases/:id/ports", s.apiPorts)
		api.POST("/leases/:id/ports", s.apiOpenPort)
		api.DELETE("/leases/:id/ports/:port", s.apiClosePort)
		api.POST("/leases/:id/extend", s.apiExtendLease)
		api.PUT("/leases/:id/auto-extend", s.apiAutoExtend)
		api.POST("/leases/:id/disputes", s.apiStatement(http.StatusCreated, s.broker.OpenDispute))
		api.GET("/disputes", s.apiDisputes)
		api.GET("/disputes/:id", s.apiDispute)
		api.GET("/notifications", s.apiNotifications)
		api.PUT("/alerts", s.apiSetAlerts)
		api.GET("/webhooks", s.apiWebhooks)
		api.POST("/webhooks", s.apiAddWebhook)
		api.DELETE("/webhooks/:id", s.apiDeleteWebhook)
		api.POST("/webhooks/:id/test", s.apiTestWebhook)
		api.GET("/wallet", s.apiWallet)
		api.GET("/wallet/history", s.apiWalletHistory)
		api.POST("/wallet/faucet", s.apiFaucet)
		api.POST("/wallet/withdraw", s.apiWithdraw)

		prov := api.Group("", s.requireRole("provider"))
		prov.GET("/machines", s.apiMachines)
		prov.GET("/prices", s.apiPrices)
		prov.PUT("/prices", s.apiSetPrice)
		prov.POST("/disputes/:id/statement", s.apiStatement(http.StatusOK, s.broker.ProviderStatement))

		apiAdmin := api.Group("", s.requireRole("admin"))
		apiAdmin.POST("/disputes/:id/resolve", s.apiResolveDispute)
		apiAdmin.POST("/providers/:id/suspend", s.apiSuspend(true))
		apiAdmin.POST("/providers/:id/reinstate", s.apiSuspend(false))
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

	// Market pages (market_page.go, orders_page.go, leases_page.go,
	// wallet_page.go): the market and its live stream are
	// public; orders, leases and the wallet need a session. Access to one
	// order or lease is checked in the handler (others get 404).
	{
		pages.GET("/market", s.liveGeneration, s.marketPage)
		pages.GET("/market/events", s.marketEvents)
		pages.GET("/market/depth", s.liveGeneration, s.depthPage)
		member.GET("/orders/new", s.orderNew)
		member.POST("/orders/estimate", s.orderEstimate)
		member.POST("/orders", s.orderCreate)
		member.GET("/orders/:id", s.liveGeneration, s.orderPage)
		member.GET("/leases/:id", s.liveGeneration, s.leasePage)
		member.POST("/leases/:id/close", s.leaseClose)
		member.GET("/leases/:id/shell", s.leaseShellPage)
		member.GET("/leases/:id/shell/ws", s.buyerShell)
		member.POST("/leases/:id/ports", s.leasePortOpen)
		member.POST("/leases/:id/ports/:port/close", s.leasePortClose)
		member.GET("/ports/:slug/open", s.portOpen)
		member.POST("/leases/:id/extend", s.leaseExtend)
		member.POST("/leases/:id/auto-extend", s.leaseAutoExtend)
		member.POST("/leases/:id/disputes", s.leaseDispute)
		member.POST("/disputes/:id/statement", s.disputeStatement)
		member.GET("/alerts", s.alertsPage)
		member.POST("/alerts/balance", s.alertsBalance)
		member.POST("/alerts/webhooks", s.alertsAddWebhook)
		member.POST("/alerts/webhooks/:id/test", s.alertsTestWebhook)
		member.POST("/alerts/webhooks/:id/delete", s.alertsDeleteWebhook)
		member.GET("/wallet", s.walletPage)
		member.POST("/wallet/faucet", s.walletFaucet)
		member.POST("/wallet/withdraw", s.walletWithdraw)
	}

	provider := member.Group("/provider", s.requireRole("provider"))
	provider.GET("", s.providerConsole)
	provider.POST("/enrollments", s.providerEnroll)
	// Console additions (provider_page.go): asks per model.
	{
		provider.POST("/prices", s.providerSetPrice)
	}

	admin := member.Group("/admin", s.requireRole("admin"))
	admin.GET("", s.adminOverview)
	admin.GET("/users", s.adminUsers)
	admin.POST("/users/:id/roles", s.adminSetRoles)
	admin.POST("/users/:id/disable", s.adminSetDisabled)
	// Arbiter pages (disputes_page.go): the disputes queue, one dispute's
	// evidence and resolution, and suspending a provider.
	{
		admin.GET("/disputes", s.adminDisputes)
		admin.GET("/disputes/:id", s.adminDispute)
		admin.POST("/disputes/:id/resolve", s.adminResolveDispute)
		admin.POST("/providers/:id/suspend", s.adminSuspend(true))
		admin.POST("/providers/:id/reinstate", s.adminSuspend(false))
	}
}
