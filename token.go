package usersync

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"time"
)

// TokenPrefix starts every API token so that leaked tokens are easy to spot
// by secret scanners and are never confused with other credentials.
const TokenPrefix = "ust_"

// Token is an API token of a user. Only a hash of the clear token is stored;
// the clear token is shown once, when it is made.
type Token struct {
	ID         int64      `json:"id"`
	UserID     int64      `json:"userId"`
	Username   string     `json:"username"`
	Name       string     `json:"name"`
	Hint       string     `json:"hint"` // the clear token's last 4 characters, to tell tokens apart
	CreatedAt  time.Time  `json:"createdAt"`
	LastUsedAt *time.Time `json:"lastUsedAt,omitempty"`
}

// NewToken returns a fresh clear token carrying 256 random bits.
func NewToken() (string, error) { return NewSecret(TokenPrefix), nil }

// NewSecret returns prefix followed by 256 random bits, URL-safe: the one
// source of API tokens, console sessions, CSRF tokens and made-up
// passwords.
func NewSecret(prefix string) string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// HashToken is the stored form of a clear token. A fast hash is enough: the
// token holds 256 random bits, so no guessing attack can use its speed, and
// it lets authentication be one indexed lookup.
func HashToken(clear string) string {
	sum := sha256.Sum256([]byte(clear))
	return hex.EncodeToString(sum[:])
}

// TokenHint returns the part of a clear token that may be shown later.
func TokenHint(clear string) string {
	if len(clear) < 8 || !strings.HasPrefix(clear, TokenPrefix) {
		return ""
	}
	return clear[len(clear)-4:]
}

// TokenService manages API tokens.
type TokenService interface {
	// CreateToken makes a token for a user and returns the clear token,
	// which is not stored anywhere.
	CreateToken(ctx context.Context, userID int64, name string) (string, *Token, error)
	// FindTokens lists tokens, of one user when userID is not 0.
	FindTokens(ctx context.Context, userID int64) ([]*Token, error)
	RevokeToken(ctx context.Context, id int64) error
	// Authenticate returns the enabled user a clear token belongs to, or
	// EUNAUTHORIZED.
	Authenticate(ctx context.Context, clear string) (*User, error)
}
