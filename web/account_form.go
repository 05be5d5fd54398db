package web

// The account forms: creating an API key, signing up, logging in. Their
// rules (a key's name, an email, a password) are the accounts service's,
// shared with the API and checked there (accounts.SignupInput.Validate,
// ValidateAPIKeyName); its errors name the same fields. The password is
// never bound: a page does not show it again.

// APIKeyForm is the create-key form: the key's name.
type APIKeyForm struct {
	Form
	Name string
}

// Bind keeps the name without surrounding spaces, as it is stored.
func (f *APIKeyForm) Bind(get func(field string) string) { f.bind(trimmed(get), "name") }

// Validate reads the name; the accounts service checks it.
func (f *APIKeyForm) Validate() error {
	f.Name = f.Value("name")
	return f.invalid()
}

// SignupForm is the registration form, less the password.
type SignupForm struct {
	Form
	Email, Name     string
	Buyer, Provider bool
}

// NewSignupForm is the empty form: most people come to rent.
func NewSignupForm() *SignupForm {
	f := &SignupForm{}
	f.Set("buyer", "on")
	return f
}

// Bind keeps the email without surrounding spaces and the name as typed;
// a role is ticked only when the browser sent its box on.
func (f *SignupForm) Bind(get func(field string) string) {
	f.bind(trimmed(get), "email")
	f.bind(get, "name")
	for _, role := range []string{"buyer", "provider"} {
		if get(role) == "on" {
			f.Set(role, "on")
		}
	}
}

// Validate reads the account's details; the accounts service checks them.
func (f *SignupForm) Validate() error {
	f.Email, f.Name = f.Value("email"), f.Value("name")
	f.Buyer, f.Provider = f.Value("buyer") == "on", f.Value("provider") == "on"
	return f.invalid()
}

// LoginForm is the log-in form, less the password.
type LoginForm struct {
	Form
	Email string
}

// Bind keeps the email without surrounding spaces.
func (f *LoginForm) Bind(get func(field string) string) { f.bind(trimmed(get), "email") }

// Validate reads the email; the accounts service checks the sign-in.
func (f *LoginForm) Validate() error {
	f.Email = f.Value("email")
	return f.invalid()
}
