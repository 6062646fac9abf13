package usersync

import (
	"context"
	"encoding/json"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// UserType is the kind of account a user has in the directory.
type UserType string

const (
	UserRegular       UserType = "regular"
	UserPowerUser     UserType = "power_user"
	UserAdministrator UserType = "administrator"
)

// UserTypes lists the valid user types in the order they are shown.
var UserTypes = []UserType{UserRegular, UserPowerUser, UserAdministrator}

// AuthMethod is how a user signs in.
type AuthMethod string

const (
	AuthPassword AuthMethod = "password"
	AuthSSO      AuthMethod = "sso"
)

// SourceLocal owns users and groups made by hand (CLI, UI, API).
const SourceLocal = "local"

// MaxUsernameLength bounds usernames (a userPrincipalName can reach 113
// characters; the SCIM endpoint applies its own, stricter limit).
const MaxUsernameLength = 256

// User is a person in the directory. Usernames are unique, compared
// case-insensitively.
type User struct {
	ID         int64             `json:"id"`
	Username   string            `json:"username"`
	Email      string            `json:"email"`
	FirstName  string            `json:"firstName"`
	LastName   string            `json:"lastName"`
	Type       UserType          `json:"type"`
	Enabled    bool              `json:"enabled"`
	AuthMethod AuthMethod        `json:"authMethod"`
	Source     string            `json:"source"`   // who owns the user: "local", "scim", "o365:<tenant>", "okta:<host>"
	SourceID   string            `json:"sourceId"` // the user's id at that source
	Attributes map[string]string `json:"attributes"`
	// SoftDeleted marks a user a SCIM client deactivated while
	// SCIM_REMOVE_USER_ON_SOFT_DELETE is N: disabled, its username
	// prefixed. Only that transition sets it, and reactivation or a new
	// name from the user's source clears it; a user disabled any other way
	// is not soft-deleted.
	SoftDeleted bool `json:"softDeleted,omitempty"`
	// Profile is what a SCIM client sent beyond the directory's own fields
	// (title, phone numbers, addresses, …: RFC 7643 attributes by their
	// schema's names), as decoded JSON; nil when there is none. The
	// directory's fields stay the truth for what they hold.
	Profile map[string]any `json:"profile,omitempty"`
	// Memberships are the groups the user is in, directly or through
	// nested groups, by group name; read only when a listing asks
	// (UserFilter.WithMemberships), nil otherwise.
	Memberships []Membership `json:"-"`
	CreatedAt   time.Time    `json:"createdAt"`
	UpdatedAt   time.Time    `json:"updatedAt"`
	Version     int64        `json:"version"` // changes on every update
}

// UsernameKey is the form usernames are compared and indexed in: Unicode
// compatibility-normalised (NFKC: composed and decomposed letters, and
// fullwidth and ASCII letters, are one name) and lower-cased, so names that
// look the same to a person cannot exist side by side.
func UsernameKey(username string) string { return strings.ToLower(norm.NFKC.String(username)) }

// Normalize fills the defaults of a new user.
func (u *User) Normalize() {
	if u.Type == "" {
		u.Type = UserRegular
	}
	if u.AuthMethod == "" {
		u.AuthMethod = AuthPassword
	}
	if u.Source == "" {
		u.Source = SourceLocal
	}
	if u.Attributes == nil {
		u.Attributes = map[string]string{}
	}
}

// Validate reports the first problem with u's fields.
func (u *User) Validate() error {
	if err := ValidateUsername(u.Username); err != nil {
		return err
	}
	// Checked field by field, the owner's name built only for an error: a
	// bulk apply validates every user of its batch on the writer's path.
	for _, f := range [...]struct{ name, v string }{{"email", u.Email}, {"first name", u.FirstName}, {"last name", u.LastName}, {"source id", u.SourceID}} {
		if e := checkText(f.v); e != "" {
			return Errorf(EINVALID, "user %s: %s %s", quote(u.Username), f.name, e)
		}
	}
	if u.Email != "" {
		if a, err := mail.ParseAddress(u.Email); err != nil || a.Address != u.Email {
			return Errorf(EINVALID, "user %q: email %q is not a valid address", u.Username, u.Email)
		}
	}
	if err := ValidateUserType(string(u.Type)); err != nil {
		return err
	}
	if u.AuthMethod != AuthPassword && u.AuthMethod != AuthSSO {
		return Errorf(EINVALID, "user %q: authentication method %q is not one of password, sso", u.Username, u.AuthMethod)
	}
	if u.Source == "" {
		return Errorf(EINVALID, "user %q: source is empty", u.Username)
	}
	if len(u.Attributes) > 0 {
		if err := ValidateAttributes("user "+quote(u.Username), u.Attributes); err != nil {
			return err
		}
	}
	if len(u.Profile) == 0 {
		return nil
	}
	return ValidateProfile("user "+quote(u.Username), u.Profile)
}

// MaxProfileSize bounds a profile's JSON encoding.
const MaxProfileSize = 256 << 10

// ValidateProfile checks that a profile can be stored faithfully: JSON
// values only, its text valid UTF-8 without NUL, and not too large.
func ValidateProfile(owner string, p map[string]any) error {
	if len(p) == 0 {
		return nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return Errorf(EINVALID, "%s: the profile cannot be stored as JSON: %v", owner, err)
	}
	if len(b) > MaxProfileSize {
		return Errorf(EINVALID, "%s: the profile is %d bytes, more than %d", owner, len(b), MaxProfileSize)
	}
	var bad string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			if e := checkText(x); e != "" && bad == "" {
				bad = "a value " + e
			}
		case map[string]any:
			for k, v := range x {
				if e := checkText(k); e != "" && bad == "" {
					bad = "a name " + e
				}
				walk(v)
			}
		case []any:
			for _, v := range x {
				walk(v)
			}
		}
	}
	walk(p)
	if bad != "" {
		return Errorf(EINVALID, "%s: the profile has %s", owner, bad)
	}
	return nil
}

// ValidateUsername checks a username on its own.
func ValidateUsername(name string) error {
	switch {
	case name == "":
		return Errorf(EINVALID, "username is empty")
	case !utf8.ValidString(name):
		return Errorf(EINVALID, "username %q is not valid UTF-8", name)
	case len(name) > MaxUsernameLength:
		return Errorf(EINVALID, "username %q is longer than %d characters", name[:40]+"…", MaxUsernameLength)
	case strings.TrimSpace(name) != name:
		return Errorf(EINVALID, "username %q starts or ends with white space", name)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return Errorf(EINVALID, "username %q contains a control character", name)
	}
	return nil
}

// ValidateUserType checks that t names a user type.
func ValidateUserType(t string) error {
	for _, v := range UserTypes {
		if string(v) == t {
			return nil
		}
	}
	return Errorf(EINVALID, "user type %q is not one of regular, power_user, administrator", t)
}

// ValidateAttributes checks the names and values of custom attributes of an object.
func ValidateAttributes(owner string, attrs map[string]string) error {
	for k, v := range attrs {
		if k == "" || strings.TrimSpace(k) != k || strings.IndexFunc(k, unicode.IsControl) >= 0 || !utf8.ValidString(k) {
			return Errorf(EINVALID, "%s: attribute name %q is empty, is not valid UTF-8, or has white space or control characters", owner, k)
		}
		if err := checkText(v); err != "" {
			return Errorf(EINVALID, "%s: the value of attribute %q %s", owner, k, err)
		}
	}
	return nil
}

// ValidateText checks free-text fields (named by the map's keys): they must
// be valid UTF-8 without NUL characters. Neither can be stored faithfully
// (PostgreSQL refuses NUL in text; invalid UTF-8 would be replaced), so they
// are refused rather than altered.
func ValidateText(owner string, fields map[string]string) error {
	for name, v := range fields {
		if err := checkText(v); err != "" {
			return Errorf(EINVALID, "%s: %s %s", owner, name, err)
		}
	}
	return nil
}

func checkText(v string) string {
	if !utf8.ValidString(v) {
		return "is not valid UTF-8"
	}
	if strings.IndexByte(v, 0) >= 0 {
		return "contains a NUL character (\\u0000)"
	}
	return ""
}

func quote(s string) string { return `"` + s + `"` }

// UserUpdate names the fields to change; nil fields stay as they are.
// Attributes are merged: a key mapped to nil is removed.
type UserUpdate struct {
	Username   *string
	Email      *string
	FirstName  *string
	LastName   *string
	Type       *UserType
	Enabled    *bool
	AuthMethod *AuthMethod
	Source     *string
	SourceID   *string
	Attributes map[string]*string
	// SoftDeleted sets or clears the soft-delete mark (see User).
	SoftDeleted *bool
	// Profile replaces the whole profile when not nil (an empty map
	// clears it).
	Profile *map[string]any
}

// UserFilter selects users for listing.
type UserFilter struct {
	Source string // exact source, or "" for all
	Search string // case-insensitive substring of username, email or name
	Where  Cond   // evaluated in the database; nil for all
	Offset int
	Limit  int // 0 means no limit
	// Unordered skips ordering by username: for existence checks, which
	// then cost one index probe, not a sort of every match.
	Unordered bool
	// NoCount skips counting every match when the page is full: the total
	// returned is then the page's length. For existence checks, where the
	// count would read every match (a million of one source's users).
	NoCount bool
	// Order sorts by a field (nil: by username); After continues after a
	// position in that order, whatever the depth (keyset paging).
	Order *Order
	After *Position
	// WithMemberships fills each user's Memberships in the same query
	// (and one more only for users in nested groups).
	WithMemberships bool
}

// Order sorts a listing by one of its fields (MatchFields or
// GroupMatchFields, not attributes), then by id, so that rows with equal
// values keep one order that paging can rely on.
type Order struct {
	Field string
	Desc  bool
}

// Position is where a page ended in an order: the last row's value of the
// order's field (as SortValue gives it) and its id.
type Position struct {
	Value any
	ID    int64
}

// SortValue is a user's value of a sort field, as Position holds it.
func (u *User) SortValue(field string) any {
	switch field {
	case "username":
		return UsernameKey(u.Username)
	case "email":
		return u.Email
	case "firstName":
		return u.FirstName
	case "lastName":
		return u.LastName
	case "createdAt":
		return u.CreatedAt.UnixMicro()
	case "updatedAt":
		return u.UpdatedAt.UnixMicro()
	case "enabled":
		return u.Enabled
	case "sourceId":
		return u.SourceID
	case "type":
		return string(u.Type)
	case "source":
		return u.Source
	}
	return u.ID
}

// UserService manages users.
type UserService interface {
	CreateUser(ctx context.Context, u *User) error
	FindUserByID(ctx context.Context, id int64) (*User, error)
	FindUserByUsername(ctx context.Context, username string) (*User, error)
	FindUsers(ctx context.Context, f UserFilter) ([]*User, int, error)
	// UserIDs returns the ids of the users a condition holds for, unordered
	// (one query: what a rule or mapping holds for, without reading users).
	UserIDs(ctx context.Context, where Cond) ([]int64, error)
	// UsersByUsername returns the users among usernames that exist, keyed by
	// UsernameKey.
	UsersByUsername(ctx context.Context, usernames []string) (map[string]*User, error)
	// UsersBySource returns the users owned by source whose source ids are
	// among ids, keyed by source id: how a pull finds a user it made even
	// after its username changed.
	UsersBySource(ctx context.Context, source string, ids []string) (map[string]*User, error)
	// UpdateUser applies upd and, when expectVersion is not 0, fails with
	// ESTALE unless the stored version equals it.
	UpdateUser(ctx context.Context, id int64, upd UserUpdate, expectVersion int64) (*User, error)
	// ModifyUser is UpdateUser with the update computed by fn from the user
	// as stored, inside the write: a change read-modify-written this way
	// cannot race another. fn gets a copy, may run on another goroutine,
	// and its error is returned as it is, with nothing written.
	ModifyUser(ctx context.Context, id int64, expectVersion int64, fn func(*User) (UserUpdate, error)) (*User, error)
	// DeleteUser removes a user with its memberships and tokens; when
	// expectVersion is not 0 it fails with ESTALE unless the stored version
	// equals it.
	DeleteUser(ctx context.Context, id int64, expectVersion int64) error
}
