package graph

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
)

// MaxBatch is how many requests one $batch may carry.
const MaxBatch = 20

type batchRequest struct {
	ID      string            `json:"id"`
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    json.RawMessage   `json:"body,omitempty"`
}

type batchResponse struct {
	ID      string            `json:"id"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    json.RawMessage   `json:"body,omitempty"`
}

// batch answers POST /v1.0/$batch: each inner request is served on its own
// (throttling and faults apply to each, with their own Retry-After), and the
// answers come back together with status 200.
func (s *Server) batch(w http.ResponseWriter, r *http.Request) {
	s.count("batch")
	var in struct {
		Requests []batchRequest `json:"requests"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		graphError(w, 400, "BadRequest", "Invalid batch payload: "+err.Error())
		return
	}
	if len(in.Requests) == 0 || len(in.Requests) > MaxBatch {
		graphError(w, 400, "BadRequest", fmt.Sprintf("A batch must hold between 1 and %d requests; this one has %d.", MaxBatch, len(in.Requests)))
		return
	}
	seen := map[string]bool{}
	out := make([]batchResponse, 0, len(in.Requests))
	for _, br := range in.Requests {
		if br.ID == "" || seen[br.ID] || !strings.HasPrefix(br.URL, "/") {
			graphError(w, 400, "BadRequest", fmt.Sprintf("Batch request %q needs a unique id and a url relative to /v1.0 starting with '/'.", br.ID))
			return
		}
		seen[br.ID] = true
		if len(br.Body) > 0 && br.Headers["Content-Type"] == "" && br.Headers["content-type"] == "" {
			graphError(w, 400, "BadRequest", fmt.Sprintf("Batch request %q has a body and needs a Content-Type header.", br.ID))
			return
		}
		inner, err := http.NewRequestWithContext(r.Context(), br.Method, "/v1.0"+br.URL, bytes.NewReader(br.Body))
		if err != nil {
			graphError(w, 400, "BadRequest", fmt.Sprintf("Batch request %q: %v", br.ID, err))
			return
		}
		inner.Host = r.Host
		for k, v := range br.Headers {
			inner.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		s.serveOne(rec, inner)
		resp := batchResponse{ID: br.ID, Status: rec.Code, Headers: map[string]string{}}
		for _, h := range []string{"Retry-After", "Content-Type", "Location"} {
			if v := rec.Header().Get(h); v != "" {
				resp.Headers[h] = v
			}
		}
		if body := bytes.TrimSpace(rec.Body.Bytes()); json.Valid(body) && len(body) > 0 {
			resp.Body = body
		}
		out = append(out, resp)
	}
	writeJSON(w, 200, map[string]any{"responses": out})
}
