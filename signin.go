package usersync

import (
	"context"
	"time"
)

// Sign-in to the admin console: an administrator's password (stored as a
// slow hash made by the caller), a count of failed attempts that locks the
// account for a while, and sessions named by a random token that is
// stored only as a hash, shared by every replica.

// SignInState is what checking a password needs to know about a user.
type SignInState struct {
	PasswordHash string    // "" when no password is set (SSO-only users, for instance)
	Failures     int       // failed attempts in a row
	LockedUntil  time.Time // zero when not locked
}

// AdminSession is a signed-in administrator's session.
type AdminSession struct {
	ID        int64
	UserID    int64
	Username  string
	CSRF      string // the token every form of the session carries
	CreatedAt time.Time
	ExpiresAt time.Time
}

// SessionPrefix starts every clear session token.
const SessionPrefix = "uss_"

// SignInService stores passwords, failed attempts and sessions.
type SignInService interface {
	// SetPasswordHash stores a user's password hash; "" removes the
	// password. Failed attempts are forgotten.
	SetPasswordHash(ctx context.Context, userID int64, hash string) error
	// SignInState reads a user by username with its sign-in state.
	SignInState(ctx context.Context, username string) (*User, SignInState, error)
	// RecordSignIn records an attempt: a success forgets the failures; the
	// lockAfter-th failure in a row locks the user for lockFor.
	RecordSignIn(ctx context.Context, userID int64, ok bool, lockAfter int, lockFor time.Duration) error
	// CreateSession starts a session of ttl; the clear token is returned
	// once, only its hash is stored.
	CreateSession(ctx context.Context, userID int64, ttl time.Duration) (string, *AdminSession, error)
	// FindSession finds the session of a clear token that has not expired
	// and whose user is still an enabled administrator (EUNAUTHORIZED
	// otherwise).
	FindSession(ctx context.Context, clear string) (*AdminSession, error)
	// DeleteSession ends a session (signing out); an unknown one is no error.
	DeleteSession(ctx context.Context, clear string) error
}
