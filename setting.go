package usersync

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// SettingType is the type of a setting's value.
type SettingType string

const (
	SettingBool   SettingType = "bool" // stored as Y or N, as in the seeds' system variables
	SettingInt    SettingType = "int"
	SettingString SettingType = "string"
)

// SettingDef describes one system variable.
type SettingDef struct {
	Key         string      `json:"key"`
	Type        SettingType `json:"type"`
	Default     string      `json:"default"`
	Description string      `json:"description"`
	Secret      bool        `json:"secret"` // never shown in listings, logs or summaries
}

// SettingDefs lists every known setting. Unknown keys are refused so that a
// typo is reported instead of silently ignored.
var SettingDefs = []SettingDef{
	{Key: "SCIM_REMOVE_USER_ON_SOFT_DELETE", Type: SettingBool, Default: "N",
		Description: "Y: a user soft-deleted by a SCIM client is deleted; N: disabled and renamed with SCIM_SOFT_DELETE_PREFIX"},
	{Key: "SCIM_REQUIRE_EMAIL", Type: SettingBool, Default: "N",
		Description: "Y: a user created or changed over SCIM must have a valid email address (the directory's email: the work one, else the primary, else the first); N: an email is optional, as RFC 7643 has it"},
	{Key: "SCIM_SOFT_DELETE_PREFIX", Type: SettingString, Default: "deleted_",
		Description: "prefix added to the username of a user soft-deleted by a SCIM client"},
	{Key: "ENABLE_SCIM_REQUEST_LOGGER", Type: SettingBool, Default: "N",
		Description: "Y: write every SCIM request and response (secrets redacted) to the SCIM log directory"},
	{Key: "O365_USERSYNC_TENANT", Type: SettingString,
		Description: "Microsoft Entra tenant (GUID or domain) used by `o365 provision` when --tenant is absent"},
	{Key: "O365_USERSYNC_CLIENT_ID", Type: SettingString,
		Description: "application (client) id used by `o365 provision` when --client-id is absent"},
	{Key: "O365_USERSYNC_CLIENT_SECRET", Type: SettingString, Secret: true,
		Description: "client secret used by `o365 provision` when --client-secret is absent"},
	{Key: "OKTA_USERSYNC_HOST", Type: SettingString,
		Description: "Okta host used by `okta provision` when --okta-host is absent"},
	{Key: "OKTA_USERSYNC_TOKEN", Type: SettingString, Secret: true,
		Description: "Okta API token used by `okta provision` when --okta-token is absent"},
}

// LookupSetting returns the definition of key, or EINVALID naming the known keys.
func LookupSetting(key string) (SettingDef, error) {
	var keys []string
	for _, d := range SettingDefs {
		if d.Key == key {
			return d, nil
		}
		keys = append(keys, d.Key)
	}
	return SettingDef{}, Errorf(EINVALID, "unknown setting %q (known: %s)", key, strings.Join(keys, ", "))
}

// Parse checks value against the setting's type and returns its canonical form.
func (d SettingDef) Parse(value string) (string, error) {
	switch d.Type {
	case SettingBool:
		switch strings.ToLower(strings.TrimSpace(value)) {
		case "y", "yes", "true", "1", "on":
			return "Y", nil
		case "n", "no", "false", "0", "off":
			return "N", nil
		}
		return "", Errorf(EINVALID, "setting %s takes Y or N, not %q", d.Key, value)
	case SettingInt:
		n, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
		if err != nil {
			return "", Errorf(EINVALID, "setting %s takes a whole number, not %q", d.Key, value)
		}
		return strconv.FormatInt(n, 10), nil
	}
	return value, nil
}

// Setting is a setting's current value.
type Setting struct {
	SettingDef
	Value     string     `json:"value"`
	IsSet     bool       `json:"isSet"` // false: Value is the default
	UpdatedAt *time.Time `json:"updatedAt,omitempty"`
	// Unreadable says why a set secret's value could not be read here
	// (its key is missing or another); Value is then empty.
	Unreadable string `json:"unreadable,omitempty"`
}

// Bool reports whether a bool setting is Y.
func (s Setting) Bool() bool { return s.Value == "Y" }

// Shown is the value as it may be displayed: secrets are masked.
func (s Setting) Shown() string {
	if s.Secret && (s.Value != "" || s.Unreadable != "") {
		return "********"
	}
	return s.Value
}

// SettingService reads and writes settings.
type SettingService interface {
	Setting(ctx context.Context, key string) (Setting, error)
	Settings(ctx context.Context) ([]Setting, error)
	SetSetting(ctx context.Context, key, value string) (Setting, error)
	// ResetSetting returns a setting to its default.
	ResetSetting(ctx context.Context, key string) error
}
