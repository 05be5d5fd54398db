package handlers

import (
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/broker"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/web"
)

// Alerts (broker/alerts.go): the page under the header's bell and its
// API. Notifications are marked read once listed.

const alertsShown = 50

func (s *Server) alertsPage(c *gin.Context) {
	s.renderAlerts(c, http.StatusOK, nil, nil)
}

// renderAlerts renders the page; a form passed in is shown as sent, with
// its errors.
func (s *Server) renderAlerts(c *gin.Context, status int, balanceForm, webhookForm *web.Form) {
	ctx := c.Request.Context()
	u := currentUser(c)
	ns, err := s.store.Notifications(ctx, u.ID, alertsShown)
	if err != nil {
		s.fail(c, err)
		return
	}
	v := web.AlertsView{BalanceForm: balanceForm, WebhookForm: webhookForm, MaxWebhooks: broker.MaxWebhooks}
	for _, n := range ns {
		v.Notifications = append(v.Notifications, web.NotificationRow{Kind: n.Kind, Text: n.Text, Link: n.Link, When: web.FormatTime(n.CreatedAt), Unread: n.ReadAt == nil})
	}
	if v.BalanceForm == nil {
		v.BalanceForm = web.NewForm()
		v.BalanceForm.Set("balance_below", highway.Amount(u.AlertBalanceBelow).HWY())
	}
	if v.WebhookForm == nil {
		v.WebhookForm = web.NewForm()
	}
	hooks, err := s.webhooksWithDeliveries(c, u.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	for _, h := range hooks {
		row := web.WebhookRow{ID: h.hook.ID, URL: h.hook.URL, Secret: h.hook.Secret, Created: web.FormatTime(h.hook.CreatedAt)}
		for _, d := range h.deliveries {
			dr := web.DeliveryRow{Kind: d.Kind, Status: d.Status, When: web.FormatTime(d.CreatedAt), Attempts: d.Attempts, Code: d.LastCode, Error: d.LastError}
			if d.Status == models.DeliveryPending {
				dr.Next = web.FormatTime(d.NextAt)
			}
			row.Deliveries = append(row.Deliveries, dr)
		}
		v.Webhooks = append(v.Webhooks, row)
	}
	// Listed: no longer new (the bell counts what was never shown).
	if err := s.store.MarkNotificationsRead(ctx, u.ID); err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, status, "Alerts", web.Alerts(s.page(c, "Alerts"), v))
}

type hookDeliveries struct {
	hook       models.Webhook
	deliveries []models.WebhookDelivery
}

func (s *Server) webhooksWithDeliveries(c *gin.Context, userID string) ([]hookDeliveries, error) {
	hooks, err := s.store.Webhooks(c.Request.Context(), userID)
	if err != nil {
		return nil, err
	}
	out := make([]hookDeliveries, len(hooks))
	for i, h := range hooks {
		ds, err := s.store.Deliveries(c.Request.Context(), h.ID, 20)
		if err != nil {
			return nil, err
		}
		out[i] = hookDeliveries{hook: h, deliveries: ds}
	}
	return out, nil
}

// alertsBalance: POST /alerts/balance (balance_below in HWY).
func (s *Server) alertsBalance(c *gin.Context) {
	f := web.NewForm()
	raw := strings.TrimSpace(c.PostForm("balance_below"))
	f.Set("balance_below", raw)
	below := highway.Amount(0)
	if raw != "" {
		var ok bool
		if below, ok = highway.ParseHWY(raw); !ok {
			f.Fail("balance_below", "Enter an amount of HWY with at most six decimals, e.g. 25, or 0 to turn the alert off.")
			s.renderAlerts(c, http.StatusUnprocessableEntity, f, nil)
			return
		}
	}
	if err := s.broker.SetBalanceAlert(c.Request.Context(), currentUser(c).ID, below); err != nil {
		s.formFail(c, err, f, "balance_below", func(status int) { s.renderAlerts(c, status, f, nil) })
		return
	}
	if below == 0 {
		s.setFlash(c, "success", "The low-balance alert is off.")
	} else {
		s.setFlash(c, "success", "You will be alerted when your wallet holds less than "+below.HWY()+" HWY.")
	}
	c.Redirect(http.StatusSeeOther, "/alerts#balance")
}

// alertsAddWebhook: POST /alerts/webhooks (url).
func (s *Server) alertsAddWebhook(c *gin.Context) {
	f := web.NewForm()
	f.Set("url", strings.TrimSpace(c.PostForm("url")))
	if _, err := s.broker.AddWebhook(c.Request.Context(), currentUser(c).ID, f.Value("url")); err != nil {
		s.formFail(c, err, f, "url", func(status int) { s.renderAlerts(c, status, nil, f) })
		return
	}
	s.setFlash(c, "success", "Webhook added. Its secret is below: check each delivery's signature with it.")
	c.Redirect(http.StatusSeeOther, "/alerts#webhooks")
}

// alertsTestWebhook: POST /alerts/webhooks/:id/test.
func (s *Server) alertsTestWebhook(c *gin.Context) {
	if _, err := s.broker.TestWebhook(c.Request.Context(), currentUser(c).ID, c.Param("id")); err != nil {
		s.fail(c, err)
		return
	}
	s.setFlash(c, "success", "A test delivery is on its way; its outcome shows in the log below.")
	c.Redirect(http.StatusSeeOther, "/alerts#webhooks")
}

// alertsDeleteWebhook: POST /alerts/webhooks/:id/delete.
func (s *Server) alertsDeleteWebhook(c *gin.Context) {
	if err := s.store.DeleteWebhook(c.Request.Context(), currentUser(c).ID, c.Param("id")); err != nil {
		s.fail(c, err)
		return
	}
	s.setFlash(c, "success", "Webhook deleted.")
	c.Redirect(http.StatusSeeOther, "/alerts#webhooks")
}

// formFail shows a refusal beside the form's field (or fails the page on
// a server fault).
func (s *Server) formFail(c *gin.Context, err error, f *web.Form, field string, render func(status int)) {
	code := highway.ErrorCode(err)
	if code == highway.EINTERNAL {
		s.fail(c, err)
		return
	}
	if fld := highway.ErrorField(err); fld != "" {
		field = fld
	}
	f.Fail(field, highway.ErrorMessage(err))
	render(statusOf(code))
}

// apiNotifications: GET /api/v1/notifications (newest first, with the
// unread count before this read; listing marks them read).
func (s *Server) apiNotifications(c *gin.Context) {
	ctx := c.Request.Context()
	u := currentUser(c)
	unread, err := s.store.UnreadNotifications(ctx, u.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	ns, err := s.store.Notifications(ctx, u.ID, alertsShown)
	if err != nil {
		s.fail(c, err)
		return
	}
	out := make([]gin.H, len(ns))
	for i, n := range ns {
		out[i] = gin.H{"id": n.ID, "kind": n.Kind, "text": n.Text, "link": n.Link, "created_at": n.CreatedAt.UTC().Format(time.RFC3339), "read": n.ReadAt != nil}
	}
	if err := s.store.MarkNotificationsRead(ctx, u.ID); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"notifications": out, "unread": unread})
}

// apiSetAlerts: PUT /api/v1/alerts {"balance_below": "uhwy"}.
func (s *Server) apiSetAlerts(c *gin.Context) {
	var b struct {
		BalanceBelow string `json:"balance_below"`
	}
	if err := bindJSON(c, &b); err != nil {
		s.fail(c, err)
		return
	}
	below, ok := highway.ParseUhwy(b.BalanceBelow)
	if !ok {
		s.fail(c, &highway.Error{Code: highway.EINVALID, Field: "balance_below", Message: `balance_below is a decimal string of uhwy, e.g. "25000000"; "0" turns the alert off.`})
		return
	}
	if err := s.broker.SetBalanceAlert(c.Request.Context(), currentUser(c).ID, below); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"balance_below": below.String()})
}

// apiWebhooks: GET /api/v1/webhooks, each with its latest deliveries.
func (s *Server) apiWebhooks(c *gin.Context) {
	hooks, err := s.webhooksWithDeliveries(c, currentUser(c).ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	out := make([]gin.H, len(hooks))
	for i, h := range hooks {
		ds := make([]gin.H, len(h.deliveries))
		for j, d := range h.deliveries {
			ds[j] = deliveryJSON(&d)
		}
		j := webhookJSON(&h.hook)
		j["deliveries"] = ds
		out[i] = j
	}
	c.JSON(http.StatusOK, gin.H{"webhooks": out})
}

// apiAddWebhook: POST /api/v1/webhooks {"url"} → 201 with its secret.
func (s *Server) apiAddWebhook(c *gin.Context) {
	var b struct {
		URL string `json:"url"`
	}
	if err := bindJSON(c, &b); err != nil {
		s.fail(c, err)
		return
	}
	h, err := s.broker.AddWebhook(c.Request.Context(), currentUser(c).ID, b.URL)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"webhook": webhookJSON(h)})
}

// apiDeleteWebhook: DELETE /api/v1/webhooks/:id.
func (s *Server) apiDeleteWebhook(c *gin.Context) {
	if err := s.store.DeleteWebhook(c.Request.Context(), currentUser(c).ID, c.Param("id")); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"deleted": c.Param("id")})
}

// apiTestWebhook: POST /api/v1/webhooks/:id/test → 202 with the delivery.
func (s *Server) apiTestWebhook(c *gin.Context) {
	d, err := s.broker.TestWebhook(c.Request.Context(), currentUser(c).ID, c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"delivery": deliveryJSON(d)})
}

func webhookJSON(h *models.Webhook) gin.H {
	return gin.H{"id": h.ID, "url": h.URL, "secret": h.Secret, "created_at": h.CreatedAt.UTC().Format(time.RFC3339)}
}

func deliveryJSON(d *models.WebhookDelivery) gin.H {
	return gin.H{"id": d.ID, "kind": d.Kind, "status": d.Status, "attempts": d.Attempts, "last_code": d.LastCode,
		"last_error": d.LastError, "created_at": d.CreatedAt.UTC().Format(time.RFC3339), "next_at": d.NextAt.UTC().Format(time.RFC3339),
		"body": d.Body}
}
