package graph

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Delta pages: Graph's page sizes on delta vary and $top is refused; the
// emulator uses these fixed sizes, and splits a group's member list over
// several items (and pages) as Graph does for large groups.
const (
	deltaUserPage    = 200
	deltaGroupPage   = 4   // group items per page
	deltaMemberChunk = 250 // members@delta entries per group item
)

// deltaState is what the emulator's opaque $deltatoken and delta
// $skiptoken carry: the journal positions of the round and the original
// query, as the real tokens do.
type deltaState struct {
	// Instance and Tenant bind a token to the emulator process and tenant
	// that issued it: another process (restarted, perhaps with a changed
	// tenant file) or tenant answers 410, as Graph does for tokens it
	// cannot resume.
	Instance string `json:"n"`
	Tenant   string `json:"tn"`
	Epoch    int    `json:"e"`
	From     int64  `json:"f"` // changes after this seq; -1: initial round (everything)
	To       int64  `json:"t"` // up to this seq
	Offset   int    `json:"o,omitempty"`
	Issued   int64  `json:"i"` // unix seconds, for expiry
	Query    string `json:"q"` // $select and $filter of the first call
}

func (d deltaState) encode() string {
	b, _ := json.Marshal(d)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeDelta(tok string) (deltaState, error) {
	var d deltaState
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err == nil {
		err = json.Unmarshal(b, &d)
	}
	return d, err
}

// delta serves /users/delta and /groups/delta.
func (s *Server) delta(w http.ResponseWriter, r *http.Request, kind string) {
	q := r.URL.Query()
	for _, p := range []string{"$top", "$orderby", "$expand"} {
		if q.Has(p) {
			graphError(w, 400, "Request_UnsupportedQuery", fmt.Sprintf("Unsupported query parameter %s for delta.", p))
			return
		}
	}
	if p := unknownUserProp(selectSet(r)); p != "" && kind == "users" {
		badSelect(w, p)
		return
	}
	deltaTok := q.Get("$deltatoken")
	if deltaTok == "" {
		deltaTok = q.Get("$deltaToken")
	}
	skipTok := q.Get("$skiptoken")
	if skipTok == "" {
		skipTok = q.Get("$skipToken")
	}
	t := s.tenant
	t.mu.RLock()
	defer t.mu.RUnlock()
	now := t.seq()
	var st deltaState
	switch {
	case deltaTok == "latest":
		st = deltaState{Epoch: t.epoch, From: now, To: now, Issued: time.Now().Unix(), Query: originalQuery(q).Encode()}
		st.Instance, st.Tenant = s.instance, t.ID
		s.writeDeltaPage(w, r, kind, st, []map[string]any{}, true)
		return
	case deltaTok != "" || skipTok != "":
		tok := deltaTok + skipTok
		var err error
		if st, err = decodeDelta(tok); err != nil {
			graphError(w, 400, "Request_BadRequest", "Invalid delta or skip token.")
			return
		}
		if st.Instance != s.instance || st.Tenant != t.ID || st.Epoch != t.epoch || time.Since(time.Unix(st.Issued, 0)) > s.opts.DeltaTokenLifetime || st.To > now {
			orig, _ := url.ParseQuery(st.Query)
			w.Header().Set("Location", link(r, orig))
			graphError(w, http.StatusGone, "syncStateNotFound", "The sync state of the delta token has expired or is not found; start over with a full synchronization.")
			return
		}
		if deltaTok != "" { // a new round: from the token's position to now
			st = deltaState{Instance: s.instance, Tenant: t.ID, Epoch: t.epoch, From: st.To, To: now, Issued: time.Now().Unix(), Query: st.Query}
		}
	default:
		st = deltaState{Instance: s.instance, Tenant: t.ID, Epoch: t.epoch, From: -1, To: now, Issued: time.Now().Unix(), Query: originalQuery(q).Encode()}
	}
	orig, _ := url.ParseQuery(st.Query)
	sel := map[string]bool(nil)
	if v := orig.Get("$select"); v != "" {
		sel = map[string]bool{"id": true}
		for _, f := range strings.Split(v, ",") {
			sel[strings.TrimSpace(f)] = true
		}
	}
	var items []map[string]any
	size := deltaUserPage
	if kind == "users" {
		if orig.Get("$filter") != "" {
			graphError(w, 400, "Request_UnsupportedQuery", "The emulator supports $filter on groups/delta only.")
			return
		}
		items = t.userDelta(st, sel)
	} else {
		ids, err := idFilter(orig.Get("$filter"))
		if err != nil {
			graphError(w, 400, "Request_UnsupportedQuery", err.Error())
			return
		}
		items = t.groupDelta(st, sel, ids)
		size = deltaGroupPage
	}
	if st.Offset > len(items) {
		graphError(w, 400, "Request_BadRequest", "Invalid skip token.")
		return
	}
	end := min(st.Offset+size, len(items))
	pageItems := items[st.Offset:end]
	st.Offset = end
	s.writeDeltaPage(w, r, kind, st, pageItems, end == len(items))
}

func originalQuery(q url.Values) url.Values {
	out := url.Values{}
	for _, k := range []string{"$select", "$filter"} {
		if v := q.Get(k); v != "" {
			out.Set(k, v)
		}
	}
	return out
}

func (s *Server) writeDeltaPage(w http.ResponseWriter, r *http.Request, kind string, st deltaState, items []map[string]any, last bool) {
	body := map[string]any{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#" + kind + "(delta)", "value": nonNil(items)}
	if last {
		body["@odata.deltaLink"] = link(r, url.Values{"$deltatoken": {deltaState{Instance: st.Instance, Tenant: st.Tenant, Epoch: st.Epoch, From: st.To, To: st.To, Issued: st.Issued, Query: st.Query}.encode()}})
	} else {
		body["@odata.nextLink"] = link(r, url.Values{"$skiptoken": {st.encode()}})
	}
	writeJSON(w, 200, body)
}

// link is an absolute URL to the request's path with query q.
func link(r *http.Request, q url.Values) string {
	return (&url.URL{Scheme: scheme(r), Host: r.Host, Path: r.URL.Path, RawQuery: q.Encode()}).String()
}

// userDelta lists users for a round: all of them in an initial round,
// those changed in the journal range otherwise (deleted ones as @removed).
func (t *Tenant) userDelta(st deltaState, sel map[string]bool) []map[string]any {
	var ids []string
	if st.From < 0 {
		for id := range t.users {
			ids = append(ids, id)
		}
		sort.Strings(ids)
	} else {
		seen := map[string]bool{}
		for _, c := range t.journal[st.From:st.To] {
			if c.user != "" && !seen[c.user] {
				seen[c.user] = true
				ids = append(ids, c.user)
			}
		}
	}
	items := make([]map[string]any, 0, len(ids))
	for _, id := range ids {
		if u, ok := t.users[id]; ok {
			j := userJSON(u, sel)
			delete(j, "@odata.type")
			items = append(items, j)
		} else {
			items = append(items, map[string]any{"id": id, "@removed": map[string]any{"reason": "deleted"}})
		}
	}
	return items
}

// groupDelta lists groups for a round, each with members@delta when
// members is selected: every member in an initial round, the added and
// removed ones otherwise. Long member lists are split over several items.
func (t *Tenant) groupDelta(st deltaState, sel map[string]bool, only map[string]bool) []map[string]any {
	type entry struct {
		id      string
		removed bool
	}
	var order []string
	members := map[string][]entry{}
	touched := map[string]bool{}
	if st.From < 0 {
		for _, gid := range t.order {
			if only == nil || only[gid] {
				order = append(order, gid)
				for _, m := range t.groups[gid].Members {
					members[gid] = append(members[gid], entry{id: m})
				}
			}
		}
	} else {
		last := map[string]map[string]int{} // group → member → index in members[group]
		for _, c := range t.journal[st.From:st.To] {
			if c.group == "" || (only != nil && !only[c.group]) {
				continue
			}
			if !touched[c.group] {
				touched[c.group] = true
				order = append(order, c.group)
				last[c.group] = map[string]int{}
			}
			if c.member == "" {
				continue
			}
			if i, ok := last[c.group][c.member]; ok {
				members[c.group][i].removed = c.removed // the latest state wins
			} else {
				last[c.group][c.member] = len(members[c.group])
				members[c.group] = append(members[c.group], entry{c.member, c.removed})
			}
		}
	}
	var items []map[string]any
	for _, gid := range order {
		g, ok := t.groups[gid]
		if !ok {
			items = append(items, map[string]any{"id": gid, "@removed": map[string]any{"reason": "deleted"}})
			continue
		}
		base := groupJSON(g, sel)
		delete(base, "@odata.type")
		base["id"] = gid
		if sel != nil && !sel["members"] {
			items = append(items, base)
			continue
		}
		list := members[gid]
		for start := 0; start == 0 || start < len(list); start += deltaMemberChunk {
			item := map[string]any{}
			for k, v := range base {
				item[k] = v
			}
			chunk := make([]map[string]any, 0, deltaMemberChunk)
			for _, e := range list[start:min(start+deltaMemberChunk, len(list))] {
				typ := "#microsoft.graph.user"
				if _, isGroup := t.groups[e.id]; isGroup {
					typ = "#microsoft.graph.group"
				}
				m := map[string]any{"@odata.type": typ, "id": e.id}
				if e.removed {
					m["@removed"] = map[string]any{"reason": "deleted"}
				}
				chunk = append(chunk, m)
			}
			item["members@delta"] = chunk
			items = append(items, item)
		}
	}
	return items
}

// idFilter parses groups delta's only filter: id eq '…' [or id eq '…']….
func idFilter(filter string) (map[string]bool, error) {
	if strings.TrimSpace(filter) == "" {
		return nil, nil
	}
	out := map[string]bool{}
	for _, clause := range strings.Split(filter, " or ") {
		id, ok, err := eqFilter(clause, "id")
		if err != nil || !ok {
			return nil, fmt.Errorf("Invalid filter clause %q: groups delta supports only \"id eq '…' or id eq '…'\"", strings.TrimSpace(clause))
		}
		out[id] = true
	}
	return out, nil
}
