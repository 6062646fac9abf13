package usersync

import (
	"context"
	"time"
)

// LeaseService hands out named, expiring leases: one holder at a time may
// run a job (a provisioner) among the replicas that share a directory.
type LeaseService interface {
	// TryLease takes the lease name for holder, or renews it when holder
	// has it, for ttl; false when another holder has an unexpired one.
	TryLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	// ReleaseLease gives the lease up if holder has it.
	ReleaseLease(ctx context.Context, name, holder string) error
	// LeaseHolder names who holds an unexpired lease and until when; ""
	// when nobody does.
	LeaseHolder(ctx context.Context, name string) (holder string, until time.Time, err error)
}
