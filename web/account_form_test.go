package web

import "testing"

// The account forms are read as typed (the email and the key's name
// trimmed, the password never kept); their rules are the accounts
// service's, so Validate refuses nothing.
func TestAccountFormsValidate(t *testing.T) {
	var k APIKeyForm
	k.Bind(posted("name", "  laptop "))
	if err := k.Validate(); err != nil || k.Name != "laptop" || k.Value("name") != "laptop" {
		t.Errorf("api key: %v %q", err, k.Name)
	}
	var l LoginForm
	l.Bind(posted("email", " a@b.io ", "password", "secret"))
	if err := l.Validate(); err != nil || l.Email != "a@b.io" || l.Value("password") != "" {
		t.Errorf("login: %v %q, password kept %q", err, l.Email, l.Value("password"))
	}

	var s SignupForm
	s.Bind(posted("email", " a@b.io ", "name", " Ann ", "password", "secret", "provider", "on", "buyer", "true"))
	if err := s.Validate(); err != nil || s.Email != "a@b.io" || s.Name != " Ann " || s.Buyer || !s.Provider {
		t.Errorf("signup: %v %+v", err, s)
	}
	if s.Value("password") != "" || s.Checked("buyer") || !s.Checked("provider") {
		t.Errorf("signup shows password %q, buyer %v, provider %v", s.Value("password"), s.Checked("buyer"), s.Checked("provider"))
	}
	if !NewSignupForm().Checked("buyer") {
		t.Error("a fresh sign-up form does not suggest renting")
	}
}
