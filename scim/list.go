// Listing: filter, sortBy/sortOrder (RFC 7644 §3.4.2.3), index paging
// (§3.4.2.4) and cursor paging (RFC 9865), by GET query or POST .search
// (§3.4.3).

package scim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/usersync/usersync"
)

// listQuery is what a list request asks for.
type listQuery struct {
	filter    string
	order     *usersync.Order
	start     int  // index paging: 1-based
	count     int  // page size
	cursor    bool // cursor paging (RFC 9865)
	after     *usersync.Position
	sortField string // the directory field sorted by (for the next cursor)
}

// sortFields map sortBy attribute paths (lower case) to directory fields.
var (
	userSortFields = map[string]string{"username": "username", "id": "id", "name.givenname": "firstName", "name.familyname": "lastName",
		"emails": "email", "emails.value": "email", "meta.created": "createdAt", "meta.lastmodified": "updatedAt", "active": "enabled", "externalid": "sourceId"}
	groupSortFields = map[string]string{"displayname": "name", "id": "id", "externalid": "alias", "meta.created": "createdAt", "meta.lastmodified": "updatedAt"}
)

// cursorState is what a cursor stands for: the order, and the position
// after the last row of the page it ends.
type cursorState struct {
	Field string `json:"f"`
	Desc  bool   `json:"d,omitempty"`
	Value any    `json:"v"`
	ID    int64  `json:"i"`
}

func invalidCursor(detail string) *Error {
	return &Error{Status: 400, ScimType: "invalidCursor", Detail: detail + " (RFC 9865)"}
}

// readList reads a list request's parameters; schema prefixes of sortBy
// are dropped.
// checkFilterSize refuses a filter over MaxFilter bytes, in a query or a
// search body alike.
func checkFilterSize(filter string) error {
	if len(filter) > MaxFilter {
		return &Error{Status: 400, ScimType: "invalidFilter", Detail: fmt.Sprintf("the filter has %d bytes; at most %d are accepted", len(filter), MaxFilter)}
	}
	return nil
}

func readList(q url.Values, sortFields map[string]string, defaultField string) (*listQuery, error) {
	lq := &listQuery{filter: q.Get("filter"), start: 1, count: DefaultPageSize, sortField: defaultField}
	if err := checkFilterSize(lq.filter); err != nil {
		return nil, err
	}
	if v := q.Get("count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, invalidValue("count must be an integer, not %q", v)
		}
		lq.count = min(max(n, 0), MaxResults)
	}
	if v := q.Get("sortBy"); v != "" {
		key := strings.ToLower(v)
		for _, uri := range []string{SchemaUser, SchemaGroup} {
			key = strings.TrimPrefix(key, strings.ToLower(uri)+":")
		}
		field, ok := sortFields[key]
		if !ok {
			return nil, invalidValue("sortBy %q is not supported; sort by one of %s", v, strings.Join(slices.Sorted(maps.Keys(sortFields)), ", "))
		}
		lq.order, lq.sortField = &usersync.Order{Field: field}, field
	}
	switch o := strings.ToLower(q.Get("sortOrder")); o {
	case "", "ascending":
	case "descending":
		if lq.order == nil {
			lq.order = &usersync.Order{Field: defaultField}
		}
		lq.order.Desc = true
	default:
		return nil, invalidValue("sortOrder must be ascending or descending, not %q", q.Get("sortOrder"))
	}
	if _, ok := q["cursor"]; ok {
		if q.Get("startIndex") != "" {
			return nil, invalidValue("cursor and startIndex cannot be used together (RFC 9865 §2)")
		}
		lq.cursor = true
		if c := q.Get("cursor"); c != "" {
			raw, err := base64.RawURLEncoding.DecodeString(c)
			var st cursorState
			if err != nil || json.Unmarshal(raw, &st) != nil {
				return nil, invalidCursor("the cursor is not one this service gave")
			}
			desc := lq.order != nil && lq.order.Desc
			if st.Field != lq.sortField || st.Desc != desc {
				return nil, invalidCursor("the cursor belongs to another sortBy or sortOrder")
			}
			lq.after = &usersync.Position{Value: st.Value, ID: st.ID}
		}
		return lq, nil
	}
	if v := q.Get("startIndex"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, invalidValue("startIndex must be an integer, not %q", v)
		}
		lq.start = max(n, 1) // below 1 means 1 (RFC 7644 §3.4.2.4)
	}
	return lq, nil
}

// nextCursor is the cursor after a page whose last row has sort value v
// and id id; "" when the page was the last.
func (lq *listQuery) nextCursor(full bool, v any, id int64) string {
	if !full {
		return ""
	}
	st := cursorState{Field: lq.sortField, Desc: lq.order != nil && lq.order.Desc, Value: v, ID: id}
	b, _ := json.Marshal(st)
	return base64.RawURLEncoding.EncodeToString(b)
}

// writePage answers a ListResponse: startIndex with index paging,
// nextCursor with cursor paging.
func (lq *listQuery) writePage(w http.ResponseWriter, total int, resources []map[string]any, next string) {
	if resources == nil {
		resources = []map[string]any{}
	}
	body := map[string]any{"schemas": []string{SchemaListResp}, "totalResults": total, "itemsPerPage": len(resources), "Resources": resources}
	if lq.cursor {
		if next != "" {
			body["nextCursor"] = next
		}
	} else {
		body["startIndex"] = lq.start
	}
	writeJSON(w, http.StatusOK, body)
}

// searchRequest is a POST …/.search body (RFC 7644 §3.4.3).
type searchRequest struct {
	Attributes         []string `json:"attributes"`
	ExcludedAttributes []string `json:"excludedAttributes"`
	Filter             string   `json:"filter"`
	SortBy             string   `json:"sortBy"`
	SortOrder          string   `json:"sortOrder"`
	StartIndex         *int     `json:"startIndex"`
	Count              *int     `json:"count"`
	Cursor             *string  `json:"cursor"`
}

// asQuery turns a search into the query a GET would carry, so that both
// take one path.
func (sr *searchRequest) asQuery() url.Values {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("attributes", strings.Join(sr.Attributes, ","))
	set("excludedAttributes", strings.Join(sr.ExcludedAttributes, ","))
	set("filter", sr.Filter)
	set("sortBy", sr.SortBy)
	set("sortOrder", sr.SortOrder)
	if sr.StartIndex != nil {
		q.Set("startIndex", strconv.Itoa(*sr.StartIndex))
	}
	if sr.Count != nil {
		q.Set("count", strconv.Itoa(*sr.Count))
	}
	if sr.Cursor != nil {
		q.Set("cursor", *sr.Cursor)
	}
	return q
}

// search serves POST /Users/.search and /Groups/.search through the list
// handler.
func (s *Server) search(list http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var sr searchRequest
		if err := readBody(r, &sr); err != nil {
			s.fail(w, r, err)
			return
		}
		r2 := r.Clone(r.Context())
		u := *r.URL
		u.RawQuery = sr.asQuery().Encode()
		r2.URL = &u
		list(w, r2)
	}
}

// rootSearch serves POST /.search: users, then groups, as one list. A
// filter that names attributes one resource type does not have selects
// none of that type; index paging only.
func (s *Server) rootSearch(w http.ResponseWriter, r *http.Request) {
	var sr searchRequest
	if err := readBody(r, &sr); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := checkFilterSize(sr.Filter); err != nil { // the per-type searches below skip invalid filters
		s.fail(w, r, err)
		return
	}
	if sr.Cursor != nil || sr.SortBy != "" {
		s.fail(w, r, invalidValue("a search at the root pages by index and is not sorted: search /Users/.search or /Groups/.search for cursors and sortBy"))
		return
	}
	start, count := 1, DefaultPageSize
	if sr.StartIndex != nil {
		start = max(*sr.StartIndex, 1)
	}
	if sr.Count != nil {
		count = min(max(*sr.Count, 0), MaxResults)
	}
	var resources []map[string]any
	total, skip := 0, start-1
	for _, kind := range []string{"Users", "Groups"} {
		q := sr.asQuery()
		q.Del("startIndex")
		q.Set("count", "0")
		r2 := r.Clone(r.Context())
		u := *r.URL
		u.RawQuery = q.Encode()
		r2.URL = &u
		n, err := s.countOf(r2, kind)
		if err != nil {
			if e, ok := err.(*Error); ok && e.ScimType == "invalidFilter" {
				continue // not this type's attributes
			}
			s.fail(w, r, err)
			return
		}
		total += n
		if skip >= n || len(resources) >= count {
			skip = max(skip-n, 0)
			continue
		}
		q.Set("startIndex", strconv.Itoa(skip+1))
		q.Set("count", strconv.Itoa(count-len(resources)))
		u.RawQuery = q.Encode()
		rec := &opRecorder{header: http.Header{}}
		if kind == "Users" {
			s.listUsers(rec, r2)
		} else {
			s.listGroups(rec, r2)
		}
		var page struct {
			Resources []map[string]any
		}
		if rec.status != 200 || json.Unmarshal(rec.body.Bytes(), &page) != nil {
			w.Header().Set("Content-Type", MediaType)
			w.WriteHeader(rec.status)
			w.Write(rec.body.Bytes())
			return
		}
		resources = append(resources, page.Resources...)
		skip = 0
	}
	writeList(w, start, total, resources)
}

// countOf counts the resources of a kind a request's filter selects.
func (s *Server) countOf(r *http.Request, kind string) (int, error) {
	rec := &opRecorder{header: http.Header{}}
	if kind == "Users" {
		s.listUsers(rec, r)
	} else {
		s.listGroups(rec, r)
	}
	var body struct {
		TotalResults int
		ScimType     string
		Detail       string
		Status       string
	}
	json.Unmarshal(rec.body.Bytes(), &body)
	if rec.status != 200 {
		return 0, &Error{Status: rec.status, ScimType: body.ScimType, Detail: body.Detail}
	}
	return body.TotalResults, nil
}
