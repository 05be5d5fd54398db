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

// Form carries a form's submitted values and per-field errors, so a page
// re-renders with the message next to the field and what the user typed.
type Form struct {
	Values map[string]string
	Errors map[string]string
	// Error is a message for the whole form (e.g. rate limited).
	Error string
}

// NewForm returns an empty form.
func NewForm() *Form {
	return &Form{Values: map[string]string{}, Errors: map[string]string{}}
}

// Value returns the submitted value of field.
func (f *Form) Value(field string) string {
	if f == nil {
		return ""
	}
	return f.Values[field]
}

// Checked reports whether a checkbox field was submitted on.
func (f *Form) Checked(field string) bool {
	v := f.Value(field)
	return v == "on" || v == "true" || v == "1"
}

// Err returns the error message for field.
func (f *Form) Err(field string) string {
	if f == nil {
		return ""
	}
	return f.Errors[field]
}

// FieldClass marks a field wrapper that has an error.
func (f *Form) FieldClass(field string) string {
	if f.Err(field) != "" {
		return "field has-error"
	}
	return "field"
}

// FormatTime renders a timestamp for people, in UTC.
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}
