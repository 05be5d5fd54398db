package handlers

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/broker"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/protocol"
	"github.com/highway-compute/highway/web"
)

// The order pages: the form (with what the order may escrow against the
// wallet) and one order followed live.

// newIdempotencyKey tags one rendering of the order form: a double submit
// places one order, while a form re-rendered after an error gets a new key
// (the failed attempt may be stored under the old one).
func newIdempotencyKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "form-" + base64.RawURLEncoding.EncodeToString(b)
}

// offerByID finds a listed offer (nil when it is gone or full).
func (s *Server) offerByID(id string) *highway.Offer {
	if id == "" {
		return nil
	}
	if o, ok := s.broker.Offer(id); ok {
		return &o
	}
	return nil
}

func (s *Server) orderNew(c *gin.Context) { s.orderDraft(c, c.Query) }

// orderEstimate is the form sent back with its escrow estimate brought up
// to date. It is a POST, unlike orderNew, so a registry password typed in
// the form never lands in a URL (history, proxies' logs).
func (s *Server) orderEstimate(c *gin.Context) { s.orderDraft(c, c.PostForm) }

// orderDraft renders the order form from what get reads, with its
// defaults and the linked offer; a registry password is never echoed.
func (s *Server) orderDraft(c *gin.Context, get func(string) string) {
	f := &web.OrderForm{}
	f.Bind(get)
	f.Set("registry_password", "")
	f.Defaults()
	if id := f.Value("offer_id"); id != "" {
		if o := s.offerByID(id); o != nil {
			f.Default("model", o.Model)
			f.Default("region", o.Region)
		} else {
			f.Fail("", "That offer is no longer listed (it may be fully rented). Choose another on the market, or place a fill-or-kill order.")
		}
	}
	s.renderOrderForm(c, http.StatusOK, f)
}

func (s *Server) renderOrderForm(c *gin.Context, status int, f *web.OrderForm) {
	f.Set("idempotency_key", newIdempotencyKey())
	models, regions := s.broker.Catalog()
	v := web.OrderFormView{Form: f, Models: models, Regions: regions}
	o := s.offerByID(f.Value("offer_id"))
	if o != nil {
		row := offerRow(*o, f.Value("region"))
		v.Offer = &row
	}
	// The estimate: the max price when given, else (rent now) the offer's ask.
	hwy, count, hours := f.Estimate()
	price := int64(hwy)
	if price <= 0 && o != nil {
		price = int64(o.PricePerGPUHour)
	}
	e := &v.Escrow
	e.ProofWork, e.Epoch, _ = s.broker.ProvingWindow(c.Request.Context())
	var balance highway.Total
	if e.Unavailable, balance = s.walletBalance(c); e.Unavailable == "" {
		e.Balance = balance.String()
	}
	if price > 0 && count > 0 && hours > 0 {
		per, epochs, total, ok := s.broker.EscrowFor(price, count, hours)
		e.Known = ok
		e.Price, e.Count, e.Hours, e.PerEpoch, e.Epochs, e.Total = price, count, hours, per, epochs, total.String()
		e.Enough = ok && e.Unavailable == "" && balance.Cmp(total) >= 0
	}
	s.render(c, status, "Rent GPUs", web.NewOrderPage(s.page(c, "Rent GPUs"), v))
}

// walletBalance reads the viewer's balance; why it cannot, in plain words
// (no chain, chain unreachable) comes back instead of failing the page.
func (s *Server) walletBalance(c *gin.Context) (unavailable string, balance highway.Total) {
	w, err := s.broker.Wallet(c.Request.Context(), currentUser(c).ID)
	if err == nil {
		return "", w.Balance
	}
	if code := highway.ErrorCode(err); code != highway.EINTERNAL {
		return highway.ErrorMessage(err), highway.Total{}
	}
	s.log.Warn("wallet balance", "request_id", c.GetString(keyRequestID), "err", err)
	return "Your balance cannot be read right now; the chain may be unreachable. Try again in a moment.", highway.Total{}
}

// orderFormFields are the fields the order form shows; errors on others
// (min_vram_gib, offer_id) go over the form.
var orderFormFields = []string{"type", "model", "count", "max_price_per_gpu_hour", "region", "max_rtt_ms", "hours", "expires_at", "command", "image",
	"registry_username", "registry_password"}

func (s *Server) orderCreate(c *gin.Context) {
	f := &web.OrderForm{}
	f.Bind(c.PostForm)
	err := f.Validate()
	var o *models.Order
	if err == nil {
		// The API's checks next, then the broker's: a page and a script
		// are held to the same rules.
		var r broker.OrderRequest
		if r, err = orderRequest(currentUser(c).ID, orderBodyOf(f)); err == nil {
			r.IdempotencyKey = f.IdempotencyKey
			o, err = s.broker.PlaceOrder(c.Request.Context(), r)
		}
	}
	if err != nil {
		s.formError(c, &f.Form, orderFormError(err), func(*web.Page) {
			fieldOrForm(&f.Form, orderFormFields)
			s.renderOrderForm(c, statusOf(highway.ErrorCode(err)), f)
		})
		return
	}
	c.Redirect(http.StatusSeeOther, "/orders/"+o.ID)
}

// orderBodyOf is a validated order form as the API's order body (money in
// uhwy, times in RFC 3339), so orderRequest checks both alike.
func orderBodyOf(f *web.OrderForm) orderBody {
	b := orderBody{Type: f.Type, OfferID: f.OfferID, Model: f.Model, Count: f.Count, Region: f.Region, MaxRTTms: f.MaxRTTms,
		Hours: f.Hours, Workload: protocol.Workload{Command: f.Command, Image: f.Image}, Interruptible: f.Interruptible}
	if f.RegistryUser != "" || f.RegistryPassword != "" {
		b.Workload.RegistryAuth = &protocol.RegistryAuth{Username: f.RegistryUser, Password: f.RegistryPassword}
	}
	if f.MaxPrice > 0 {
		b.MaxPrice = f.MaxPrice.String()
	}
	if !f.ExpiresAt.IsZero() {
		b.ExpiresAt = f.ExpiresAt.Format(time.RFC3339)
	}
	return b
}

// orderFormError puts the workload's errors on its boxes (the image's on
// the image, the rest on the command) and words the money and capacity
// answers for people.
func orderFormError(err error) error {
	var he *highway.Error
	if !errors.As(err, &he) {
		return err
	}
	cp := *he
	switch {
	case cp.Field == "workload.image":
		cp.Field = "image"
	case cp.Field == "workload.registry_auth.password":
		cp.Field = "registry_password"
	case strings.HasPrefix(cp.Field, "workload.registry_auth"):
		cp.Field = "registry_username"
	case cp.Field == "workload" || strings.HasPrefix(cp.Field, "workload."):
		cp.Field = "command"
		if strings.Contains(cp.Message, "exactly one of command and image") {
			cp.Message = "Give a command to run, or a container image — one of the two."
		}
	}
	switch cp.Code {
	case highway.EINSUFFICIENTFUNDS:
		cp.Message = "Not enough funds: " + cp.Message
	case highway.ENOCAPACITY:
		cp.Message += " Try a higher price, fewer GPUs, a looser latency limit, or a good-til-cancelled order that waits for capacity."
	}
	return &cp
}

func (s *Server) orderPage(c *gin.Context) {
	o, ok := s.ownOrder(c)
	if !ok {
		return
	}
	v := web.OrderView{ID: o.ID, Type: o.Type, Status: o.Status, Failure: o.Failure, Model: o.Model, Count: o.GPUs,
		MaxPrice: o.MaxPrice, Price: o.Price, Region: o.Region, MaxRTTms: o.MaxRTTms, Hours: o.Hours, LeaseID: o.LeaseID,
		Created: web.FormatTime(o.CreatedAt), FragmentURL: "/orders/" + o.ID + "?fragment=1"}
	if o.ExpiresAt != nil {
		v.Expires = web.FormatTime(*o.ExpiresAt)
	}
	if wantsFragment(c) {
		s.renderFragment(c, http.StatusOK, web.OrderStatus(v))
		return
	}
	s.render(c, http.StatusOK, "Order", web.OrderPage(s.page(c, "Order"), v))
}
