// Package scim serves SCIM 2.0 (RFC 7643, RFC 7644) over the directory, for
// Microsoft Entra, Okta and any SCIM client.
package scim

import (
	"fmt"
)

// Error is a SCIM error: an HTTP status, a scimType and a detail.
type Error struct {
	Status   int
	ScimType string // uniqueness, invalidFilter, invalidValue, invalidPath, noTarget, mutability, tooMany, invalidSyntax
	Detail   string
}

func (e *Error) Error() string { return e.Detail }

func invalidFilter(format string, args ...any) *Error {
	return &Error{Status: 400, ScimType: "invalidFilter", Detail: fmt.Sprintf(format, args...)}
}
