package sqlstore

import (
	"sync"
	"time"
)

// cacheTTL is how long a cached answer is trusted without reading the
// database again. A SCIM client sends the same API token with every
// request, and the server reads the same few settings for each: on SQLite
// the token lookup alone was 16 % of the CPU of a SCIM create (profile of
// BenchmarkCreateUser in package scim). A change made
// through this DB drops the entries it affects when it commits; a change
// made by another replica is seen within cacheTTL.
const cacheTTL = time.Second

// cache remembers answers by key for cacheTTL.
type cache[V any] struct {
	mu      sync.Mutex
	gen     int64 // bumped by every drop, so a read that began before it is not stored
	entries map[string]cached[V]
}

type cached[V any] struct {
	v  V
	at time.Time
}

// get returns the answer for key, if still fresh.
func (c *cache[V]) get(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || time.Since(e.at) >= cacheTTL {
		var zero V
		return zero, false
	}
	return e.v, true
}

// generation is read before the database lookup whose answer put stores.
func (c *cache[V]) generation() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put stores an answer read at generation gen, unless something was
// dropped since: that answer may predate the change.
func (c *cache[V]) put(key string, v V, gen int64, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if c.entries == nil {
		c.entries = map[string]cached[V]{}
	}
	for k, e := range c.entries { // the keys are few; expired ones go here
		if time.Since(e.at) >= cacheTTL {
			delete(c.entries, k)
		}
	}
	c.entries[key] = cached[V]{v: v, at: at}
}

// drop forgets the entries that match (every entry when match is nil).
func (c *cache[V]) drop(match func(key string, v V) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k, e := range c.entries {
		if match == nil || match(k, e.v) {
			delete(c.entries, k)
		}
	}
}
