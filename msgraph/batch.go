package msgraph

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/usersync/usersync"
)

// maxBatch is the most requests one $batch may carry.
const maxBatch = 20

// batchAnswer is the answer to a $batch.
type batchAnswer struct {
	Responses []struct {
		ID      string            `json:"id"`
		Status  int               `json:"status"`
		Headers map[string]string `json:"headers"`
		Body    json.RawMessage   `json:"body"`
	} `json:"responses"`
}

// batchCall is one use of $batch: an inner request per key, and what to
// make of each answer.
type batchCall struct {
	what, perm string
	method     string
	url        func(key string) string // relative to /v1.0
	body       func(key string) any    // a JSON body for each inner request (POST, PATCH); nil for none
	write      bool                    // each inner request is a write: paced, low priority
	// answer hears each inner answer that is final (not 429 or 5xx, which
	// are sent again after their Retry-After, else a backoff).
	answer func(key string, status int, body json.RawMessage) error
}

// batchEach sends b for keys, maxBatch to a request.
func (c *Client) batchEach(ctx context.Context, keys []string, b batchCall) error {
	for start := 0; start < len(keys); start += maxBatch {
		pending := keys[start:min(start+maxBatch, len(keys))]
		backoffs := c.backoff()
		for attempt := 0; len(pending) > 0; attempt++ {
			if attempt > c.cfg.MaxRetries {
				return usersync.Errorf(usersync.EUNAVAILABLE, "%s: Graph still throttles or fails %d of them after %d retries", b.what, len(pending), attempt-1)
			}
			var req struct {
				Requests []map[string]any `json:"requests"`
			}
			for i, k := range pending {
				r := map[string]any{"id": strconv.Itoa(i), "method": b.method, "url": b.url(k)}
				if b.body != nil {
					r["body"], r["headers"] = b.body(k), map[string]string{"Content-Type": "application/json"}
				}
				req.Requests = append(req.Requests, r)
			}
			body, _ := json.Marshal(req)
			cl := call{method: http.MethodPost, target: "/v1.0/$batch", body: body, what: fmt.Sprintf("%s (%d in a $batch)", b.what, len(pending)), perm: b.perm}
			if b.write {
				// Each inner request is a write of its own: the limiter is
				// asked for the batch as a whole.
				if err := c.writes.wait(ctx, len(pending)); err != nil {
					return err
				}
				cl.header = http.Header{"X-Ms-Throttle-Priority": {"Low"}}
			}
			var res batchAnswer
			if err := c.do(ctx, cl, &res); err != nil {
				return err
			}
			var retry []string
			var wait time.Duration
			throttled := false
			for _, r := range res.Responses {
				i, err := strconv.Atoi(r.ID)
				if err != nil || i < 0 || i >= len(pending) {
					return usersync.Errorf(usersync.EUNAVAILABLE, "%s: a $batch answer has the unknown id %q", b.what, r.ID)
				}
				if r.Status == http.StatusTooManyRequests || r.Status >= 500 {
					retry = append(retry, pending[i])
					throttled = throttled || r.Status == http.StatusTooManyRequests
					if s, err := strconv.Atoi(r.Headers["Retry-After"]); err == nil {
						wait = max(wait, time.Duration(s)*time.Second)
					}
					continue
				}
				if err := b.answer(pending[i], r.Status, r.Body); err != nil {
					return err
				}
			}
			if len(retry) > 0 {
				if wait == 0 {
					wait = backoffs.NextBackOff()
				} else if b.write && throttled {
					c.writes.throttled(wait) // the quota is spent: every writer waits
				}
				if err := c.pause(ctx, b.what, fmt.Sprintf("%d answers of a $batch were throttled or failed", len(retry)), wait); err != nil {
					return err
				}
			}
			pending = retry
		}
	}
	return nil
}

// innerError is a final inner answer that refuses, as a domain error.
func innerError(status int, body json.RawMessage, what string) error {
	return innerAPIError(status, body, what).Unwrap()
}

// innerAPIError reads an inner answer's Graph error.
func innerAPIError(status int, body json.RawMessage, what string) *APIError {
	var ge graphError
	json.Unmarshal(body, &ge)
	return &APIError{Status: status, Code: ge.Error.Code, Message: ge.Error.Message, What: what}
}
