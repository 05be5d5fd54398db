package handlers

import (
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
)

// The managed wallet through the API: balance, history, faucet, withdraw.

func (s *Server) apiWallet(c *gin.Context) {
	w, err := s.broker.Wallet(c.Request.Context(), currentUser(c).ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"address": w.Address, "balances": []gin.H{{"denom": w.Denom, "amount": w.Balance.String()}}})
}

func (s *Server) apiWalletHistory(c *gin.Context) {
	limit, err := listLimit(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	evs, err := s.broker.WalletHistory(c.Request.Context(), currentUser(c).ID, limit)
	if err != nil {
		s.fail(c, err)
		return
	}
	out := make([]gin.H, len(evs))
	for i, e := range evs {
		h := gin.H{"height": e.Height, "tx_hash": e.TxHash, "kind": e.Kind, "direction": "out", "counterparty": e.Counterparty,
			"amount": e.Amount, "time": nil}
		if e.Incoming {
			h["direction"] = "in"
		}
		if e.At != nil {
			h["time"] = e.At.UTC().Format(time.RFC3339)
		}
		out[i] = h
	}
	c.JSON(http.StatusOK, gin.H{"entries": out})
}

func (s *Server) apiFaucet(c *gin.Context) {
	if hash, ok := s.sendFaucet(c); ok {
		c.JSON(http.StatusOK, gin.H{"tx_hash": hash})
	}
}

// sendFaucet sends the user dev-faucet funds; without a faucet, or when
// sending failed, it has answered and reports false.
func (s *Server) sendFaucet(c *gin.Context) (string, bool) {
	if !s.faucetOn() {
		s.fail(c, highway.Errorf(highway.ENOTFOUND, "There is no faucet on this marketplace."))
		return "", false
	}
	// One grant per account per hour (the broker also caps the balance it
	// tops up): signing up is free, so the faucet must not be a tap.
	if ok, retry := s.faucetLimit.Allow(currentUser(c).ID, s.now()); !ok {
		s.fail(c, &highway.Error{Code: highway.ERATELIMITED, RetryAfter: int(retry.Round(time.Second) / time.Second),
			Message: fmt.Sprintf("The faucet sends once an hour per account: try again in %s.", retry.Round(time.Minute))})
		return "", false
	}
	hash, err := s.broker.Faucet(c.Request.Context(), currentUser(c).ID)
	if err != nil {
		s.fail(c, err)
		return "", false
	}
	return hash, true
}

func (s *Server) apiWithdraw(c *gin.Context) {
	var b struct {
		To     string `json:"to"`
		Amount string `json:"amount"`
	}
	if err := bindJSON(c, &b); err != nil {
		s.fail(c, err)
		return
	}
	amt, ok := highway.ParseUhwy(b.Amount)
	if !ok {
		s.fail(c, &highway.Error{Code: highway.EINVALID, Field: "amount", Message: "Amount must be an integer number of micro-units, as a string."})
		return
	}
	hash, err := s.broker.Withdraw(c.Request.Context(), currentUser(c).ID, b.To, amt)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"tx_hash": hash})
}

// faucetOn: the dev faucet exists only in dev mode with a faucet key; the
// page and the API both answer 404 otherwise.
func (s *Server) faucetOn() bool { return s.devMode && s.broker.HasFaucet() }
