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
	// Allowed is set by BeginSignIn: the attempt was counted and its
	// password may be checked. It is false while the user is locked.
	Allowed bool
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
	// password. Failed attempts are forgotten and every session of the
	// user ends (a changed password must lock out whoever knew the old
	// one); it returns how many ended.
	SetPasswordHash(ctx context.Context, userID int64, hash string) (sessionsEnded int, err error)
	// SignInState reads a user by username with its sign-in state.
	SignInState(ctx context.Context, username string) (*User, SignInState, error)
	// BeginSignIn counts an attempt as a failure before its password is
	// checked, in the same statement that checks the lock, so that
	// attempts made at once (on any replica) can never check more than
	// lockAfter passwords in a row: the lockAfter-th locks the user for
	// lockFor. State.Allowed is false when the user was already locked
	// (the attempt is then neither counted nor to be checked).
	BeginSignIn(ctx context.Context, username string, lockAfter int, lockFor time.Duration) (*User, SignInState, error)
	// SignInSucceeded forgets the failures after a right password.
	SignInSucceeded(ctx context.Context, userID int64) error
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
