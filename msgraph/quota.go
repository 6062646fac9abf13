package msgraph

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Graph's write quota per application and tenant (wire facts: 3,000
// requests per 2 min 30 s).
const (
	DefaultWriteQuota  = 3000
	DefaultWriteWindow = 150 * time.Second
)

// writeQuota paces writes under Graph's write quota. It is a token bucket
// that holds the whole quota and refills over its window, so a burst of
// up to the quota goes out at once and a long run goes at the quota's
// rate; the old fixed pacer sent every write at the rate (5,000 writes in
// 250 s, where the quota allows them in 150 s). A 429 closes it to every
// writer until its Retry-After: concurrent writers then wait together
// instead of each meeting a 429 of its own.
type writeQuota struct {
	bucket *rate.Limiter // nil: no pacing
	sleep  func(ctx context.Context, d time.Duration) error

	mu     sync.Mutex
	closed time.Time // no write before this
}

// newWriteQuota makes the bucket: quota writes per window, refilled at
// perSecond when that is set (benchmarks), no pacing when it is negative.
func newWriteQuota(quota int, window time.Duration, perSecond float64, sleep func(context.Context, time.Duration) error) *writeQuota {
	q := &writeQuota{sleep: sleep}
	switch {
	case perSecond < 0:
	case perSecond > 0:
		q.bucket = rate.NewLimiter(rate.Limit(perSecond), quota)
	default:
		q.bucket = rate.NewLimiter(rate.Limit(float64(quota)/window.Seconds()), quota)
	}
	return q
}

// wait takes n writes from the quota (a $batch of n inner writes counts
// n), waiting while it is closed by a 429 or empty.
func (q *writeQuota) wait(ctx context.Context, n int) error {
	q.mu.Lock()
	d := time.Until(q.closed)
	q.mu.Unlock()
	if d > 0 {
		if err := q.sleep(ctx, d); err != nil {
			return err
		}
	}
	if q.bucket == nil {
		return nil
	}
	return q.bucket.WaitN(ctx, min(n, q.bucket.Burst()))
}

// throttled closes the quota for d, a 429's Retry-After.
func (q *writeQuota) throttled(d time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if until := time.Now().Add(d); until.After(q.closed) {
		q.closed = until
	}
}
