package accounts

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/models"
)

// API key format and limits.
const (
	// APIKeyPrefix marks Highway API keys, so secret scanners and people
	// recognise a leaked one.
	APIKeyPrefix = "hwk_"
	// apiKeyLen is the prefix plus 32 random bytes in unpadded base64url.
	apiKeyLen = len(APIKeyPrefix) + 43
	// apiKeyShownLen is how much of a key the account page keeps showing:
	// six random characters tell a user's keys apart yet give an attacker
	// nothing worth having (36 of 256 bits).
	apiKeyShownLen = len(APIKeyPrefix) + 6
	// MaxAPIKeyNameLen bounds a key's name.
	MaxAPIKeyNameLen = 64
	// MaxAPIKeysPerUser bounds live keys per user: plenty for every
	// machine and CI job, few enough that the account page stays readable.
	MaxAPIKeysPerUser = 20
	// apiKeyTouchEvery spaces last_used_at writes: scripts that call the
	// API in a loop must not turn every request into a write.
	apiKeyTouchEvery = time.Minute
)

// GenerateAPIKey returns a new key: APIKeyPrefix and 256 random bits in
// base64url.
func GenerateAPIKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("api key: %w", err)
	}
	return APIKeyPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// ValidateAPIKeyName checks a key's name (already trimmed): 1 to
// MaxAPIKeyNameLen characters, no control characters.
func ValidateAPIKeyName(name string) error {
	n := utf8.RuneCountInString(name)
	switch {
	case n == 0:
		return highway.FieldError("name", `Name the key after where it is used, e.g. "laptop" or "CI".`)
	case n > MaxAPIKeyNameLen:
		return highway.FieldError("name", fmt.Sprintf("Name must be at most %d characters.", MaxAPIKeyNameLen))
	case !utf8.ValidString(name) || strings.IndexFunc(name, unicode.IsControl) >= 0:
		return highway.FieldError("name", "Name must be plain text on one line.")
	}
	return nil
}

// CreateAPIKey creates a key named name for u and returns it with the key
// itself, which exists nowhere else afterwards: show it once. A bad name is
// EINVALID on "name"; a user at MaxAPIKeysPerUser live keys gets ECONFLICT.
func (s *Service) CreateAPIKey(ctx context.Context, u *models.User, name string) (*models.APIKey, string, error) {
	name = strings.TrimSpace(name)
	if err := ValidateAPIKeyName(name); err != nil {
		return nil, "", err
	}
	key, err := GenerateAPIKey()
	if err != nil {
		return nil, "", err
	}
	k := &models.APIKey{
		UserID: u.ID, Name: name, Prefix: key[:apiKeyShownLen], KeyHash: HashToken(key),
		CreatedAt: s.cfg.Now().UTC(),
	}
	if err := s.store.CreateAPIKey(ctx, k, MaxAPIKeysPerUser); err != nil {
		return nil, "", err
	}
	return k, key, nil
}

// APIKeys returns u's live keys, newest first.
func (s *Service) APIKeys(ctx context.Context, u *models.User) ([]models.APIKey, error) {
	return s.store.APIKeysOf(ctx, u.ID)
}

// RevokeAPIKey revokes u's key id at once. A key u does not own is
// ENOTFOUND.
func (s *Service) RevokeAPIKey(ctx context.Context, u *models.User, id string) error {
	return s.store.RevokeAPIKey(ctx, u.ID, id, s.cfg.Now())
}

// AuthenticateAPIKey returns the user of a live API key (the bearer token
// of an API request), recording its use at most once a minute. A
// malformed, unknown or revoked key, or one of a disabled user, is
// EUNAUTHORIZED.
func (s *Service) AuthenticateAPIKey(ctx context.Context, key string) (*models.User, error) {
	// Anything that cannot be one of our keys is refused before the
	// database sees it.
	if len(key) != apiKeyLen || !strings.HasPrefix(key, APIKeyPrefix) {
		return nil, highway.Errorf(highway.EUNAUTHORIZED, "Invalid or revoked API key.")
	}
	k, u, err := s.store.UserByAPIKeyHash(ctx, HashToken(key))
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now().UTC()
	if k.LastUsedAt == nil || now.Sub(*k.LastUsedAt) >= apiKeyTouchEvery {
		if err := s.store.TouchAPIKey(ctx, k.ID, now, now.Add(-apiKeyTouchEvery)); err != nil {
			return nil, err
		}
	}
	return u, nil
}
