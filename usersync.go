// Package usersync holds the domain of the usersync identity provisioning hub:
// the directory's users, groups, folders, memberships, API tokens, settings and
// change log, the error codes, and the service interfaces that storage
// backends implement. It imports no database, HTTP or CLI package; those live
// in their own packages and depend on this one.
package usersync

import "context"

type actorKey struct{}

// WithActor returns a context that attributes the directory writes made with
// it to actor (for example "cli", "o365:contoso.onmicrosoft.com" or
// "scim:alice"). The actor is recorded in every change-log event.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFrom returns the actor set by WithActor, or "system".
func ActorFrom(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	return "system"
}

type requestIDKey struct{}

// WithRequestID returns a context carrying the id of the HTTP request it
// serves: the answer carries it (X-Request-Id), and so does every log line
// about the request, so that an administrator can find a failure's cause.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the id set by WithRequestID, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
