package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"cosmossdk.io/math"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/models"
)

// Alerts: what happened to a user (a low balance, a lease about to end, a
// missed epoch, a dispute, a machine gone offline or failing
// verification), kept as notifications under the page's bell and posted
// to the user's webhooks, signed, retried with backoff for a day.

// Alert kinds, as webhooks name them (Highway-Event) and the API lists them.
const (
	AlertBalanceLow         = "balance_low"
	AlertLeaseEnding        = "lease_ending"
	AlertEpochMissed        = "epoch_missed"
	AlertDisputeOpened      = "dispute_opened"
	AlertDisputeDecided     = "dispute_decided"
	AlertMachineOffline     = "machine_offline"
	AlertVerificationFailed = "verification_failed"
	AlertPreempted          = "preempted"
	AlertTest               = "test"
)

// alert records a notification for a user and queues its webhook
// deliveries. dedupe names the event: the same event noticed twice (a
// replayed block, a loop's next pass) alerts once. Alerts are best
// effort: a failure is logged, never the caller's error.
func (b *Broker) alert(ctx context.Context, userID, kind, dedupe, text, link string) {
	n := &models.Notification{UserID: userID, Kind: kind, Dedupe: kind + ":" + dedupe, Text: text, Link: link}
	added, err := b.store.AddNotification(context.WithoutCancel(ctx), n, alertBody)
	if err != nil {
		b.log.Error("record alert", "user", userID, "kind", kind, "err", err)
		return
	}
	if added {
		b.log.Info("alert", "user", userID, "kind", kind, "text", text)
	}
}

// alertBody is a notification as webhooks receive it.
func alertBody(n *models.Notification) string {
	b, _ := json.Marshal(map[string]string{"id": n.ID, "kind": n.Kind, "text": n.Text, "link": n.Link,
		"created_at": n.CreatedAt.UTC().Format(time.RFC3339)})
	return string(b)
}

// SetBalanceAlert sets the user's low-balance threshold (0: off).
func (b *Broker) SetBalanceAlert(ctx context.Context, userID string, below highway.Amount) error {
	if below < 0 {
		return &highway.Error{Code: highway.EINVALID, Field: "balance_below", Message: "The threshold is an amount of HWY, 0 (off) or more."}
	}
	return b.store.SetBalanceAlert(ctx, userID, int64(below))
}

// alertLoop delivers webhooks and looks for the alerts no event carries:
// leases about to end, balances below their threshold.
func (b *Broker) alertLoop(ctx context.Context) {
	// Apart: a pass of slow webhooks must not hold up the scans, nor the
	// reverse.
	done := make(chan struct{})
	go func() {
		defer close(done)
		scan := time.NewTicker(b.cfg.AlertEvery)
		defer scan.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-scan.C:
				b.scanAlerts(ctx)
			}
		}
	}()
	client := b.webhookClient()
	deliver := time.NewTicker(b.cfg.WebhookEvery)
	defer deliver.Stop()
	for {
		select {
		case <-ctx.Done():
			<-done
			return
		case <-deliver.C:
			b.deliverDue(ctx, client)
		}
	}
}

// scanAlerts raises the lease-ending and low-balance alerts.
func (b *Broker) scanAlerts(ctx context.Context) {
	now := b.now()
	ending, err := b.store.LeasesEndingBefore(ctx, now.Add(time.Hour), 500)
	if err != nil {
		b.log.Error("list leases ending", "err", err)
	}
	for _, l := range ending {
		if l.AutoExtendHours > 0 && !strings.HasPrefix(l.AutoExtendNote, "Not extended") {
			continue // it will be extended (a failed attempt does alert)
		}
		mins := int64(l.EndsAt.Sub(now).Round(time.Minute) / time.Minute)
		b.alert(ctx, l.BuyerID, AlertLeaseEnding, l.ID+":"+strconv.FormatInt(l.EndsAt.Unix(), 10),
			fmt.Sprintf("Lease %s (%s × %d) ends in %d minutes, at %s. Extend it from its page to keep it running.", l.ID, l.Model, l.GPUs,
				max(mins, 0), l.EndsAt.UTC().Format(noteTime)), "/leases/"+l.ID)
	}
	if b.cfg.Chain == nil {
		return
	}
	for after := ""; ; {
		users, err := b.store.BalanceAlerts(ctx, after, 500)
		if err != nil {
			b.log.Error("list balance alerts", "err", err)
			return
		}
		if len(users) == 0 {
			return
		}
		after = users[len(users)-1].ID
		b.checkBalances(ctx, now, users)
	}
}

// checkBalances alerts each user whose balance went below the threshold.
func (b *Broker) checkBalances(ctx context.Context, now time.Time, users []models.User) {
	for _, u := range users {
		bal, err := b.walletBalance(ctx, u.ID)
		if highway.ErrorCode(err) == highway.ENOTFOUND {
			continue // no wallet yet: nothing to watch
		}
		if err != nil {
			b.log.Warn("read balance for its alert", "user", u.ID, "err", err)
			continue
		}
		low := bal.LT(math.NewInt(u.AlertBalanceBelow))
		if low == u.AlertBalanceLow {
			continue
		}
		if err := b.store.SetBalanceLow(ctx, u.ID, low); err != nil {
			b.log.Error("record balance alert", "user", u.ID, "err", err)
			continue
		}
		if low {
			b.alert(ctx, u.ID, AlertBalanceLow, now.UTC().Format(time.RFC3339Nano),
				"Your wallet holds "+highway.FormatHWY(bal.String())+" HWY, below your alert at "+highway.Amount(u.AlertBalanceBelow).HWY()+
					" HWY. Leases and auto-extensions draw on it.", "/wallet")
		}
	}
}
