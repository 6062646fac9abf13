package sqlstore

import (
	"maps"
	"sync"
	"time"

	"github.com/usersync/usersync"
)

// tokenTTL is how long a checked API token is trusted without reading the
// database again. A SCIM client sends the same token with every request,
// and on SQLite the lookup cost as much as the rest of a filtered GET.
// A change made through this DB (token revoked, user disabled, demoted or
// deleted) drops the entries it affects when it commits; a change made by
// another replica is seen within tokenTTL.
const tokenTTL = time.Second

// tokenCache remembers recent Authenticate answers by token hash.
type tokenCache struct {
	mu      sync.Mutex
	gen     int64 // bumped by every drop, so a read that began before it is not stored
	entries map[string]tokenEntry
}

type tokenEntry struct {
	user usersync.User
	at   time.Time
}

// get returns a copy of the cached user of a token hash, if still fresh.
func (c *tokenCache) get(hash string) (*usersync.User, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[hash]
	if !ok || time.Since(e.at) >= tokenTTL {
		return nil, false
	}
	u := e.user
	u.Attributes = maps.Clone(u.Attributes)
	return &u, true
}

// generation is read before the database lookup whose answer put stores.
func (c *tokenCache) generation() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put stores an answer read at generation gen, unless something was
// dropped since: that answer may predate the change.
func (c *tokenCache) put(hash string, u *usersync.User, gen int64, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if c.entries == nil {
		c.entries = map[string]tokenEntry{}
	}
	for h, e := range c.entries { // tokens are few; expired ones go here
		if time.Since(e.at) >= tokenTTL {
			delete(c.entries, h)
		}
	}
	e := tokenEntry{user: *u, at: at}
	e.user.Attributes = maps.Clone(u.Attributes)
	c.entries[hash] = e
}

// dropUser forgets the tokens of a user; 0 forgets every token.
func (c *tokenCache) dropUser(userID int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for h, e := range c.entries {
		if userID == 0 || e.user.ID == userID {
			delete(c.entries, h)
		}
	}
}
