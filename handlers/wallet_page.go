package handlers

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/web"
)

// The wallet page: address, balance, history, faucet (dev) and withdraw.

// walletHistory is how many of the latest transfers the wallet page lists.
const walletHistory = 50

func (s *Server) walletPage(c *gin.Context) {
	s.renderWallet(c, http.StatusOK, &web.WithdrawForm{})
}

func (s *Server) renderWallet(c *gin.Context, status int, f *web.WithdrawForm) {
	v := web.WalletView{Withdraw: f, Faucet: s.faucetOn()}
	w, err := s.broker.Wallet(c.Request.Context(), currentUser(c).ID)
	switch code := highway.ErrorCode(err); {
	case err == nil:
		v.Address, v.Balance, v.Denom = w.Address, w.Balance.String(), w.Denom
		evs, err := s.broker.WalletHistory(c.Request.Context(), currentUser(c).ID, walletHistory)
		if err != nil {
			s.fail(c, err)
			return
		}
		for _, e := range evs {
			row := web.WalletEntry{Kind: e.Kind, Incoming: e.Incoming, Amount: e.Amount, Counterparty: e.Counterparty, TxHash: e.TxHash,
				Height: e.Height}
			if e.At != nil {
				row.At = web.FormatTime(*e.At)
			}
			v.History = append(v.History, row)
		}
	case code == highway.EINTERNAL:
		s.log.Warn("wallet", "request_id", c.GetString(keyRequestID), "err", err)
		v.Unavailable = "Your wallet cannot be read right now; the chain may be unreachable. Try again in a moment."
	default:
		v.Unavailable = highway.ErrorMessage(err)
	}
	s.render(c, status, "Wallet", web.WalletPage(s.page(c, "Wallet"), v))
}

func (s *Server) walletFaucet(c *gin.Context) {
	hash, ok := s.sendFaucet(c)
	if !ok {
		return
	}
	s.setFlash(c, "success", "Test funds sent (transaction "+hash+").")
	c.Redirect(http.StatusSeeOther, "/wallet")
}

func (s *Server) walletWithdraw(c *gin.Context) {
	f := &web.WithdrawForm{}
	f.Bind(c.PostForm)
	var hash string
	err := f.Validate()
	if err == nil {
		hash, err = s.broker.Withdraw(c.Request.Context(), currentUser(c).ID, f.To, f.Amount)
	}
	if err != nil {
		s.formError(c, &f.Form, err, func(*web.Page) {
			fieldOrForm(&f.Form, []string{"to", "amount"})
			s.renderWallet(c, statusOf(highway.ErrorCode(err)), f)
		})
		return
	}
	s.setFlash(c, "success", "Sent "+f.Amount.HWY()+" HWY (transaction "+hash+").")
	c.Redirect(http.StatusSeeOther, "/wallet")
}
