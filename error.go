package usersync

import (
	"errors"
	"fmt"
)

// Error codes shared by every part of usersync. Low layers return them; each
// edge (CLI exit status, SCIM error body, HTTP status) translates them once.
const (
	ECONFLICT     = "conflict"     // the object exists already, or a rule about other objects forbids the change
	ESTALE        = "stale"        // the object changed since the caller read it (its version moved)
	EINTERNAL     = "internal"     // a bug or an unexpected failure; details are logged, not shown
	EINVALID      = "invalid"      // the input is malformed or breaks a rule
	ENOTFOUND     = "not_found"    // the object does not exist
	EUNAUTHORIZED = "unauthorized" // no or wrong credentials
	EFORBIDDEN    = "forbidden"    // valid credentials without the right to act
	EUNAVAILABLE  = "unavailable"  // a dependency (database, remote API) cannot be reached
)

// Error is a domain error: a code for machines and a message for people.
// The message must never contain a secret.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of a domain error anywhere in err's chain,
// EINTERNAL for any other non-nil error and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the human message of a domain error, or "Internal
// error." for anything else so that unexpected details are never shown.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}
