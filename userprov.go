package usersync

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"sort"
	"strconv"
	"strings"
	"time"
)

// User provisioning (seed 004, OneLogin's Office 365 connector): roles say
// which users an app is for, mappings give roles by condition, and a user
// provisioner creates, updates and deprovisions the users of its scope
// roles in one Entra tenant, with licenses and groups by rules.

// ProvisionerUsers is the kind of a provisioner that pushes users into an
// Entra tenant (Office 365).
const ProvisionerUsers = "users"

// Change kinds of the user provisioning model.
const (
	RoleCreated      ChangeKind = "role.created"
	RoleDeleted      ChangeKind = "role.deleted"
	RoleAssigned     ChangeKind = "role.assigned"   // object: the user; fields: role
	RoleUnassigned   ChangeKind = "role.unassigned" // object: the user; fields: role
	MappingCreated   ChangeKind = "mapping.created"
	MappingUpdated   ChangeKind = "mapping.updated"
	MappingDeleted   ChangeKind = "mapping.deleted"
	ApprovalDecided  ChangeKind = "approval.decided" // object: the user; fields: action, status
	ObjectRole                  = "role"
	ObjectMapping               = "mapping"
	DefaultMassLimit            = 50 // deprovisions a run may make before it holds them
	DefaultMassShare            = 20 // … and the share of provisioned users, in percent
)

// Role is a named set of users an app is for.
type Role struct {
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
	Users       int       `json:"users"` // users holding it by hand (read by FindRoles)
}

// ValidateName checks the name of a role, mapping or rule.
func ValidateName(what, name string) error {
	if name == "" || len(name) > 128 || strings.TrimSpace(name) != name || strings.ContainsAny(name, "\t\n\r") {
		return Errorf(EINVALID, "%s name %q must be 1–128 characters, without tabs, line breaks or surrounding spaces", what, name)
	}
	return ValidateText(what+" "+quote(name), map[string]string{"name": name})
}

// Mapping gives roles to the users its condition holds for. Mappings are
// evaluated in Position order whenever roles are read, so they apply by
// themselves when a user, a membership or a mapping changes.
type Mapping struct {
	Name      string    `json:"name"`
	Position  int       `json:"position"`
	Condition string    `json:"condition"` // the condition language (package rules)
	Roles     []string  `json:"roles"`     // set role …
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	Version   int64     `json:"version"`
}

// License is a subscribed SKU to assign, by part number, with the service
// plans to leave off.
type License struct {
	SKU           string   `json:"sku"`
	DisabledPlans []string `json:"disabledPlans,omitempty"`
}

// UserRule is one rule of a user provisioner: for the users in scope its
// condition holds for, set these licenses and Entra groups.
type UserRule struct {
	Name      string    `json:"name"`
	Condition string    `json:"condition"`
	Licenses  []License `json:"licenses,omitempty"`
	Groups    []string  `json:"groups,omitempty"` // Entra group display names (or ids)
}

// Entitlements are a tenant's licenses and groups, read by a refresh so
// that rules can name them.
type Entitlements struct {
	RefreshedAt time.Time  `json:"refreshedAt"`
	SKUs        []SKU      `json:"skus"`
	Groups      []RemoteID `json:"groups"`
}

// SKU is a subscribed license of a tenant.
type SKU struct {
	ID         string   `json:"skuId"`
	PartNumber string   `json:"skuPartNumber"`
	Enabled    int      `json:"enabled"`
	Consumed   int      `json:"consumed"`
	Plans      []string `json:"plans,omitempty"` // service plan names
	PlanIDs    []string `json:"planIds,omitempty"`
}

// Free is how many seats are left.
func (s SKU) Free() int { return max(0, s.Enabled-s.Consumed) }

// RemoteID names an object of the tenant.
type RemoteID struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// UserProvisioning is the configuration of a user provisioner.
type UserProvisioning struct {
	ScopeRoles  []string          `json:"scopeRoles"`
	Approve     []string          `json:"approve,omitempty"` // actions an administrator approves: create, update, suspend, delete
	Deprovision string            `json:"deprovision"`       // delete, suspend or nothing
	Parameters  map[string]string `json:"parameters"`        // Entra user property → expression
	ImmutableID string            `json:"immutableIdAttribute"`
	Rules       []UserRule        `json:"rules,omitempty"`
	// MassLimit and MassShare: a run that would suspend or delete more
	// than MassLimit users and more than MassShare percent of those it
	// provisioned holds them for an administrator.
	MassLimit int `json:"massLimit"`
	MassShare int `json:"massShare"`
	// ApprovalExpiryHours is how long an approval stands, pending or
	// approved and not yet sent, before a run asks again (default 168: 7 days).
	ApprovalExpiryHours int           `json:"approvalExpiryHours,omitempty"`
	Entitlements        *Entitlements `json:"entitlements,omitempty"`
}

// Actions that may need approval.
var ApprovableActions = []string{"create", "adopt", "update", "suspend", "delete"}

// Deprovision policies.
const (
	DeprovisionDelete  = "delete"
	DeprovisionSuspend = "suspend"
	DeprovisionNothing = "nothing"
)

// DefaultImmutableIDAttr keeps a user's ImmutableID.
const DefaultImmutableIDAttr = "ImmutableID"

// UserParameters are the Entra user properties a provisioner may write,
// in the order they are shown.
var UserParameters = []string{"userPrincipalName", "displayName", "givenName", "surname", "mail", "mailNickname",
	"usageLocation", "department", "jobTitle", "employeeId", "companyName", "officeLocation", "mobilePhone", "city", "country"}

// DefaultUserParameters are the expressions used for parameters not set
// (JEXL over user: its fields, and user.attributes).
var DefaultUserParameters = map[string]string{
	"userPrincipalName": `user.email`,
	"displayName":       `user.displayName`,
	"givenName":         `user.firstName`,
	"surname":           `user.lastName`,
	"mail":              `user.email`,
	"mailNickname":      `user.mailNickname`,
	"usageLocation":     `user.attributes.usageLocation`,
	"department":        `user.attributes.department`,
	"jobTitle":          `user.attributes.jobTitle`,
}

// NormalizeUsers fills the defaults of a user provisioner.
func (c *UserProvisioning) Normalize() {
	if c.Deprovision == "" {
		c.Deprovision = DeprovisionSuspend
	}
	if c.ImmutableID == "" {
		c.ImmutableID = DefaultImmutableIDAttr
	}
	if c.MassLimit == 0 {
		c.MassLimit = DefaultMassLimit
	}
	if c.MassShare == 0 {
		c.MassShare = DefaultMassShare
	}
	if c.ApprovalExpiryHours == 0 {
		c.ApprovalExpiryHours = int(DefaultApprovalExpiry / time.Hour)
	}
	if c.Parameters == nil {
		c.Parameters = map[string]string{}
	}
}

// NeedsApproval reports whether an action waits for an administrator. An
// adoption (taking over an Entra user that has the UPN) waits when adopt
// or create does.
func (c *UserProvisioning) NeedsApproval(action string) bool {
	for _, a := range c.Approve {
		if a == action || (action == "adopt" && a == "create") {
			return true
		}
	}
	return false
}

// ApprovalExpiry is how long an approval stands.
func (c *UserProvisioning) ApprovalExpiry() time.Duration {
	if c.ApprovalExpiryHours <= 0 {
		return DefaultApprovalExpiry
	}
	return time.Duration(c.ApprovalExpiryHours) * time.Hour
}

// Validate reports the first problem with a user provisioner's settings
// (conditions and expressions are checked where they are compiled).
func (c *UserProvisioning) Validate(name, domain string) error {
	switch {
	case domain == "" || strings.ContainsAny(domain, "@ /"):
		return Errorf(EINVALID, "provisioner %s: --domain names the verified domain of users' principal names and mail (like contoso.com)", name)
	case len(c.ScopeRoles) == 0:
		return Errorf(EINVALID, "provisioner %s: name at least one --scope-role: the role(s) that put a user in scope", name)
	case c.Deprovision != DeprovisionDelete && c.Deprovision != DeprovisionSuspend && c.Deprovision != DeprovisionNothing:
		return Errorf(EINVALID, "provisioner %s: --deprovision %q is not delete, suspend or nothing", name, c.Deprovision)
	case c.MassLimit < 0 || c.MassShare < 0 || c.MassShare > 100:
		return Errorf(EINVALID, "provisioner %s: the mass-deprovision limit must be positive and its share 1–100 %%", name)
	}
	for _, a := range c.Approve {
		ok := false
		for _, k := range ApprovableActions {
			ok = ok || a == k
		}
		if !ok {
			return Errorf(EINVALID, "provisioner %s: --approve %q is not one of %s", name, a, strings.Join(ApprovableActions, ", "))
		}
	}
	for p := range c.Parameters {
		ok := false
		for _, k := range UserParameters {
			ok = ok || p == k
		}
		if !ok {
			return Errorf(EINVALID, "provisioner %s: parameter %q is not an Entra user property usersync writes (%s)", name, p, strings.Join(UserParameters, ", "))
		}
	}
	seen := map[string]bool{}
	for _, r := range c.Rules {
		if err := ValidateName("rule", r.Name); err != nil {
			return err
		}
		if seen[strings.ToLower(r.Name)] {
			return Errorf(ECONFLICT, "provisioner %s: rule %q exists already", name, r.Name)
		}
		seen[strings.ToLower(r.Name)] = true
		if len(r.Licenses) == 0 && len(r.Groups) == 0 {
			return Errorf(EINVALID, "provisioner %s: rule %q sets no licenses and no groups", name, r.Name)
		}
	}
	return nil
}

// Provisioned is what a user provisioner keeps of one user it wrote to
// Entra: the Entra id, what it last sent, and failures.
type Provisioned struct {
	Provisioner string            `json:"provisioner"`
	UserID      int64             `json:"userId"`
	Username    string            `json:"username"`
	RemoteID    string            `json:"remoteId"`
	State       string            `json:"state"`    // active, suspended, deleted
	Sent        map[string]string `json:"sent"`     // properties as last written (see Props)
	SentJSON    string            `json:"-"`        // Sent as stored, decoded by Props when needed
	SentKey     string            `json:"-"`        // PropsKey(Sent): unchanged properties need no decoding
	Licenses    []string          `json:"licenses"` // SKU ids assigned by this provisioner
	Groups      []string          `json:"groups"`   // Entra group ids added by this provisioner
	Failures    int               `json:"failures"`
	LastError   string            `json:"lastError,omitempty"`
	NextAttempt time.Time         `json:"nextAttempt"`
	Quarantined bool              `json:"quarantined,omitempty"`
	UpdatedAt   time.Time         `json:"updatedAt"`
}

// Props returns the properties as last written, decoding them once.
func (p *Provisioned) Props() map[string]string {
	if p.Sent == nil && p.SentJSON != "" {
		json.Unmarshal([]byte(p.SentJSON), &p.Sent)
	}
	if p.Sent == nil {
		p.Sent = map[string]string{}
	}
	return p.Sent
}

// PropsKey is a short digest of properties, order aside.
func PropsKey(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := fnv.New64a()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write([]byte(m[k]))
		h.Write([]byte{0})
	}
	return strconv.FormatUint(h.Sum64(), 36)
}

// Provisioned user states.
const (
	StateActive    = "active"
	StateSuspended = "suspended"
	StateDeleted   = "deleted"
)

// Approval statuses.
const (
	ApprovalPending  = "pending"
	ApprovalApproved = "approved" // approved, not sent yet
	ApprovalUsed     = "used"     // approved and sent: it is never used again (see the provisioning log for its outcome)
	ApprovalRejected = "rejected" // not sent, however the provisioner is set, until it is reopened and approved
	ApprovalDropped  = "dropped"  // overtaken: the state changed before anyone decided
	ApprovalExpired  = "expired"  // not used within the provisioner's approval expiry
)

// approvalMoves are the decisions each status allows.
var approvalMoves = map[string][]string{
	ApprovalPending:  {ApprovalApproved, ApprovalRejected, ApprovalDropped, ApprovalExpired},
	ApprovalRejected: {ApprovalPending}, // reopened
	ApprovalApproved: {ApprovalUsed, ApprovalExpired, ApprovalDropped},
}

// CanMoveApproval reports whether an approval in status from may be moved
// to status to.
func CanMoveApproval(from, to string) bool {
	for _, s := range approvalMoves[from] {
		if s == to {
			return true
		}
	}
	return false
}

// DefaultApprovalExpiry is how long an approval stands, pending or
// approved, before a run asks again.
const DefaultApprovalExpiry = 7 * 24 * time.Hour

// Approval is an action that waits for an administrator.
type Approval struct {
	ID          int64     `json:"id"`
	Provisioner string    `json:"provisioner"`
	UserID      int64     `json:"userId"`
	Username    string    `json:"username"`
	Action      string    `json:"action"` // create, update, suspend, delete
	Reason      string    `json:"reason"`
	Detail      string    `json:"detail"` // what would be sent, for the administrator
	Key         string    `json:"-"`      // the planned state it was made for: a different plan overtakes it
	Status      string    `json:"status"`
	CreatedAt   time.Time `json:"createdAt"`
	LastSeen    time.Time `json:"lastSeen"` // the last run that planned it
	DecidedBy   string    `json:"decidedBy,omitempty"`
	DecidedAt   time.Time `json:"decidedAt,omitzero"`
	New         bool      `json:"-"` // CreateApproval made it (else it returned the one that stands)
}

// LogEntry is one line of a provisioning log: an action on one user (or,
// for a group provisioner, one group or membership), why, what came of it,
// and the properties it modified.
type LogEntry struct {
	ID          int64                  `json:"id"`
	Provisioner string                 `json:"provisioner"`
	Run         string                 `json:"run"`
	At          time.Time              `json:"at"`
	UserID      int64                  `json:"userId,omitempty"`
	Username    string                 `json:"username,omitempty"` // a group provisioner's: the member
	Group       string                 `json:"group,omitempty"`    // a group provisioner's: the group
	Action      string                 `json:"action"`
	Reason      string                 `json:"reason"`
	Status      string                 `json:"status"` // done, failed, pending-approval, held, skipped
	ErrorCode   string                 `json:"errorCode,omitempty"`
	Error       string                 `json:"error,omitempty"`
	Modified    map[string]FieldChange `json:"modified,omitempty"`
}

// LogFilter selects provisioning log entries (newest first).
type LogFilter struct {
	Provisioner string
	Username    string
	Group       string
	Run         string
	Status      string
	Limit       int
}

// RoleService stores roles, who holds them by hand, and mappings.
type RoleService interface {
	CreateRole(ctx context.Context, r *Role) error                   // ECONFLICT when taken
	FindRoles(ctx context.Context) ([]*Role, error)                  // by name
	DeleteRole(ctx context.Context, name string) error               // ENOTFOUND; ECONFLICT while a mapping sets it
	AssignRole(ctx context.Context, userID int64, role string) error // by hand; ECONFLICT when held already
	UnassignRole(ctx context.Context, userID int64, role string) error
	// UserRoles returns the roles each user holds by hand.
	UserRoles(ctx context.Context, userIDs []int64) (map[int64][]string, error)
	CreateMapping(ctx context.Context, m *Mapping) error // at the end of the order unless Position > 0
	FindMappings(ctx context.Context) ([]*Mapping, error)
	UpdateMapping(ctx context.Context, m *Mapping) error // at m.Version
	DeleteMapping(ctx context.Context, name string) error
}

// UserProvisioningService stores what user provisioners did and wait for.
type UserProvisioningService interface {
	ProvisionedUsers(ctx context.Context, provisioner string) (map[int64]*Provisioned, error)
	SaveProvisioned(ctx context.Context, ps ...*Provisioned) error // in one transaction
	// CreateApproval adds a pending approval (New set), unless one for the
	// same user and action with the same key is pending already, or was
	// rejected (it returns that one, a pending one with its LastSeen moved
	// on). A pending one of the same user and action with another key is
	// dropped: the state overtook it.
	CreateApproval(ctx context.Context, a *Approval) (*Approval, error)
	FindApprovals(ctx context.Context, provisioner, status string) ([]*Approval, error)
	FindApproval(ctx context.Context, id int64) (*Approval, error)
	// DecideApproval moves an approval to status: a pending one to
	// approved, rejected, dropped or expired; a rejected one back to
	// pending (reopened); an approved one to used or expired (see
	// CanMoveApproval); ECONFLICT for any other move.
	DecideApproval(ctx context.Context, id int64, status string) (*Approval, error)
	AppendLog(ctx context.Context, entries []LogEntry) error
	FindLog(ctx context.Context, f LogFilter) ([]LogEntry, error)
}
