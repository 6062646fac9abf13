package adminui

import (
	"sync"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/usersync/usersync"
)

// MinPassword is the shortest password an administrator may set.
const MinPassword = 12

// passwordCost is bcrypt's work factor: about 250 ms a check on a 2-core
// machine, slow for a guesser and unnoticed by a person. (A variable only
// so that this package's tests, under the race detector's tenfold cost,
// can use the least.)
var passwordCost = 12

// HashPassword checks a new password and returns its stored form (bcrypt).
func HashPassword(password string) (string, error) {
	switch {
	case utf8.RuneCountInString(password) < MinPassword:
		return "", usersync.Errorf(usersync.EINVALID, "a password needs at least %d characters", MinPassword)
	case len(password) > 72:
		return "", usersync.Errorf(usersync.EINVALID, "a password may have at most 72 bytes (bcrypt reads no further)")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), passwordCost)
	if err != nil {
		return "", err
	}
	return string(h), nil
}

// dummyHash is compared against when a user does not exist or has no
// password, so that the answer takes as long either way. It is made on
// first use: every command of the binary would otherwise pay for it.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("not a password of anyone"), passwordCost)
	return h
})

// passwordMatches reports whether password is the one hash was made from;
// an empty hash never matches, after as long a check.
func passwordMatches(hash, password string) bool {
	if hash == "" {
		compareHash(dummyHash(), []byte(password))
		return false
	}
	return compareHash([]byte(hash), []byte(password)) == nil
}

// compareHash is bcrypt's comparison; a test counts the calls through it.
var compareHash = bcrypt.CompareHashAndPassword
