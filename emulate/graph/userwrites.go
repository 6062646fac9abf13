// Writes: users, verified domains and licenses, as a user provisioner
// sends them (wire facts §6, §7).

package graph

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// SKU is a subscribed license of the tenant: its seats, and its plans.
type SKU struct {
	ID         string `json:"skuId"`
	PartNumber string `json:"skuPartNumber"`
	Enabled    int    `json:"enabled"` // prepaidUnits.enabled
	Plans      []Plan `json:"servicePlans,omitempty"`
	Status     string `json:"capabilityStatus,omitempty"`
}

// Plan is a service plan of a SKU.
type Plan struct {
	ID   string `json:"servicePlanId"`
	Name string `json:"servicePlanName"`
}

// AssignedLicense is a license a user holds.
type AssignedLicense struct {
	SkuID         string   `json:"skuId"`
	DisabledPlans []string `json:"disabledPlans"`
}

// SetDomains sets the tenant's verified domains (the first is the
// default). Without any, every domain is taken as verified.
func (t *Tenant) SetDomains(domains ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.domains = append([]string(nil), domains...)
}

// AddSKU subscribes the tenant to a license with seats.
func (t *Tenant) AddSKU(s SKU) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s.Status == "" {
		s.Status = "Enabled"
	}
	t.skus = append(t.skus, &s)
}

// consumed counts the seats of a SKU in use.
func (t *Tenant) consumed(skuID string) int {
	n := 0
	for _, u := range t.users {
		for _, l := range u.Licenses {
			if l.SkuID == skuID {
				n++
			}
		}
	}
	return n
}

// Consumed is consumed for tests and people: seats of a SKU (by part number) in use.
func (t *Tenant) Consumed(partNumber string) int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, s := range t.skus {
		if strings.EqualFold(s.PartNumber, partNumber) {
			return t.consumed(s.ID)
		}
	}
	return -1
}

// UserByUPN returns a user by userPrincipalName.
func (t *Tenant) UserByUPN(upn string) (User, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if u := t.userByUPN(upn); u != nil {
		return *u, true
	}
	return User{}, false
}

func (t *Tenant) userByUPN(upn string) *User {
	for _, u := range t.users {
		if strings.EqualFold(u.UserPrincipalName, upn) {
			return u
		}
	}
	return nil
}

// Deleted reports whether a user was deleted (and is restorable).
func (t *Tenant) Deleted(id string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	_, ok := t.deleted[id]
	return ok
}

func (t *Tenant) verified(upn string) bool {
	at := strings.LastIndexByte(upn, '@')
	if at <= 0 || at == len(upn)-1 {
		return false
	}
	if len(t.domains) == 0 {
		return true
	}
	for _, d := range t.domains {
		if strings.EqualFold(d, upn[at+1:]) {
			return true
		}
	}
	return false
}

func (s *Server) listDomains(w http.ResponseWriter) {
	s.tenant.mu.RLock()
	ds := append([]string(nil), s.tenant.domains...)
	s.tenant.mu.RUnlock()
	if len(ds) == 0 {
		ds = []string{s.tenant.ID}
	}
	items := make([]map[string]any, len(ds))
	for i, d := range ds {
		items[i] = map[string]any{"id": d, "isVerified": true, "isDefault": i == 0, "authenticationType": "Managed"}
	}
	writeJSON(w, 200, map[string]any{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#domains", "value": items})
}

func (s *Server) subscribedSKUs(w http.ResponseWriter) {
	t := s.tenant
	t.mu.RLock()
	items := make([]map[string]any, len(t.skus))
	for i, k := range t.skus {
		plans := make([]map[string]any, len(k.Plans))
		for j, p := range k.Plans {
			plans[j] = map[string]any{"servicePlanId": p.ID, "servicePlanName": p.Name, "provisioningStatus": "Success", "appliesTo": "User"}
		}
		items[i] = map[string]any{"id": t.ID + "_" + k.ID, "skuId": k.ID, "skuPartNumber": k.PartNumber, "capabilityStatus": k.Status,
			"appliesTo": "User", "consumedUnits": t.consumed(k.ID), "servicePlans": plans,
			"prepaidUnits": map[string]any{"enabled": k.Enabled, "suspended": 0, "warning": 0, "lockedOut": 0}}
	}
	t.mu.RUnlock()
	writeJSON(w, 200, map[string]any{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscribedSkus", "value": items})
}

// userWritable are the string properties a client may write.
var userWritable = map[string]bool{"userPrincipalName": true, "displayName": true, "givenName": true, "surname": true, "mail": true,
	"mailNickname": true, "usageLocation": true, "department": true, "jobTitle": true, "employeeId": true, "onPremisesImmutableId": true,
	"companyName": true, "officeLocation": true, "mobilePhone": true, "city": true, "country": true}

// setUserProp writes one string property; nil clears it.
func setUserProp(u *User, k string, v *string) {
	val := ""
	if v != nil {
		val = *v
	}
	switch k {
	case "userPrincipalName":
		u.UserPrincipalName = val
	case "displayName":
		u.DisplayName = val
	case "givenName":
		u.GivenName = val
	case "surname":
		u.Surname = val
	case "mail":
		u.Mail = v
	case "mailNickname":
		u.MailNickname = val
	case "usageLocation":
		u.UsageLocation = val
	case "department":
		u.Department = val
	case "jobTitle":
		u.JobTitle = val
	case "employeeId":
		u.EmployeeID = val
	case "onPremisesImmutableId":
		u.OnPremisesImmutableID = val
	default:
		if u.Other == nil {
			u.Other = map[string]string{}
		}
		if v == nil {
			delete(u.Other, k)
		} else {
			u.Other[k] = val
		}
	}
}

// decodeUser reads a user body: string properties (null clears), and
// accountEnabled and passwordProfile apart. An unknown property is Graph's
// 400.
func decodeUser(raw []byte) (props map[string]*string, enabled *bool, password *string, msg string) {
	var in map[string]json.RawMessage
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, nil, nil, "Invalid JSON: " + err.Error()
	}
	props = map[string]*string{}
	for k, v := range in {
		switch {
		case strings.HasPrefix(k, "@odata."): // the SDKs send @odata.type
		case k == "accountEnabled":
			var b bool
			if json.Unmarshal(v, &b) != nil {
				return nil, nil, nil, "Invalid value specified for property 'accountEnabled' of resource 'User'."
			}
			enabled = &b
		case k == "passwordProfile":
			var p struct {
				Password *string `json:"password"`
			}
			if json.Unmarshal(v, &p) != nil || p.Password == nil || *p.Password == "" {
				return nil, nil, nil, "Invalid value specified for property 'passwordProfile' of resource 'User'."
			}
			if len(*p.Password) < 8 {
				return nil, nil, nil, "The specified password does not comply with password complexity requirements. Please provide a different password."
			}
			password = p.Password
		case userWritable[k]:
			if string(v) == "null" {
				props[k] = nil
				continue
			}
			var s string
			if json.Unmarshal(v, &s) != nil {
				return nil, nil, nil, fmt.Sprintf("Invalid value specified for property '%s' of resource 'User'.", k)
			}
			props[k] = &s
		default:
			return nil, nil, nil, fmt.Sprintf("Property '%s' does not exist as a declared property or extension property.", k)
		}
	}
	return props, enabled, password, ""
}

func (t *Tenant) checkUPN(upn string, self string) (string, bool) {
	if !t.verified(upn) {
		return "The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization.", false
	}
	if o := t.userByUPN(upn); o != nil && o.ID != self {
		return "Another object with the same value for property userPrincipalName already exists.", false
	}
	return "", true
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request, raw []byte) {
	props, enabled, password, msg := decodeUser(raw)
	if msg != "" {
		graphError(w, 400, "Request_BadRequest", msg)
		return
	}
	for _, k := range []string{"displayName", "mailNickname", "userPrincipalName"} {
		if props[k] == nil || *props[k] == "" {
			graphError(w, 400, "Request_BadRequest", fmt.Sprintf("Invalid value specified for property '%s' of resource 'User'.", k))
			return
		}
	}
	if enabled == nil || password == nil {
		graphError(w, 400, "Request_BadRequest", "A value is required for the properties 'accountEnabled' and 'passwordProfile' of resource 'User'.")
		return
	}
	if bad := CheckMailNickname(*props["mailNickname"]); bad != "" {
		graphError(w, 400, "Request_BadRequest", "Invalid value specified for property 'mailNickname' of resource 'User': "+bad+".")
		return
	}
	t := s.tenant
	t.mu.Lock()
	if msg, ok := t.checkUPN(*props["userPrincipalName"], ""); !ok {
		t.mu.Unlock()
		graphError(w, 400, "Request_BadRequest", msg)
		return
	}
	u := &User{ID: newGUID(), AccountEnabled: *enabled}
	for k, v := range props {
		setUserProp(u, k, v)
	}
	t.users[u.ID] = u
	t.record(change{user: u.ID})
	body := userJSON(u, nil)
	t.mu.Unlock()
	w.Header().Set("Location", scheme(r)+"://"+r.Host+"/v1.0/users/"+u.ID)
	writeJSON(w, http.StatusCreated, body)
}

func (s *Server) patchUser(w http.ResponseWriter, id string, raw []byte) {
	props, enabled, _, msg := decodeUser(raw)
	if msg != "" {
		graphError(w, 400, "Request_BadRequest", msg)
		return
	}
	t := s.tenant
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.users[id]
	if u == nil {
		notFound(w, id)
		return
	}
	if v, ok := props["userPrincipalName"]; ok {
		if v == nil {
			graphError(w, 400, "Request_BadRequest", "Invalid value specified for property 'userPrincipalName' of resource 'User'.")
			return
		}
		if msg, ok := t.checkUPN(*v, id); !ok {
			graphError(w, 400, "Request_BadRequest", msg)
			return
		}
	}
	if v, ok := props["usageLocation"]; ok && v == nil && len(u.Licenses) > 0 {
		graphError(w, 400, "Request_BadRequest", "The usage location cannot be removed from a user with licenses.")
		return
	}
	for k, v := range props {
		setUserProp(u, k, v)
	}
	if enabled != nil {
		u.AccountEnabled = *enabled
	}
	t.record(change{user: id})
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) deleteUser(w http.ResponseWriter, id string) {
	t := s.tenant
	t.mu.Lock()
	u, ok := t.users[id]
	if ok {
		if t.deleted == nil {
			t.deleted = map[string]User{}
		}
		t.deleted[id] = *u
	}
	t.mu.Unlock()
	if !ok || !t.DeleteUser(id) {
		notFound(w, id)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) assignLicense(w http.ResponseWriter, id string, raw []byte) {
	var in struct {
		Add    *[]AssignedLicense `json:"addLicenses"`
		Remove *[]string          `json:"removeLicenses"`
	}
	if err := json.Unmarshal(raw, &in); err != nil || in.Add == nil || in.Remove == nil {
		graphError(w, 400, "Request_BadRequest", "Invalid request body: addLicenses and removeLicenses are both required.")
		return
	}
	t := s.tenant
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.users[id]
	if u == nil {
		notFound(w, id)
		return
	}
	if len(*in.Add) > 0 && u.UsageLocation == "" {
		graphError(w, 400, "Request_BadRequest", "License assignment cannot be done for user with invalid usage location.")
		return
	}
	held := map[string]int{}
	for i, l := range u.Licenses {
		held[l.SkuID] = i
	}
	for _, r := range *in.Remove {
		if _, ok := held[r]; !ok {
			graphError(w, 400, "Request_BadRequest", fmt.Sprintf("User does not have a corresponding license %s.", r))
			return
		}
	}
	for _, a := range *in.Add {
		var sku *SKU
		for _, k := range t.skus {
			if k.ID == a.SkuID {
				sku = k
			}
		}
		if sku == nil {
			graphError(w, 400, "Request_BadRequest", fmt.Sprintf("License %s does not correspond to a valid company License.", a.SkuID))
			return
		}
		for _, p := range a.DisabledPlans {
			found := false
			for _, sp := range sku.Plans {
				found = found || sp.ID == p
			}
			if !found {
				graphError(w, 400, "Request_BadRequest", fmt.Sprintf("Service plan %s is not part of license %s.", p, sku.PartNumber))
				return
			}
		}
		if _, ok := held[a.SkuID]; !ok && t.consumed(a.SkuID) >= sku.Enabled {
			graphError(w, 400, "Request_BadRequest", fmt.Sprintf("Subscription with SKU %s does not have any available licenses.", a.SkuID))
			return
		}
	}
	removed := map[string]bool{}
	for _, r := range *in.Remove {
		removed[r] = true
	}
	var next []AssignedLicense
	for _, l := range u.Licenses {
		if !removed[l.SkuID] {
			next = append(next, l)
		}
	}
	for _, a := range *in.Add {
		if _, ok := held[a.SkuID]; ok && !removed[a.SkuID] {
			for j := range next {
				if next[j].SkuID == a.SkuID {
					next[j].DisabledPlans = a.DisabledPlans
				}
			}
			continue
		}
		next = append(next, a)
	}
	sort.Slice(next, func(i, j int) bool { return next[i].SkuID < next[j].SkuID })
	u.Licenses = next
	t.record(change{user: id})
	writeJSON(w, 200, userJSON(u, nil))
}

func nonNilStr(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// UsersByUPN returns the tenant's users by lower-case userPrincipalName.
func (t *Tenant) UsersByUPN() map[string][]User {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := map[string][]User{}
	for _, u := range t.users {
		k := strings.ToLower(u.UserPrincipalName)
		out[k] = append(out[k], *u)
	}
	return out
}
