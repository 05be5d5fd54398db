// Package accounts is sign-up, login, sessions and role administration:
// the rules, separate from HTTP so pages, the API and the CLI share them.
package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/mail"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/models"
)

// Field limits. Overlong input is rejected, never truncated silently.
const (
	MaxEmailLen       = 254 // RFC 5321 path limit
	MaxNameLen        = 100
	MinPasswordLen    = 10
	MaxPasswordLen    = 256
	sessionTouchEvery = time.Minute
)

// Config sets costs and limits; zero values take the defaults.
type Config struct {
	Hash       HashParams
	SessionTTL time.Duration
	// LoginPerIP bounds login attempts from one address and
	// LoginPerAccount those for one account from one address: both refuse
	// (429) once spent, but only that address, so a stranger cannot lock
	// an account's owner out. AccountFailures counts an account's failed
	// sign-ins from every address: past its limit the account is "under
	// attack" and its sign-ins take the slow lane (see Login) instead of
	// being refused. SignupPerIP bounds sign-ups. nil means the default.
	LoginPerIP      *Limiter
	LoginPerAccount *Limiter
	AccountFailures *Limiter
	SignupPerIP     *Limiter
	// SlowLaneDelay is how long each sign-in of an account under attack
	// takes, one at a time (default 1 s: an attacker gets one guess a
	// second for the account, however many addresses it has);
	// SlowLaneMaxWait is how long one waits for its turn before a 429
	// (default 10 s).
	SlowLaneDelay   time.Duration
	SlowLaneMaxWait time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service implements the account rules over a Store.
type Service struct {
	store *models.Store
	cfg   Config
	slow  lanes
}

// New returns a Service with cfg's zero fields defaulted. The default limits
// (20 logins a minute per address, 10 per 15 minutes per account from one
// address, the slow lane after 10 failures in 15 minutes from anywhere, 10
// sign-ups an hour per address) stop online guessing while a person who
// mistypes never hits them.
func New(store *models.Store, cfg Config) *Service {
	if cfg.Hash.MemoryKiB == 0 {
		cfg.Hash = DefaultHashParams
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = 14 * 24 * time.Hour
	}
	if cfg.LoginPerIP == nil {
		cfg.LoginPerIP = NewLimiter(20, time.Minute)
	}
	if cfg.LoginPerAccount == nil {
		cfg.LoginPerAccount = NewLimiter(10, 15*time.Minute)
	}
	if cfg.AccountFailures == nil {
		cfg.AccountFailures = NewLimiter(10, 15*time.Minute)
	}
	if cfg.SlowLaneDelay == 0 {
		cfg.SlowLaneDelay = time.Second
	}
	if cfg.SlowLaneMaxWait == 0 {
		cfg.SlowLaneMaxWait = 10 * time.Second
	}
	if cfg.SignupPerIP == nil {
		cfg.SignupPerIP = NewLimiter(10, time.Hour)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{store: store, cfg: cfg, slow: lanes{m: map[string]*lane{}}}
}

// SignupInput is what the sign-up form and API send.
type SignupInput struct {
	Email    string
	Name     string
	Password string
	Buyer    bool
	Provider bool
}

// Validate checks every field and returns the first problem as a field
// error, in form order.
func (in *SignupInput) Validate() error {
	if err := ValidateEmail(in.Email); err != nil {
		return err
	}
	if utf8.RuneCountInString(in.Name) > MaxNameLen {
		return highway.FieldError("name", fmt.Sprintf("Name must be at most %d characters.", MaxNameLen))
	}
	if err := ValidatePassword(in.Password); err != nil {
		return err
	}
	if !in.Buyer && !in.Provider {
		return highway.FieldError("roles", "Choose at least one: rent GPUs or offer GPUs.")
	}
	return nil
}

// ValidateEmail checks that s is one plain address of sane length.
func ValidateEmail(s string) error {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return highway.FieldError("email", "Email is required.")
	case len(s) > MaxEmailLen:
		return highway.FieldError("email", fmt.Sprintf("Email must be at most %d characters.", MaxEmailLen))
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" || !strings.Contains(s[strings.LastIndexByte(s, '@')+1:], ".") {
		return highway.FieldError("email", "Enter an email address like name@example.com.")
	}
	return nil
}

// ValidatePassword checks length only: NIST SP 800-63B advises length over
// composition rules.
func ValidatePassword(p string) error {
	n := utf8.RuneCountInString(p)
	switch {
	case n < MinPasswordLen:
		return highway.FieldError("password", fmt.Sprintf("Password must be at least %d characters.", MinPasswordLen))
	case n > MaxPasswordLen:
		return highway.FieldError("password", fmt.Sprintf("Password must be at most %d characters.", MaxPasswordLen))
	}
	return nil
}

// Signup creates an account and logs it in, returning the session token.
func (s *Service) Signup(ctx context.Context, in SignupInput, ip, userAgent string) (*models.User, string, error) {
	in.Email = strings.TrimSpace(in.Email)
	in.Name = strings.TrimSpace(in.Name)
	if err := in.Validate(); err != nil {
		return nil, "", err
	}
	if ok, retry := s.cfg.SignupPerIP.Allow("ip:"+ip, s.cfg.Now()); !ok {
		return nil, "", rateLimited(retry)
	}
	if _, err := s.store.UserByEmail(ctx, in.Email); err == nil {
		return nil, "", &highway.Error{Code: highway.ECONFLICT, Field: "email", Message: "This email is already registered."}
	} else if highway.ErrorCode(err) != highway.ENOTFOUND {
		return nil, "", err
	}
	hash, err := HashPassword(in.Password, s.cfg.Hash)
	if err != nil {
		return nil, "", err
	}
	u := &models.User{Email: in.Email, Name: in.Name, PasswordHash: hash, IsBuyer: in.Buyer, IsProvider: in.Provider}
	if err := s.store.CreateUser(ctx, u); err != nil {
		return nil, "", err
	}
	token, err := s.newSession(ctx, u, ip, userAgent)
	if err != nil {
		return nil, "", err
	}
	return u, token, nil
}

// LoginInput is a sign-in attempt: the credentials and where they come from.
type LoginInput struct {
	Email, Password, IP, UserAgent string
	// Device is the account a valid device cookie on the browser names
	// ("" if none): a browser its owner signed in from before skips the
	// slow lane of an account under attack.
	Device string
}

// LoginResult is a successful sign-in: the session, and the failed
// attempts since the account's last sign-in, which its owner is told of.
type LoginResult struct {
	User   *models.User
	Token  string
	Failed models.LoginFailures
}

// Login checks the credentials and returns a fresh session token: a new id
// at every login defeats session fixation. Wrong email and wrong password
// give the same error, in the same time. Guessing is bounded three ways,
// none of which lets a stranger lock the owner out: per address, per
// account from one address (both refused with 429, for that address only),
// and per account from everywhere: once an account has had too many
// failures, its sign-ins (right or wrong, from anyone without a device
// cookie for it) wait their turn, one at a time, each taking
// SlowLaneDelay: slower, never refused for the right password unless the
// queue is longer than SlowLaneMaxWait.
func (s *Service) Login(ctx context.Context, in LoginInput) (*LoginResult, error) {
	email := strings.ToLower(strings.TrimSpace(in.Email))
	if email == "" {
		return nil, highway.FieldError("email", "Email is required.")
	}
	if in.Password == "" {
		return nil, highway.FieldError("password", "Password is required.")
	}
	if len(email) > MaxEmailLen || utf8.RuneCountInString(in.Password) > MaxPasswordLen {
		return nil, highway.FieldError("email", "Email or password is incorrect.")
	}
	now := s.cfg.Now()
	if ok, retry := s.cfg.LoginPerIP.Allow("ip:"+in.IP, now); !ok {
		return nil, rateLimited(retry)
	}
	if ok, retry := s.cfg.LoginPerAccount.Allow("acct:"+email+"|ip:"+in.IP, now); !ok {
		return nil, rateLimited(retry)
	}
	wrong := highway.FieldError("email", "Email or password is incorrect.")
	u, err := s.store.UserByEmail(ctx, email)
	if err != nil && highway.ErrorCode(err) != highway.ENOTFOUND {
		return nil, err
	}
	// Failures are counted per address typed, whether or not an account
	// has it, so the slow lane does not tell which addresses exist.
	failKey := "acct:" + email
	if s.cfg.AccountFailures.Count(failKey, now) >= s.cfg.AccountFailures.Limit && (u == nil || in.Device != u.ID) {
		leave, ok := s.slow.enter(ctx, failKey, s.cfg.SlowLaneMaxWait)
		if !ok {
			return nil, rateLimited(5 * time.Second)
		}
		defer leave()
		t := time.NewTimer(s.cfg.SlowLaneDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	if u == nil {
		_, _ = CheckPassword(dummyHash, in.Password)
		s.cfg.AccountFailures.Allow(failKey, now)
		return nil, wrong
	}
	ok, err := CheckPassword(u.PasswordHash, in.Password)
	if err != nil {
		return nil, err
	}
	if !ok {
		s.cfg.AccountFailures.Allow(failKey, now)
		if err := s.store.RecordLoginFailure(ctx, u.ID, now, in.IP); err != nil {
			return nil, err
		}
		return nil, wrong
	}
	if u.Disabled() {
		return nil, highway.FieldError("email", "This account is disabled. Contact an administrator.")
	}
	token, err := s.newSession(ctx, u, in.IP, in.UserAgent)
	if err != nil {
		return nil, err
	}
	failed, err := s.store.TakeLoginFailures(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	return &LoginResult{User: u, Token: token, Failed: failed}, nil
}

// lanes serialise an attacked account's sign-ins: one at a time per key.
type lanes struct {
	mu sync.Mutex
	m  map[string]*lane
}

type lane struct {
	turn  chan struct{}
	users int
}

// enter waits up to wait for key's turn; leave hands it on.
func (ls *lanes) enter(ctx context.Context, key string, wait time.Duration) (leave func(), ok bool) {
	ls.mu.Lock()
	l := ls.m[key]
	if l == nil {
		l = &lane{turn: make(chan struct{}, 1)}
		ls.m[key] = l
	}
	l.users++
	ls.mu.Unlock()
	gone := func() {
		ls.mu.Lock()
		if l.users--; l.users == 0 {
			delete(ls.m, key)
		}
		ls.mu.Unlock()
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case l.turn <- struct{}{}:
		return func() { <-l.turn; gone() }, true
	case <-t.C:
	case <-ctx.Done():
	}
	gone()
	return nil, false
}

func rateLimited(retry time.Duration) error {
	secs := int((retry + time.Second - 1) / time.Second)
	return &highway.Error{Code: highway.ERATELIMITED, RetryAfter: secs,
		Message: fmt.Sprintf("Too many attempts. Try again in %d seconds.", secs)}
}

// newSession stores a session for u and returns its token (256 random bits,
// base64url). Only the token's SHA-256 is stored.
func (s *Service) newSession(ctx context.Context, u *models.User, ip, userAgent string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("session id: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(b)
	now := s.cfg.Now().UTC()
	if len(userAgent) > 512 {
		userAgent = userAgent[:512]
	}
	err := s.store.CreateSession(ctx, &models.Session{
		IDHash: HashToken(token), UserID: u.ID, IP: ip, UserAgent: userAgent,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL),
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// HashToken is how session tokens are stored and looked up.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Authenticate returns the user of a live session token, sliding its expiry
// at most once a minute (so page views do not each cost a write).
// A dead or unknown token is EUNAUTHORIZED.
func (s *Service) Authenticate(ctx context.Context, token string) (*models.User, error) {
	if token == "" || len(token) > 100 {
		return nil, highway.Errorf(highway.EUNAUTHORIZED, "Please log in.")
	}
	now := s.cfg.Now().UTC()
	sess, u, err := s.store.SessionUser(ctx, HashToken(token), now)
	if highway.ErrorCode(err) == highway.ENOTFOUND {
		return nil, highway.Errorf(highway.EUNAUTHORIZED, "Please log in.")
	}
	if err != nil {
		return nil, err
	}
	if now.Sub(sess.LastSeenAt) >= sessionTouchEvery {
		if err := s.store.TouchSession(ctx, sess.IDHash, now, now.Add(s.cfg.SessionTTL)); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// Logout ends the session of token.
func (s *Service) Logout(ctx context.Context, token string) error {
	if token == "" {
		return nil
	}
	return s.store.DeleteSession(ctx, HashToken(token))
}

// SetRoles changes target's roles. Only admins may; an admin cannot drop
// their own admin role, so the last admin cannot lock everyone out.
func (s *Service) SetRoles(ctx context.Context, actor *models.User, targetID string, buyer, provider, admin bool) error {
	if actor == nil || !actor.IsAdmin {
		return highway.Errorf(highway.EFORBIDDEN, "Only administrators can change roles.")
	}
	if actor.ID == targetID && !admin {
		return highway.Errorf(highway.ECONFLICT, "You cannot remove your own admin role.")
	}
	return s.store.SetUserRoles(ctx, targetID, buyer, provider, admin)
}

// SetDisabled disables or re-enables target. Only admins may, and not on
// themselves.
func (s *Service) SetDisabled(ctx context.Context, actor *models.User, targetID string, disabled bool) error {
	if actor == nil || !actor.IsAdmin {
		return highway.Errorf(highway.EFORBIDDEN, "Only administrators can disable users.")
	}
	if actor.ID == targetID {
		return highway.Errorf(highway.ECONFLICT, "You cannot disable your own account.")
	}
	return s.store.SetUserDisabled(ctx, targetID, disabled)
}

// EnsureAdmin creates an admin with email and password, or, when the email
// exists, grants it admin and sets the password. The CLI and `highway dev`
// use it; it is not reachable from the web.
func (s *Service) EnsureAdmin(ctx context.Context, email, password string) (*models.User, error) {
	if err := ValidateEmail(email); err != nil {
		return nil, err
	}
	if err := ValidatePassword(password); err != nil {
		return nil, err
	}
	hash, err := HashPassword(password, s.cfg.Hash)
	if err != nil {
		return nil, err
	}
	u, err := s.store.UserByEmail(ctx, email)
	switch highway.ErrorCode(err) {
	case highway.ENOTFOUND:
		u = &models.User{Email: email, Name: "Administrator", PasswordHash: hash, IsAdmin: true}
		if err := s.store.CreateUser(ctx, u); err != nil {
			return nil, err
		}
		return u, nil
	case "":
	default:
		return nil, err
	}
	if err := s.store.SetUserRoles(ctx, u.ID, u.IsBuyer, u.IsProvider, true); err != nil {
		return nil, err
	}
	if err := s.store.SetUserPassword(ctx, u.ID, hash); err != nil {
		return nil, err
	}
	if u.Disabled() {
		if err := s.store.SetUserDisabled(ctx, u.ID, false); err != nil {
			return nil, err
		}
	}
	return s.store.UserByID(ctx, u.ID)
}
