package main

import (
	"context"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
)

// Who may use a route.
const (
	anyone    = "anyone"         // public
	member    = "member"         // any logged-in user
	owner     = "owner"          // the buyer who owns the order/lease/dispute
	viewer    = "viewer"         // the buyer, the lease's provider, admins (lease pages)
	prov      = "provider"       // provider role
	leaseProv = "lease provider" // the provider of the dispute's lease
	adminOnly = "admin"
	skip      = "skip" // not an authorisation question (see the comment at its entry)
)

// routeRules names who may use every route of the server. The test fails
// when a route exists that this table does not mention, so a new route
// cannot be added without deciding who may use it.
var routeRules = map[string]string{
	"GET /":        anyone,
	"GET /network": anyone,
	"GET /market":  anyone, "GET /market/depth": anyone,
	// An endless event stream; public, covered by the market page tests.
	"GET /market/events": skip,
	"GET /signup":        anyone, "POST /signup": skip, "GET /login": anyone, "POST /login": skip,
	"POST /logout": skip, // ends the acting session
	"GET /account": member, "POST /account/api-keys": member, "POST /account/api-keys/:id/revoke": owner,
	"GET /orders/new": member, "POST /orders/estimate": member, "POST /orders": member, "GET /orders/:id": owner,
	"GET /leases/:id": viewer, "POST /leases/:id/close": owner, "POST /leases/:id/extend": owner, "POST /leases/:id/auto-extend": owner, "POST /leases/:id/disputes": owner,
	"GET /leases/:id/shell": owner, "GET /leases/:id/shell/ws": owner, "GET /api/v1/leases/:id/shell": owner,
	"POST /leases/:id/ports": owner, "POST /leases/:id/ports/:port/close": owner,
	"GET /api/v1/leases/:id/ports": owner, "POST /api/v1/leases/:id/ports": owner, "DELETE /api/v1/leases/:id/ports/:port": owner,
	// A forward's slug, not a lease: TestPortForwardEndToEnd covers who
	// may open one.
	"GET /ports/:slug/open":        skip,
	"POST /disputes/:id/statement": leaseProv,
	"GET /alerts":                  member, "POST /alerts/balance": member, "POST /alerts/webhooks": member,
	"POST /alerts/webhooks/:id/test": owner, "POST /alerts/webhooks/:id/delete": owner,
	"GET /api/v1/notifications": member, "PUT /api/v1/alerts": member, "GET /api/v1/webhooks": member, "POST /api/v1/webhooks": member,
	"DELETE /api/v1/webhooks/:id": owner, "POST /api/v1/webhooks/:id/test": owner,
	"GET /wallet": member, "POST /wallet/faucet": member, "POST /wallet/withdraw": member,
	"GET /provider": prov, "POST /provider/enrollments": prov, "POST /provider/prices": prov,
	"GET /admin": adminOnly, "GET /admin/users": adminOnly, "POST /admin/users/:id/roles": adminOnly, "POST /admin/users/:id/disable": adminOnly,
	"GET /admin/disputes": adminOnly, "GET /admin/disputes/:id": adminOnly, "POST /admin/disputes/:id/resolve": adminOnly,
	"POST /admin/providers/:id/suspend": adminOnly, "POST /admin/providers/:id/reinstate": adminOnly,

	"GET /api/v1/offers": anyone, "GET /api/v1/market/summary": anyone, "GET /api/v1/market/depth": anyone, "GET /api/v1/regions": anyone,
	"GET /api/v1/me": member, "POST /api/v1/orders": member, "GET /api/v1/orders": member,
	"GET /api/v1/orders/:id": owner, "DELETE /api/v1/orders/:id": owner,
	"GET /api/v1/leases": member, "GET /api/v1/leases/:id": viewer, "GET /api/v1/leases/:id/logs": viewer,
	"POST /api/v1/leases/:id/close": owner, "POST /api/v1/leases/:id/extend": owner, "PUT /api/v1/leases/:id/auto-extend": owner, "POST /api/v1/leases/:id/disputes": owner,
	"GET /api/v1/disputes": member, "GET /api/v1/disputes/:id": viewer,
	"GET /api/v1/wallet": member, "GET /api/v1/wallet/history": member, "POST /api/v1/wallet/faucet": member, "POST /api/v1/wallet/withdraw": member,
	"GET /api/v1/machines": prov, "GET /api/v1/prices": prov, "PUT /api/v1/prices": prov,
	"POST /api/v1/disputes/:id/statement": leaseProv,
	"POST /api/v1/disputes/:id/resolve":   adminOnly,
	"POST /api/v1/providers/:id/suspend":  adminOnly, "POST /api/v1/providers/:id/reinstate": adminOnly,
}

// TestAuthorisationMatrix walks every route as a visitor, a buyer, another
// buyer, a provider and an admin, and checks who is let through. Denied
// means 401/403/404 or a redirect to the login page; allowed means none of
// those (a 404 is also accepted for the owner where the resource needs a
// chain this test runs without, such as closing a lease).
func TestAuthorisationMatrix(t *testing.T) {
	srv := startServerAt(t, "127.0.0.1:0", dbtest.SQLiteDSN(t), accounts.Config{}, nil)
	ctx := context.Background()
	svc := accounts.New(srv.Store, accounts.Config{Hash: cheapHash})

	type actor struct {
		name  string
		b     *browser
		key   string
		user  *models.User
		roles map[string]bool
	}
	mk := func(name, email string, roles ...string) *actor {
		a := &actor{name: name, b: newBrowser(t, srv), roles: map[string]bool{}}
		if email == "" {
			return a
		}
		wantStatus(t, a.b.signup(email, "a long passphrase", roles...), http.StatusSeeOther)
		u, err := srv.Store.UserByEmail(ctx, email)
		if err != nil {
			t.Fatal(err)
		}
		a.user = u
		for _, r := range roles {
			a.roles[r] = true
		}
		if a.roles["admin"] {
			if err := srv.Store.SetUserRoles(ctx, u.ID, true, false, true); err != nil {
				t.Fatal(err)
			}
		}
		_, a.key, err = svc.CreateAPIKey(ctx, u, "authz")
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	visitor := mk("visitor", "")
	buyer := mk("buyer", "buyer@example.com", "buyer")
	other := mk("other buyer", "other@example.com", "buyer")
	provider := mk("provider", "prov@example.com", "provider")
	admin := mk("admin", "admin@example.com", "buyer", "admin")
	victim := mk("victim", "victim@example.com", "buyer")
	actors := []*actor{visitor, buyer, other, provider, admin}

	// The buyer's order, lease (on the provider's machine), dispute and key.
	now := time.Now().UTC()
	order := &models.Order{ID: models.NewID(), BuyerID: buyer.user.ID, Type: "fok", GPUs: 1, MaxPrice: 1, Region: "local", MaxRTTms: 1,
		Hours: 1, Status: models.OrderLeased, WorkloadJSON: "{}"}
	if _, err := srv.Store.CreateOrder(ctx, order); err != nil {
		t.Fatal(err)
	}
	lease := &models.Lease{ID: models.NewID(), ChainLeaseID: 1, OrderID: order.ID, BuyerID: buyer.user.ID, ProviderID: provider.user.ID,
		MachineID: "m", AgentID: "a", Model: "H100", GPUs: 1, PricePerHour: 1, PricePerEpoch: "1", EpochsTotal: 1, Status: models.LeaseActive,
		Remaining: "1", Pending: "0", Frozen: "0", Paid: "0", Refunded: "0", Fees: "0", EndsAt: now.Add(time.Hour)}
	if err := srv.Store.CreateLease(ctx, lease); err != nil {
		t.Fatal(err)
	}
	dispute := &models.Dispute{ID: models.NewID(), LeaseID: lease.ID, BuyerID: buyer.user.ID, ProviderID: provider.user.ID, Status: "open", BuyerStatement: "x"}
	if err := srv.Store.CreateDispute(ctx, dispute); err != nil {
		t.Fatal(err)
	}
	// The buyer's webhook, for its routes.
	hook := &models.Webhook{UserID: buyer.user.ID, URL: "http://127.0.0.1:9/hook", Secret: "whsec_x"}
	if err := srv.Store.AddWebhook(ctx, hook, 5); err != nil {
		t.Fatal(err)
	}
	// A second key of the buyer's, for the revoke route to act on.
	target, _, err := svc.CreateAPIKey(ctx, buyer.user, "revoke me")
	if err != nil {
		t.Fatal(err)
	}

	param := func(route string) string {
		switch {
		case strings.Contains(route, "/api-keys/"):
			return target.ID
		case strings.Contains(route, "/webhooks/"):
			return hook.ID
		case strings.Contains(route, "/orders/"):
			return order.ID
		case strings.Contains(route, "/leases/"):
			return lease.ID
		case strings.Contains(route, "/disputes/"):
			return dispute.ID
		case strings.Contains(route, "/providers/"):
			return provider.user.ID
		case strings.Contains(route, "/users/"):
			return victim.user.ID
		}
		return ""
	}
	may := func(rule string, a *actor) bool {
		switch rule {
		case anyone:
			return true
		case member:
			return a.user != nil
		case owner:
			return a == buyer
		case viewer:
			return a == buyer || a == provider || a == admin
		case prov:
			return a.roles["provider"]
		case leaseProv:
			return a == provider
		case adminOnly:
			return a.roles["admin"]
		}
		return false
	}

	engine, ok := srv.handler.current().(*gin.Engine)
	if !ok {
		t.Fatalf("the leader's handler is %T", srv.handler.current())
	}
	var routes []string
	for _, r := range engine.Routes() {
		key := r.Method + " " + r.Path
		switch {
		case strings.HasPrefix(r.Path, "/api/agent/"), strings.HasPrefix(r.Path, "/static/"),
			r.Path == "/healthz", r.Path == "/readyz", r.Path == "/metrics":
			continue // signed agent API (own tests) and operational endpoints
		}
		if _, ok := routeRules[key]; !ok {
			t.Errorf("route %s is not in the authorisation table: decide who may use it", key)
			continue
		}
		routes = append(routes, key)
	}
	sort.Strings(routes)

	checked := 0
	for _, key := range routes {
		rule := routeRules[key]
		if rule == skip {
			continue
		}
		method, path, _ := strings.Cut(key, " ")
		if i := strings.Index(path, ":id"); i >= 0 {
			path = path[:i] + param(path) + path[i+3:]
		}
		api := strings.HasPrefix(path, "/api/")
		for _, a := range actors {
			var p *page
			if api {
				req, _ := http.NewRequest(method, a.b.base+path, strings.NewReader("{}"))
				req.Header.Set("Content-Type", "application/json")
				if a.key != "" {
					req.Header.Set("Authorization", "Bearer "+a.key)
				}
				p = a.b.do(req)
			} else if method == http.MethodGet {
				p = a.b.get(path)
			} else {
				from := "/signup"
				if a.user != nil {
					from = "/account"
				}
				p = a.b.submit(from, path, url.Values{})
			}
			toLogin := p.status == http.StatusSeeOther && strings.HasPrefix(p.header.Get("Location"), "/login")
			denied := p.status == http.StatusUnauthorized || p.status == http.StatusForbidden || p.status == http.StatusNotFound || toLogin
			want := may(rule, a)
			// A 404 is access for the owner of a resource whose action
			// needs the chain (no wallet here), and for the faucet, which
			// exists only in dev mode.
			chainless := p.status == http.StatusNotFound && (rule == owner || strings.HasSuffix(path, "/faucet"))
			if want && denied && !chainless {
				t.Errorf("%s as %s: status %d, want access (%s)", key, a.name, p.status, rule)
			}
			if !want && !denied {
				t.Errorf("%s as %s: status %d, want it refused (%s)", key, a.name, p.status, rule)
			}
			checked++
		}
	}
	if checked < 5*40 {
		t.Fatalf("only %d route × actor checks ran", checked)
	}
}
