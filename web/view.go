// Package web is the server-rendered UI: templ layouts, components and
// pages, and the view-models they are bound to. It knows nothing of HTTP
// or the database: handlers build a view-model and render a component.
package web

import (
	"time"

	"github.com/highway-compute/highway/static"
)

// Viewer is the logged-in user as the layout needs it (nil for a visitor).
type Viewer struct {
	ID       string
	Email    string
	Name     string
	Buyer    bool
	Provider bool
	Admin    bool
	// Unread counts the viewer's unread alerts (the header's bell).
	Unread int64
}

// Display is the name shown in the header.
func (v *Viewer) Display() string {
	if v.Name != "" {
		return v.Name
	}
	return v.Email
}

// Flash is a one-time message carried across a redirect.
type Flash struct {
	Kind string // info, success, error
	Text string
}

// Page is what every page's layout needs.
type Page struct {
	Title   string
	Path    string
	Viewer  *Viewer
	CSRF    string
	Flash   *Flash
	DevMode bool
	// LiveSince is the market generation a live page was read at; its
	// event stream starts from there (handlers.liveGeneration).
	LiveSince uint64
}

// Asset returns the content-hashed URL of a static file.
func Asset(name string) string { return static.Path(name) }

// FormatTime renders a timestamp for people, in UTC.
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}
