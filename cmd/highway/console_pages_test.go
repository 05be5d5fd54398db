package main

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
)

// The admin disputes pages and the provider console's prices, machines'
// listing state and leases, against a marketplace without a chain: a
// dispute is seeded through the store, and resolving it must say plainly
// that no arbiter key is configured.

// adminBrowser creates the admin account and logs it in.
func adminBrowser(t *testing.T, m *Main) *browser {
	t.Helper()
	if _, err := accounts.New(m.Store, accounts.Config{Hash: cheapHash}).EnsureAdmin(context.Background(), "root@example.com", "admin password 1"); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, m)
	wantStatus(t, b.login("root@example.com", "admin password 1"), http.StatusSeeOther)
	return b
}

func userID(t *testing.T, m *Main, email string) string {
	t.Helper()
	u, err := m.Store.UserByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

func TestAdminDisputesAccess(t *testing.T) {
	m := startServer(t, dbtest.SQLiteDSN(t), accounts.Config{})
	admin := adminBrowser(t, m)
	p := admin.get("/admin/disputes")
	wantStatus(t, p, http.StatusOK)
	if p.doc.Find(`[data-testid="disputes-none"]`).Length() != 1 {
		t.Fatalf("empty queue does not say so:\n%.2000s", p.body)
	}

	buyer := newBrowser(t, m)
	wantStatus(t, buyer.signup("bob@example.com", "a long passphrase", "buyer"), http.StatusSeeOther)
	provider := newBrowser(t, m)
	wantStatus(t, provider.signup("pat@example.com", "a long passphrase", "provider"), http.StatusSeeOther)
	for _, who := range []*browser{buyer, provider} {
		for _, path := range []string{"/admin/disputes", "/admin/disputes/nope", "/admin/users"} {
			wantStatus(t, who.get(path), http.StatusForbidden)
		}
		// Actions too, not only pages.
		pid := userID(t, m, "pat@example.com")
		wantStatus(t, who.submit("/account", "/admin/providers/"+pid+"/suspend", url.Values{"reason": {"x"}}), http.StatusForbidden)
		wantStatus(t, who.submit("/account", "/admin/disputes/nope/resolve", url.Values{"buyer_bps": {"0"}}), http.StatusForbidden)
	}
	wantStatus(t, admin.get("/admin/disputes/nope"), http.StatusNotFound)
}

func TestProviderSetsPrice(t *testing.T) {
	m := startServer(t, dbtest.SQLiteDSN(t), accounts.Config{})
	b := newBrowser(t, m)
	wantStatus(t, b.signup("pat@example.com", "a long passphrase", "provider"), http.StatusSeeOther)
	p := b.get("/provider")
	wantStatus(t, p, http.StatusOK)
	model, _ := p.doc.Find(`select[name="model"] option`).First().Attr("value")
	if model == "" {
		t.Fatalf("price form has no model to choose:\n%.2000s", p.body)
	}
	if p.doc.Find(`[data-testid="leases-none"]`).Length() != 1 {
		t.Error("console does not say there are no leases")
	}

	for _, bad := range []string{"abc", "-1", "1.2345678", "", "0"} {
		p = b.submit("/provider", "/provider/prices", url.Values{"model": {model}, "price_per_gpu_hour": {bad}})
		wantStatus(t, p, http.StatusUnprocessableEntity)
		if text(p, `[data-testid="error-price_per_gpu_hour"]`) == "" {
			t.Errorf("price %q: no error beside the price:\n%.1500s", bad, p.body)
		}
		if got, _ := p.doc.Find(`input[name="price_per_gpu_hour"]`).Attr("value"); got != bad {
			t.Errorf("price %q not kept: %q", bad, got)
		}
	}
	p = b.submit("/provider", "/provider/prices", url.Values{"model": {"NOPE"}, "price_per_gpu_hour": {"1"}})
	wantStatus(t, p, http.StatusUnprocessableEntity)
	if !strings.Contains(text(p, `[data-testid="error-model"]`), "Unknown GPU model") {
		t.Errorf("unknown model error = %q", text(p, `[data-testid="error-model"]`))
	}

	p = b.submit("/provider", "/provider/prices", url.Values{"model": {model}, "price_per_gpu_hour": {"2.49"}})
	wantStatus(t, p, http.StatusSeeOther)
	p = b.get("/provider")
	if got := text(p, `[data-testid="flash"]`); !strings.Contains(got, "2.490000 HWY") {
		t.Errorf("flash = %q", got)
	}
	if got := text(p, `[data-testid="price-`+model+`"] [data-testid="price-value"]`); !strings.Contains(got, "2.490000 HWY") || !strings.Contains(got, "2490000 uhwy") {
		t.Fatalf("price shown = %q", got)
	}
	// The broker (which the API reads) holds the same ask.
	if got := m.Market.Prices(userID(t, m, "pat@example.com"))[model]; got != 2_490_000 {
		t.Fatalf("broker price = %d", got)
	}
}

// seedDispute stores a disputed lease between two users with a machine,
// two epochs and some log lines, as the broker and indexer would have.
func seedDispute(t *testing.T, m *Main, buyerID, providerID string) *models.Dispute {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	beat := now.Add(-3 * time.Second)
	verified := now.Add(-time.Hour)
	mach := &models.Machine{ID: models.NewID(), ProviderID: providerID, Hostname: "gpu-box-1", LastHeartbeatAt: &beat,
		VerifiedAt: &verified, Region: "eu-west", CreatedAt: now, UpdatedAt: now}
	if err := m.Store.DB.WithContext(ctx).Create(mach).Error; err != nil {
		t.Fatal(err)
	}
	l := &models.Lease{ID: models.NewID(), ChainLeaseID: 42, OrderID: models.NewID(), BuyerID: buyerID, ProviderID: providerID,
		MachineID: mach.ID, Model: "H100", GPUs: 2, PricePerHour: 2_490_000, PricePerEpoch: "830000", EpochsTotal: 12,
		Status: models.LeaseDisputed, Remaining: "0", Pending: "0", Frozen: "8300000", Paid: "830000", Refunded: "830000",
		Fees: "0", EndsAt: now.Add(time.Hour)}
	if err := m.Store.CreateLease(ctx, l); err != nil {
		t.Fatal(err)
	}
	clearedAt, missedAt := now.Add(-30*time.Minute), now.Add(-10*time.Minute)
	for _, e := range []models.LeaseEpoch{
		{LeaseID: l.ID, N: 1, Status: "cleared", ValidNonces: 64, Required: 64, Amount: "830000", TxHash: "AAA111", Height: 10, SettledAt: &clearedAt},
		{LeaseID: l.ID, N: 2, Status: "missed", ValidNonces: 3, Required: 64, Amount: "830000", TxHash: "BBB222", Height: 20, SettledAt: &missedAt},
	} {
		if err := m.Store.UpsertEpoch(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	var lines []models.LeaseLog
	for i := int64(1); i <= 250; i++ {
		lines = append(lines, models.LeaseLog{LeaseID: l.ID, Seq: i, At: now, Stream: "stdout", Text: "step " + strconv.FormatInt(i, 10)})
	}
	if err := m.Store.AppendLogs(ctx, lines); err != nil {
		t.Fatal(err)
	}
	d := &models.Dispute{ID: models.NewID(), LeaseID: l.ID, BuyerID: buyerID, ProviderID: providerID, Status: "open",
		BuyerStatement: "The job never started; only three nonces in epoch 2.", OpenTx: "OPENTX"}
	if err := m.Store.CreateDispute(ctx, d); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestAdminDisputePage(t *testing.T) {
	eachServer(t, accounts.Config{}, func(t *testing.T, m *Main) {
		admin := adminBrowser(t, m)
		buyer := newBrowser(t, m)
		wantStatus(t, buyer.signup("bob@example.com", "a long passphrase", "buyer"), http.StatusSeeOther)
		provider := newBrowser(t, m)
		wantStatus(t, provider.signup("pat@example.com", "a long passphrase", "provider"), http.StatusSeeOther)
		pid := userID(t, m, "pat@example.com")
		d := seedDispute(t, m, userID(t, m, "bob@example.com"), pid)

		// The queue lists it, with the frozen escrow and a link.
		p := admin.get("/admin/disputes")
		wantStatus(t, p, http.StatusOK)
		row := p.doc.Find(`[data-testid="disputes-open"] [data-testid="dispute-` + d.ID + `"]`)
		if row.Length() != 1 {
			t.Fatalf("queue does not list the dispute:\n%.2000s", p.body)
		}
		if !strings.Contains(row.Text(), "8.300000 HWY") || !strings.Contains(row.Text(), "bob@example.com") {
			t.Errorf("queue row = %q", row.Text())
		}
		if href, _ := row.Find(`[data-testid="dispute-link"]`).Attr("href"); href != "/admin/disputes/"+d.ID {
			t.Errorf("dispute link = %q", href)
		}

		// The evidence.
		p = admin.get("/admin/disputes/" + d.ID)
		wantStatus(t, p, http.StatusOK)
		checks := map[string]string{
			`[data-testid="dispute-status"]`:        "open",
			`[data-testid="dispute-chain-lease"]`:   "#42",
			`[data-testid="dispute-model"]`:         "H100 × 2",
			`[data-testid="dispute-epochs-total"]`:  "12",
			`[data-testid="dispute-frozen"]`:        "8.300000 HWY",
			`[data-testid="epoch-counts"]`:          "1 cleared, 1 missed",
			`[data-testid="dispute-epochs"]`:        "BBB222",
			`[data-testid="machine-online"]`:        "online",
			`[data-testid="machine-verified"]`:      "verified",
			`[data-testid="statement-buyer"]`:       "never started",
			`[data-testid="statement-provider"]`:    "not given a statement",
			`[data-testid="dispute-provider"]`:      "pat@example.com",
			`[data-testid="dispute-logs"]`:          "step 250",
			`[data-testid="resolve-form"] textarea`: "",
		}
		for sel, want := range checks {
			if p.doc.Find(sel).Length() == 0 || !strings.Contains(text(p, sel), want) {
				t.Errorf("%s = %q, want it to contain %q", sel, text(p, sel), want)
			}
		}
		if n := p.doc.Find(`[data-testid="dispute-logs"] span`).Length(); n != 200 {
			t.Errorf("log lines shown = %d, want the last 200", n)
		}
		if strings.Contains(text(p, `[data-testid="dispute-logs"]`), "step 50\n") {
			t.Error("an old log line is shown")
		}

		// Bad input stays beside the fields, with what was typed.
		for _, tc := range []struct{ bps, note, field string }{
			{"abc", "", "buyer_bps"},
			{"10001", "", "buyer_bps"},
			{"-1", "", "buyer_bps"},
			{"5000", strings.Repeat("n", 257), "note"},
		} {
			p = admin.submit("/admin/disputes/"+d.ID, "/admin/disputes/"+d.ID+"/resolve", url.Values{"buyer_bps": {tc.bps}, "note": {tc.note}})
			wantStatus(t, p, http.StatusUnprocessableEntity)
			if text(p, `[data-testid="error-`+tc.field+`"]`) == "" {
				t.Errorf("bps %q note %d chars: no error beside %s", tc.bps, len(tc.note), tc.field)
			}
			if got, _ := p.doc.Find(`input[name="buyer_bps"]`).Attr("value"); got != tc.bps {
				t.Errorf("typed bps not kept: %q", got)
			}
		}
		// Without a chain there is no arbiter: a clear message, nothing changes.
		p = admin.submit("/admin/disputes/"+d.ID, "/admin/disputes/"+d.ID+"/resolve", url.Values{"buyer_bps": {"7500"}, "note": {"refund most"}})
		wantStatus(t, p, http.StatusConflict)
		if got := text(p, `[data-testid="form-error"]`); !strings.Contains(got, "No arbiter key is configured") {
			t.Fatalf("resolve without arbiter: form error = %q", got)
		}
		if got, _ := m.Store.DisputeByID(context.Background(), d.ID); got.Status != "open" {
			t.Fatalf("dispute status after failed resolve = %q", got.Status)
		}

		// Suspend from the dispute page: the reason is required, then
		// stored where the provider sees it.
		p = admin.submit("/admin/disputes/"+d.ID, "/admin/providers/"+pid+"/suspend", url.Values{"dispute_id": {d.ID}, "reason": {"  "}})
		wantStatus(t, p, http.StatusUnprocessableEntity)
		if text(p, `[data-testid="error-reason"]`) == "" {
			t.Error("empty reason: no error beside the field")
		}
		p = admin.submit("/admin/disputes/"+d.ID, "/admin/providers/"+pid+"/suspend", url.Values{"dispute_id": {d.ID}, "reason": {"Missed proofs under dispute"}})
		wantStatus(t, p, http.StatusSeeOther)
		if loc := p.header.Get("Location"); loc != "/admin/disputes/"+d.ID {
			t.Fatalf("suspend redirects to %q", loc)
		}
		p = admin.get("/admin/disputes/" + d.ID)
		if got := text(p, `[data-testid="suspend-reason"]`); got != "Missed proofs under dispute" {
			t.Errorf("dispute page suspend reason = %q", got)
		}
		// The admin overview counts the open dispute and lists the
		// suspended machine with its reason.
		ov := admin.get("/admin")
		wantStatus(t, ov, http.StatusOK)
		if got := text(ov, `[data-testid="admin-open-disputes"]`); got != "1" {
			t.Errorf("overview open disputes = %q", got)
		}
		if row := ov.doc.Find(`[data-testid="attention-row"]`); row.Length() != 1 || !strings.Contains(row.Text(), "Missed proofs under dispute") ||
			text(ov, `[data-testid="attention-problem"]`) != "suspended" {
			t.Errorf("overview attention = %q", row.Text())
		}
		pc := provider.get("/provider")
		wantStatus(t, pc, http.StatusOK)
		if got := text(pc, `[data-testid="machine-suspend-reason"]`); got != "Missed proofs under dispute" {
			t.Errorf("console suspend reason = %q:\n%.3000s", got, pc.body)
		}
		// The provider's console lists the lease with its epochs.
		lrow := pc.doc.Find(`[data-testid="provider-leases"] tbody tr`)
		if lrow.Length() != 1 || !strings.Contains(lrow.Find(`[data-testid="lease-epochs"]`).Text(), "1 / 1 / 12") {
			t.Errorf("console lease row = %q", lrow.Text())
		}
		if href, _ := lrow.Find("a").Attr("href"); !strings.HasPrefix(href, "/leases/") {
			t.Errorf("lease link = %q", href)
		}
		wantStatus(t, provider.get(func() string { h, _ := lrow.Find("a").Attr("href"); return h }()), http.StatusOK)
		// Earnings and proof history: the cleared epoch's release, both
		// epochs newest first, and the two charts.
		if got := text(pc, `[data-testid="earned-24h"]`); !strings.Contains(got, "0.830000") {
			t.Errorf("earned in 24 h = %q", got)
		}
		if got := pc.doc.Find(`[data-testid="proof-status"]`).Map(func(_ int, s *goquery.Selection) string { return s.Text() }); strings.Join(got, ",") != "missed,cleared" {
			t.Errorf("proof history = %v, want missed then cleared", got)
		}
		if pc.doc.Find(`[data-testid="chart-earnings"] svg path.series`).Length() != 1 || pc.doc.Find(`[data-testid="chart-proofs"] svg path.series`).Length() != 2 {
			t.Errorf("earnings and proof charts missing:\n%.2000s", pc.body)
		}

		p = admin.submit("/admin/disputes/"+d.ID, "/admin/providers/"+pid+"/reinstate", url.Values{"dispute_id": {d.ID}})
		wantStatus(t, p, http.StatusSeeOther)
		ms, err := m.Store.ProviderMachines(context.Background(), pid)
		if err != nil || len(ms) != 1 || ms[0].SuspendedAt != nil || ms[0].SuspendReason != "" {
			t.Fatalf("machine after reinstate: %+v, %v", ms, err)
		}

		// A resolved dispute shows its outcome instead of the form, and
		// moves to the resolved list.
		at := time.Now().UTC()
		if err := m.Store.UpdateDispute(context.Background(), d.ID, map[string]any{"status": "resolved", "buyer_bps": 7500,
			"resolution": "refund most", "resolve_tx": "RESOLVETX", "resolved_at": &at}); err != nil {
			t.Fatal(err)
		}
		p = admin.get("/admin/disputes/" + d.ID)
		if p.doc.Find(`[data-testid="resolve-form"]`).Length() != 0 {
			t.Error("resolved dispute still shows the form")
		}
		if got := text(p, `[data-testid="outcome-buyer"]`); got != "75.00 %" {
			t.Errorf("outcome buyer share = %q", got)
		}
		if got := text(p, `[data-testid="outcome-tx"]`); got != "RESOLVETX" {
			t.Errorf("outcome tx = %q", got)
		}
		p = admin.get("/admin/disputes")
		if p.doc.Find(`[data-testid="disputes-resolved"] [data-testid="dispute-`+d.ID+`"]`).Length() != 1 ||
			p.doc.Find(`[data-testid="disputes-none"]`).Length() != 1 {
			t.Errorf("resolved dispute not moved to the resolved list:\n%.2000s", p.body)
		}
	})
}
