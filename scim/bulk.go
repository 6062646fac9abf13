// Bulk (RFC 7644 §3.7): many operations in one request, with bulkId
// references between them, each answered on its own.

package scim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Bulk limits, advertised in /ServiceProviderConfig and enforced.
const (
	MaxBulkOperations = 1000
	MaxBulkPayload    = 4 << 20
)

// Bulk message schema URIs (RFC 7644 §8.2).
const (
	SchemaBulkRequest  = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
	SchemaBulkResponse = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
)

type bulkRequest struct {
	FailOnErrors int           `json:"failOnErrors"`
	Operations   []bulkOpInput `json:"Operations"`
}

type bulkOpInput struct {
	Method  string          `json:"method"`
	BulkID  string          `json:"bulkId"`
	Version string          `json:"version"`
	Path    string          `json:"path"`
	Data    json.RawMessage `json:"data"`
}

// bulkResult is one operation's answer.
type bulkResult struct {
	Method   string `json:"method"`
	BulkID   string `json:"bulkId,omitempty"`
	Version  string `json:"version,omitempty"`
	Location string `json:"location,omitempty"`
	Status   string `json:"status"`
	Response any    `json:"response,omitempty"`
}

// bulkRef finds bulkId references: "bulkId:qwerty" as a whole JSON string
// value, or as a path's last segment.
var bulkRef = regexp.MustCompile(`"bulkId:([^"\\]+)"`)

// bulkWave is how many independent creates run at once: enough for the
// directory's group commit to combine them.
const bulkWave = 64

func (s *Server) bulk(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBulkPayload+1))
	if err != nil {
		s.fail(w, r, &Error{Status: 400, ScimType: "invalidSyntax", Detail: "reading the body: " + err.Error()})
		return
	}
	if len(body) > MaxBulkPayload {
		writeError(w, &Error{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("the bulk request is larger than maxPayloadSize (%d bytes)", MaxBulkPayload)})
		return
	}
	var req bulkRequest
	if err := decodeBody(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if len(req.Operations) > MaxBulkOperations {
		writeError(w, &Error{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("the bulk request has %d operations, more than maxOperations (%d)", len(req.Operations), MaxBulkOperations)})
		return
	}
	if len(req.Operations) == 0 {
		s.fail(w, r, invalidValue("a bulk request needs Operations"))
		return
	}
	seen := map[string]bool{}
	for i, op := range req.Operations {
		m := strings.ToUpper(op.Method)
		if m != "POST" && m != "PUT" && m != "PATCH" && m != "DELETE" {
			s.fail(w, r, invalidValue("operation %d: method %q is not POST, PUT, PATCH or DELETE", i+1, op.Method))
			return
		}
		req.Operations[i].Method = m
		if m == "POST" && op.BulkID == "" {
			s.fail(w, r, invalidValue("operation %d: a POST needs a bulkId (RFC 7644 §3.7)", i+1))
			return
		}
		if op.BulkID != "" {
			if seen[op.BulkID] {
				s.fail(w, r, invalidValue("operation %d: bulkId %q is used twice", i+1, op.BulkID))
				return
			}
			seen[op.BulkID] = true
		}
		if !strings.HasPrefix(op.Path, "/") {
			s.fail(w, r, invalidValue("operation %d: path %q must start with /", i+1, op.Path))
			return
		}
	}
	results := s.runBulk(r, req)
	writeJSON(w, http.StatusOK, map[string]any{"schemas": []string{SchemaBulkResponse}, "Operations": results})
}

// runBulk performs the operations in order; a run of creates that neither
// refer to nor are referred to by one another runs at once. An operation
// that refers to a later one waits for it; references that cannot be
// resolved (unknown, or a cycle) fail their operation with 409.
func (s *Server) runBulk(r *http.Request, req bulkRequest) []bulkResult {
	ops := req.Operations
	results := make([]*bulkResult, len(ops))
	ids := map[string]string{}  // bulkId → created id
	failed := map[string]bool{} // bulkIds whose operation failed
	byID := map[string]int{}    // bulkId → operation index
	for i, op := range ops {
		if op.BulkID != "" {
			byID[op.BulkID] = i
		}
	}
	errors := 0
	stop := func() bool { return req.FailOnErrors > 0 && errors >= req.FailOnErrors }
	refsOf := func(op bulkOpInput) []string {
		var out []string
		for _, m := range bulkRef.FindAllSubmatch(op.Data, -1) {
			out = append(out, string(m[1]))
		}
		if i := strings.Index(op.Path, "bulkId:"); i >= 0 {
			out = append(out, op.Path[i+len("bulkId:"):])
		}
		return out
	}
	// ready reports whether an operation's references are resolved; a
	// reference that never will be fails it.
	ready := func(i int) (bool, *bulkResult) {
		for _, ref := range refsOf(ops[i]) {
			if _, ok := ids[ref]; ok {
				continue
			}
			j, known := byID[ref]
			switch {
			case !known:
				return false, bulkError(ops[i], &Error{Status: 409, ScimType: "invalidValue", Detail: "bulkId " + strconv.Quote(ref) + " names no operation of this request"})
			case failed[ref]:
				return false, bulkError(ops[i], &Error{Status: 409, ScimType: "invalidValue", Detail: "bulkId " + strconv.Quote(ref) + " was not created: its operation failed"})
			case j == i:
				return false, bulkError(ops[i], &Error{Status: 409, ScimType: "invalidValue", Detail: "operation refers to its own bulkId"})
			}
			return false, nil
		}
		return true, nil
	}
	record := func(i int, res *bulkResult) {
		results[i] = res
		if ops[i].BulkID == "" {
			return
		}
		if res.Location != "" && res.Status[0] == '2' {
			ids[ops[i].BulkID] = res.Location[strings.LastIndex(res.Location, "/")+1:]
		} else {
			failed[ops[i].BulkID] = true
		}
	}
	for pass := 0; pass <= len(ops) && !stop(); pass++ {
		progressed := false
		for i := 0; i < len(ops) && !stop(); i++ {
			if results[i] != nil {
				continue
			}
			ok, res := ready(i)
			if res != nil {
				record(i, res)
				errors++
				progressed = true
				continue
			}
			if !ok {
				continue // waits for a later operation
			}
			wave := []int{i}
			if req.FailOnErrors == 0 && ops[i].Method == "POST" && len(refsOf(ops[i])) == 0 {
				for j := i + 1; j < len(ops) && len(wave) < bulkWave; j++ {
					if results[j] != nil || ops[j].Method != "POST" || ops[j].Path != ops[i].Path || len(refsOf(ops[j])) > 0 {
						break
					}
					wave = append(wave, j)
				}
			}
			out := make([]*bulkResult, len(wave))
			var wg sync.WaitGroup
			for k, j := range wave {
				wg.Add(1)
				go func() {
					defer wg.Done()
					out[k] = s.bulkOne(r, ops[j], ids)
				}()
			}
			wg.Wait()
			for k, j := range wave {
				record(j, out[k])
				if out[k].Status[0] != '2' {
					errors++
				}
			}
			i = wave[len(wave)-1]
			progressed = true
		}
		if !progressed {
			break
		}
	}
	var list []bulkResult
	for i, res := range results {
		if res == nil {
			if stop() {
				continue // not attempted: failOnErrors was reached (RFC 7644 §3.7.3)
			}
			res = bulkError(ops[i], &Error{Status: 409, ScimType: "invalidValue", Detail: "its bulkId references form a cycle"})
		}
		list = append(list, *res)
	}
	return list
}

func bulkError(op bulkOpInput, e *Error) *bulkResult {
	body := map[string]any{"schemas": []string{SchemaError}, "status": strconv.Itoa(e.Status), "detail": e.Detail}
	if e.ScimType != "" {
		body["scimType"] = e.ScimType
	}
	return &bulkResult{Method: op.Method, BulkID: op.BulkID, Status: strconv.Itoa(e.Status), Response: body}
}

// bulkOne performs one operation through the endpoint's own handlers, as
// if it had been sent alone: the same checks, the same transaction.
func (s *Server) bulkOne(r *http.Request, op bulkOpInput, ids map[string]string) *bulkResult {
	data := bulkRef.ReplaceAllFunc(op.Data, func(m []byte) []byte {
		return []byte(strconv.Quote(ids[string(m[len(`"bulkId:`):len(m)-1])]))
	})
	path := op.Path
	if i := strings.Index(path, "bulkId:"); i >= 0 {
		path = path[:i] + ids[path[i+len("bulkId:"):]]
	}
	u, err := url.Parse(path)
	if err == nil {
		u.Path = canonicalPath(u.Path)
	}
	if err != nil || u.Path == "/Bulk" {
		return bulkError(op, invalidValue("path %q is not a resource path", op.Path))
	}
	sub := r.Clone(r.Context())
	sub.Method, sub.URL, sub.RequestURI = op.Method, u, ""
	sub.Body, sub.ContentLength = io.NopCloser(bytes.NewReader(data)), int64(len(data))
	sub.Header = r.Header.Clone()
	sub.Header.Del("If-Match")
	if op.Version != "" {
		sub.Header.Set("If-Match", op.Version)
	}
	rec := &opRecorder{header: http.Header{}}
	s.mux.ServeHTTP(rec, sub)
	if rec.status == 0 {
		rec.status = 200
	}
	res := &bulkResult{Method: op.Method, BulkID: op.BulkID, Status: strconv.Itoa(rec.status)}
	res.Location = rec.header.Get("Location")
	if res.Location == "" && op.Method != "DELETE" && rec.status < 300 {
		res.Location = s.root(r) + path
	}
	res.Version = rec.header.Get("ETag")
	if rec.status >= 400 {
		var body map[string]any
		if json.Unmarshal(rec.body.Bytes(), &body) == nil {
			res.Response = body
		}
	}
	return res
}

// opRecorder is a ResponseWriter that keeps the answer of an operation.
type opRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *opRecorder) Header() http.Header { return w.header }
func (w *opRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = 200
	}
	return w.body.Write(b)
}
func (w *opRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
