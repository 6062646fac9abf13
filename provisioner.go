package usersync

import (
	"context"
	"strings"
	"time"
)

// Naming model of outbound provisioners (Grouper's): a group's or folder's
// display extension and a folder's description are kept as attributes of
// these names; a display extension defaults to the name's last part.
const (
	AttrDisplayExtension = "displayExtension"
	AttrDescription      = "description"
)

// Defaults of a group provisioner (Grouper's Azure provisioner's).
const (
	DefaultSyncAttribute = "etc:attribute:office365:o365Sync"
	DefaultIDAttribute   = "uid"
	DefaultRemoteIDAttr  = "etc:attribute:office365:o365Id"
	DefaultQuartzCron    = "0,5,10,15,20,25,30,35,40,45,50,55 * * * * ?"
	DefaultMaxFailures   = 5
)

// ProvisionerGroups is the kind of a provisioner that pushes marked groups
// and their members to Entra ID.
const ProvisionerGroups = "groups"

// Provisioner is a named outbound provisioner, kept in the directory. Its
// client secret is kept apart, sealed (see ProvisionerService).
type Provisioner struct {
	Name      string            `json:"name"`
	Kind      string            `json:"kind"`
	Config    ProvisionerConfig `json:"config"`
	CreatedAt time.Time         `json:"createdAt"`
	UpdatedAt time.Time         `json:"updatedAt"`
	Version   int64             `json:"version"`
}

// ProvisionerConfig holds the settings of a group provisioner, named as in
// Grouper's changeLog.consumer.NAME.* properties.
type ProvisionerConfig struct {
	TenantID         string `json:"tenantId"`
	ClientID         string `json:"clientId"`
	SyncAttribute    string `json:"syncAttributeName"` // the marker on a group or folder
	Domain           string `json:"domain,omitempty"`
	IDAttribute      string `json:"idAttribute"`
	UPNAttribute     string `json:"upnAttribute,omitempty"`
	GroupJexl        string `json:"groupJexl,omitempty"`
	MailNicknameJexl string `json:"mailNicknameJexl,omitempty"`
	DescriptionJexl  string `json:"descriptionJexl,omitempty"`
	SubjectJexl      string `json:"subjectJexl,omitempty"`
	GroupType        string `json:"groupType"`            // Security or Unified
	Visibility       string `json:"visibility,omitempty"` // Unified: Public, Private or HiddenMembership
	ProxyType        string `json:"proxyType,omitempty"`  // http or socks
	ProxyHost        string `json:"proxyHost,omitempty"`
	ProxyPort        int    `json:"proxyPort,omitempty"`
	QuartzCron       string `json:"quartzCron"`
	RetryOnError     bool   `json:"retryOnError"`
	AuthorityURL     string `json:"authorityUrl,omitempty"`
	GraphURL         string `json:"graphUrl,omitempty"`
	// RemoteIDAttribute is the group attribute that keeps the Azure group
	// id; one per provisioner, so a group can be pushed to two tenants.
	RemoteIDAttribute string `json:"remoteIdAttribute"`
	MaxFailures       int    `json:"maxFailures"` // failures before a group is quarantined
	// WriteQuota writes per WriteWindowSeconds is Graph's write quota per
	// app and tenant that writes are paced under (0: Graph's, 3,000 per
	// 150 s); a tenant with another quota sets it here.
	WriteQuota         int `json:"writeQuota,omitempty"`
	WriteWindowSeconds int `json:"writeWindowSeconds,omitempty"`
	// Users is the configuration of a user provisioner (kind users).
	Users *UserProvisioning `json:"users,omitempty"`
}

// Normalize fills the defaults of a provisioner named name.
func (c *ProvisionerConfig) Normalize(name string) {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&c.SyncAttribute, DefaultSyncAttribute)
	def(&c.IDAttribute, DefaultIDAttribute)
	def(&c.GroupType, "Security")
	def(&c.QuartzCron, DefaultQuartzCron)
	remote := DefaultRemoteIDAttr
	if name != "o365" {
		remote += ":" + name
	}
	def(&c.RemoteIDAttribute, remote)
	if c.MaxFailures == 0 {
		c.MaxFailures = DefaultMaxFailures
	}
	if c.GroupType == "Unified" && c.Visibility == "" {
		c.Visibility = "Public"
	}
	if c.Users != nil {
		c.Users.Normalize()
	}
}

// Validate reports the first problem with a provisioner's settings (its
// expressions and schedule are checked where they are compiled).
func (p *Provisioner) Validate() error {
	c := p.Config
	switch {
	case p.Name == "" || strings.ContainsAny(p.Name, " \t\n:/") || len(p.Name) > 64:
		return Errorf(EINVALID, "provisioner name %q must be 1–64 characters without spaces, ':' or '/'", p.Name)
	case p.Kind != ProvisionerGroups && p.Kind != ProvisionerUsers:
		return Errorf(EINVALID, "provisioner %s: kind %q is not %s or %s", p.Name, p.Kind, ProvisionerGroups, ProvisionerUsers)
	case c.WriteQuota < 0 || c.WriteWindowSeconds < 0:
		return Errorf(EINVALID, "provisioner %s: writeQuota and writeWindowSeconds must not be negative (0: Graph's quota, 3,000 writes per 150 s)", p.Name)
	case p.Kind == ProvisionerUsers && c.Users == nil:
		return Errorf(EINVALID, "provisioner %s: a user provisioner needs its settings (scope roles, domain)", p.Name)
	case p.Kind == ProvisionerUsers:
		if c.TenantID == "" || c.ClientID == "" {
			return Errorf(EINVALID, "provisioner %s: tenantId and clientId are needed", p.Name)
		}
		return c.Users.Validate(p.Name, c.Domain)
	case c.TenantID == "" || strings.HasPrefix(c.TenantID, "@"):
		return Errorf(EINVALID, "provisioner %s: tenantId is missing", p.Name)
	case c.ClientID == "" || strings.HasPrefix(c.ClientID, "@"):
		return Errorf(EINVALID, "provisioner %s: clientId is missing", p.Name)
	case c.GroupType != "Security" && c.GroupType != "Unified":
		return Errorf(EINVALID, "provisioner %s: groupType %q is not Security or Unified", p.Name, c.GroupType)
	case c.GroupType == "Security" && c.Visibility != "" && c.Visibility != "Public":
		return Errorf(EINVALID, "provisioner %s: visibility %q applies to Unified groups only", p.Name, c.Visibility)
	case c.Visibility != "" && c.Visibility != "Public" && c.Visibility != "Private" && c.Visibility != "HiddenMembership":
		return Errorf(EINVALID, "provisioner %s: visibility %q is not Public, Private or HiddenMembership", p.Name, c.Visibility)
	case c.ProxyType != "" && c.ProxyType != "http" && c.ProxyType != "socks":
		return Errorf(EINVALID, "provisioner %s: proxyType %q is not http or socks", p.Name, c.ProxyType)
	case c.ProxyType != "" && (c.ProxyHost == "" || c.ProxyPort <= 0 || c.ProxyPort > 65535):
		return Errorf(EINVALID, "provisioner %s: a proxy needs proxyHost and a proxyPort between 1 and 65535", p.Name)
	case c.SyncAttribute == c.RemoteIDAttribute:
		return Errorf(EINVALID, "provisioner %s: the marker and the remote id attribute must differ", p.Name)
	}
	return nil
}

// ProvisionerItem is what a provisioner keeps of one group that failed:
// how often, the last error, when to try again, and whether it gave up.
type ProvisionerItem struct {
	Provisioner string    `json:"provisioner"`
	GroupID     int64     `json:"groupId"`
	GroupName   string    `json:"groupName"`
	Failures    int       `json:"failures"`
	LastError   string    `json:"lastError"`
	NextAttempt time.Time `json:"nextAttempt"`
	Quarantined bool      `json:"quarantined"`
}

// Link is what a provisioner keeps of one directory object it writes: the
// remote object it is written to, and in what state.
type Link struct {
	Object   string `json:"object"` // group or user
	ID       int64  `json:"id"`     // the directory object's id (never given to another object)
	Name     string `json:"name"`
	RemoteID string `json:"remoteId"`
	State    string `json:"state"` // linked, unmarked (kept, not followed), failing, quarantined; users: active, suspended, deleted
	Detail   string `json:"detail,omitempty"`
}

// Hold is what a provisioner's guard holds back for an administrator: a
// mass deprovision (What "deprovision"), with the users it names.
type Hold struct {
	Provisioner string    `json:"provisioner"`
	What        string    `json:"what"`
	Count       int       `json:"count"`
	Reason      string    `json:"reason"`
	Users       []string  `json:"users"`
	Since       time.Time `json:"since"`
}

// ProvisionerService stores provisioners and their per-group state. The
// cursor of a provisioner in the change log is the ChangeLog cursor named
// ProvisionerCursor(name).
type ProvisionerService interface {
	// CreateProvisioner stores p with its client secret (sealed); ECONFLICT
	// when the name is taken.
	CreateProvisioner(ctx context.Context, p *Provisioner, secret string) error
	// FindProvisioner returns a provisioner or ENOTFOUND.
	FindProvisioner(ctx context.Context, name string) (*Provisioner, error)
	FindProvisioners(ctx context.Context) ([]*Provisioner, error)
	// UpdateProvisioner stores p over the provisioner of its name; a
	// non-nil secret replaces the client secret.
	UpdateProvisioner(ctx context.Context, p *Provisioner, secret *string) error
	// DeleteProvisioner removes a provisioner, its items and its cursor.
	DeleteProvisioner(ctx context.Context, name string) error
	// ProvisionerSecret returns the client secret, unsealed.
	ProvisionerSecret(ctx context.Context, name string) (string, error)
	// ProvisionerItems lists a provisioner's failing and quarantined groups.
	ProvisionerItems(ctx context.Context, name string) ([]ProvisionerItem, error)
	SaveProvisionerItem(ctx context.Context, it ProvisionerItem) error
	DeleteProvisionerItem(ctx context.Context, name string, groupID int64) error
	// SaveHold records what a guard holds back (Since kept while held);
	// ClearHold forgets it; Holds lists a provisioner's.
	SaveHold(ctx context.Context, h Hold) error
	ClearHold(ctx context.Context, provisioner, what string) error
	Holds(ctx context.Context, provisioner string) ([]Hold, error)
	// MemberLinks returns what a group provisioner learnt of these users
	// (MemberLink), by user id; SaveMemberLinks records it (replacing);
	// ForgetMemberLinks drops the links to these remote objects, or every
	// link of the provisioner when remoteIDs is nil.
	MemberLinks(ctx context.Context, provisioner string, userIDs []int64) (map[int64]MemberLink, error)
	SaveMemberLinks(ctx context.Context, provisioner string, links []MemberLink) error
	ForgetMemberLinks(ctx context.Context, provisioner string, remoteIDs []string) error
}

// MemberLink is what a group provisioner keeps of a member it wrote: the
// principal name it looked the directory user up by, and the remote
// object (an Entra user) it found. It holds while the user's principal
// name is the same; a user deleted from the directory takes it along.
type MemberLink struct {
	UserID    int64  `json:"userId"`
	Principal string `json:"principal"`
	RemoteID  string `json:"remoteId"`
}

// ProvisionerCursor names a provisioner's cursor in the change log.
func ProvisionerCursor(name string) string { return "provisioner:" + name }

// CoveredBy says why a provisioner whose marker is attr covers g: the
// group carries the marker, or a folder above it does ("" when neither).
// folder reads a folder by path, nil when there is none.
func CoveredBy(attr string, g *Group, folder func(path string) (*Folder, error)) (string, error) {
	if _, ok := g.Attributes[attr]; ok {
		return "the group carries " + attr, nil
	}
	for _, path := range g.Folders() {
		f, err := folder(path)
		if err != nil {
			return "", err
		}
		if f != nil {
			if _, ok := f.Attributes[attr]; ok {
				return "folder " + path + " carries " + attr, nil
			}
		}
	}
	return "", nil
}
