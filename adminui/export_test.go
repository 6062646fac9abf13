package adminui

import (
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/bcrypt"
)

// The console's tests check passwords at bcrypt's least cost: under the
// race detector a check at the real cost takes seconds. Every property
// tested (one comparison per answer, against a hash of the same cost)
// holds at any cost; cmd/usersync's tests check the real cost is stored.
func init() { passwordCost = bcrypt.MinCost }

// CountCompares counts the password comparisons from now on, by whether
// they were against the stand-in hash (unknown user, no password, locked)
// or a real one, and reports the cost of every hash compared.
func CountCompares() (real, dummy *atomic.Int32, costs func() map[int]bool) {
	real, dummy = new(atomic.Int32), new(atomic.Int32)
	seen := map[int]bool{}
	var mu sync.Mutex
	compareHash = func(hash, password []byte) error {
		if string(hash) == string(dummyHash()) {
			dummy.Add(1)
		} else {
			real.Add(1)
		}
		if c, err := bcrypt.Cost(hash); err == nil {
			mu.Lock()
			seen[c] = true
			mu.Unlock()
		}
		return bcrypt.CompareHashAndPassword(hash, password)
	}
	return real, dummy, func() map[int]bool {
		mu.Lock()
		defer mu.Unlock()
		out := map[int]bool{}
		for c := range seen {
			out[c] = true
		}
		return out
	}
}

// PasswordCost is the cost new passwords are hashed at.
func PasswordCost() int { return passwordCost }
