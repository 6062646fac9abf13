// The schemas served (RFC 7643 §4, §7, §8.7): one definition drives
// /Schemas, reading resources, PATCH paths and filters, so that what is
// described is what is served.

package scim

import "strings"

// Attribute is a schema attribute (RFC 7643 §7), as /Schemas shows it.
type Attribute struct {
	Name            string       `json:"name"`
	Type            string       `json:"type"` // string, boolean, decimal, integer, dateTime, reference, binary, complex
	MultiValued     bool         `json:"multiValued"`
	Description     string       `json:"description"`
	Required        bool         `json:"required"`
	CaseExact       bool         `json:"caseExact"`
	Mutability      string       `json:"mutability"` // readOnly, readWrite, immutable, writeOnly
	Returned        string       `json:"returned"`   // always, never, default, request
	Uniqueness      string       `json:"uniqueness"` // none, server, global
	CanonicalValues []string     `json:"canonicalValues,omitempty"`
	ReferenceTypes  []string     `json:"referenceTypes,omitempty"`
	SubAttributes   []*Attribute `json:"subAttributes,omitempty"`
}

// Sub returns the sub-attribute named name (case-insensitively), or nil.
func (a *Attribute) Sub(name string) *Attribute {
	return findAttr(a.SubAttributes, name)
}

// Schema is a resource schema (RFC 7643 §7).
type Schema struct {
	ID          string       `json:"id"`
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Attributes  []*Attribute `json:"attributes"`
}

// Attr returns the top-level attribute named name (case-insensitively), or nil.
func (s *Schema) Attr(name string) *Attribute { return findAttr(s.Attributes, name) }

func findAttr(list []*Attribute, name string) *Attribute {
	for _, a := range list {
		if strings.EqualFold(a.Name, name) {
			return a
		}
	}
	return nil
}

// attr builds a readWrite, default-returned, non-unique attribute.
func attr(name, typ, desc string, opts ...func(*Attribute)) *Attribute {
	a := &Attribute{Name: name, Type: typ, Description: desc, Mutability: "readWrite", Returned: "default", Uniqueness: "none"}
	for _, o := range opts {
		o(a)
	}
	return a
}

func required(a *Attribute)  { a.Required = true }
func caseExact(a *Attribute) { a.CaseExact = true }
func multi(a *Attribute)     { a.MultiValued = true }
func readOnly(a *Attribute)  { a.Mutability = "readOnly" }
func immutable(a *Attribute) { a.Mutability = "immutable" }
func unique(a *Attribute)    { a.Uniqueness = "server" }
func writeOnly(a *Attribute) { a.Mutability, a.Returned = "writeOnly", "never" }
func always(a *Attribute)    { a.Returned = "always" }
func canonical(v ...string) func(*Attribute) {
	return func(a *Attribute) { a.CanonicalValues = v }
}
func refs(v ...string) func(*Attribute) {
	return func(a *Attribute) { a.ReferenceTypes = v }
}
func subs(s ...*Attribute) func(*Attribute) {
	return func(a *Attribute) { a.SubAttributes = s }
}

// plural is a multi-valued complex attribute with the sub-attributes
// RFC 7643 §2.4 gives them: value, display, type, primary.
func plural(name, desc, valueType string, types []string, extra ...func(*Attribute)) *Attribute {
	value := attr("value", valueType, "The value of "+name+".")
	if valueType == "reference" {
		value.ReferenceTypes = []string{"external"}
	}
	typ := attr("type", "string", "A label for the function of the value.")
	if len(types) > 0 {
		typ.CanonicalValues = types
	}
	a := attr(name, "complex", desc, append([]func(*Attribute){multi, subs(
		value,
		attr("display", "string", "A human-readable name, primarily used for display purposes."),
		typ,
		attr("primary", "boolean", "Whether this is the preferred value; at most one value is primary."),
	)}, extra...)...)
	return a
}

// UserSchema is the core User (RFC 7643 §4.1), every attribute.
var UserSchema = &Schema{ID: SchemaUser, Name: "User", Description: "User Account", Attributes: []*Attribute{
	attr("userName", "string", "Unique identifier for the User, typically used to sign in; compared ignoring case. At most 100 characters.", required, unique),
	attr("name", "complex", "The components of the user's real name.", subs(
		attr("formatted", "string", "The full name, as it should be displayed."),
		attr("familyName", "string", "The family name (last name). Becomes the directory's last name."),
		attr("givenName", "string", "The given name (first name). Becomes the directory's first name."),
		attr("middleName", "string", "The middle name(s)."),
		attr("honorificPrefix", "string", "The honorific prefix(es), e.g. 'Ms.'."),
		attr("honorificSuffix", "string", "The honorific suffix(es), e.g. 'III'."),
	)),
	attr("displayName", "string", "The name of the User, suitable for display to end-users."),
	attr("nickName", "string", "The casual way to address the user."),
	attr("profileUrl", "reference", "A fully qualified URL pointing to a page representing the User's online profile.", refs("external")),
	attr("title", "string", "The user's title, such as \"Vice President\"."),
	attr("userType", "string", "The relationship between the organization and the user, e.g. 'Employee'."),
	attr("preferredLanguage", "string", "The User's preferred written or spoken language, as an HTTP Accept-Language value."),
	attr("locale", "string", "The User's default location, e.g. 'en-US'."),
	attr("timezone", "string", "The User's time zone in the IANA Time Zone database format, e.g. 'America/Los_Angeles'."),
	attr("active", "boolean", "The User's administrative status: false disables the user (see SCIM_REMOVE_USER_ON_SOFT_DELETE)."),
	attr("password", "string", "Accepted and never stored or returned: usersync users sign in through SSO or a password set in usersync.", writeOnly),
	plural("emails", "Email addresses for the user. The directory's email is the work one, else the primary, else the first.", "string", []string{"work", "home", "other"}),
	plural("phoneNumbers", "Phone numbers for the User.", "string", []string{"work", "home", "mobile", "fax", "pager", "other"}),
	plural("ims", "Instant messaging addresses for the User.", "string", []string{"aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"}),
	plural("photos", "URLs of photos of the User.", "reference", []string{"photo", "thumbnail"}),
	attr("addresses", "complex", "A physical mailing address for this User.", multi, subs(
		attr("formatted", "string", "The full mailing address, formatted for display."),
		attr("streetAddress", "string", "The full street address component."),
		attr("locality", "string", "The city or locality component."),
		attr("region", "string", "The state or region component."),
		attr("postalCode", "string", "The zip code or postal code component."),
		attr("country", "string", "The country name component (ISO 3166-1 alpha-2)."),
		attr("type", "string", "A label for the function of the address.", canonical("work", "home", "other")),
		attr("primary", "boolean", "Whether this is the preferred address."),
	)),
	attr("groups", "complex", "The groups the user belongs to, directly or through nested groups (read-only: change a group's members instead).", multi, readOnly, subs(
		attr("value", "string", "The id of the group.", readOnly),
		attr("$ref", "reference", "The URI of the group.", readOnly, refs("Group")),
		attr("display", "string", "The group's displayName.", readOnly),
		attr("type", "string", "direct, or indirect (through a nested group).", readOnly, canonical("direct", "indirect")),
	)),
	plural("entitlements", "Entitlements for the User.", "string", nil),
	plural("roles", "Roles for the User.", "string", nil),
	plural("x509Certificates", "X.509 certificates issued to the User (DER, base64).", "binary", nil),
}}

// EnterpriseSchema is the enterprise User extension (RFC 7643 §4.3). Its
// string attributes also become the user's custom attributes, and
// manager its manager's id.
var EnterpriseSchema = &Schema{ID: SchemaEnterprise, Name: "EnterpriseUser", Description: "Enterprise User", Attributes: []*Attribute{
	attr("employeeNumber", "string", "Numeric or alphanumeric identifier assigned to a person."),
	attr("costCenter", "string", "Identifies the name of a cost center."),
	attr("organization", "string", "Identifies the name of an organization."),
	attr("division", "string", "Identifies the name of a division."),
	attr("department", "string", "Identifies the name of a department."),
	attr("manager", "complex", "The User's manager.", subs(
		attr("value", "string", "The id of the SCIM resource representing the User's manager."),
		attr("$ref", "reference", "The URI of the SCIM resource representing the User's manager.", refs("User")),
		attr("displayName", "string", "The displayName of the User's manager (read-only).", readOnly),
	)),
}}

// GroupSchema is the core Group (RFC 7643 §4.2), with description (which
// Entra and the seed's mapping send).
var GroupSchema = &Schema{ID: SchemaGroup, Name: "Group", Description: "Group", Attributes: []*Attribute{
	attr("displayName", "string", "A human-readable name for the Group; unique, compared ignoring case; a ':' separates folders.", required, unique),
	attr("description", "string", "The group's description (not in RFC 7643's core schema: sent by Microsoft Entra and kept)."),
	attr("members", "complex", "A list of members of the Group: users and groups.", multi, subs(
		attr("value", "string", "Identifier of the member: a user's id, or a group's id (which starts with \"g\").", immutable, caseExact),
		attr("$ref", "reference", "The URI of the member resource.", immutable, refs("User", "Group")),
		attr("type", "string", "User or Group; a member without type or $ref is a User.", immutable, canonical("User", "Group")),
		attr("display", "string", "The member's userName or displayName (read-only).", readOnly),
	)),
}}

// commonAttributes are on every resource (RFC 7643 §3.1).
var commonAttributes = []*Attribute{
	attr("id", "string", "Unique identifier of the resource, issued by usersync.", readOnly, always, caseExact, unique),
	attr("externalId", "string", "The client's own identifier of the resource.", caseExact),
	attr("meta", "complex", "Resource metadata.", readOnly, subs(
		attr("resourceType", "string", "User or Group.", readOnly, caseExact),
		attr("created", "dateTime", "When the resource was added.", readOnly),
		attr("lastModified", "dateTime", "When the resource was last changed.", readOnly),
		attr("location", "reference", "The URI of the resource.", readOnly, refs("uri")),
		attr("version", "string", "The resource's version (a weak ETag).", readOnly, caseExact),
	)),
}

// resourceSchemas are the schemas of a resource type: its core schema and
// extensions.
var resourceSchemas = map[string][]*Schema{"User": {UserSchema, EnterpriseSchema}, "Group": {GroupSchema}}

// The core schemas list the common attributes too (RFC 7643 §8.7.1 leaves
// them out): /Schemas then describes every attribute a response holds,
// meta read-only among them.
func init() {
	for _, s := range []*Schema{UserSchema, GroupSchema} {
		s.Attributes = append(append([]*Attribute{}, commonAttributes...), s.Attributes...)
	}
}
