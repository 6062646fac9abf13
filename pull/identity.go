package pull

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/usersync/usersync"
)

// Identity is a Source known by what it is — a tenant's id, an Okta org's
// id — rather than by how it was typed: a tenant named by its id on one
// run and by its domain on the next is one owner of its users and groups.
type Identity interface {
	// Identify learns what the source is; Owner names it from then on.
	Identify(ctx context.Context) error
	// SameSource says whether owner, a name a source of this kind holds
	// users or groups under, is this source spelled another way (its
	// domain, its host). A spelling that names nothing is not.
	SameSource(ctx context.Context, owner string) (bool, error)
}

// Lookup is a Source that reads users by their ids at the source. A name a
// source user wants may be held by another of the source's users who is not
// in the group being synced: renamed at the source since (its new name is
// then applied in the same batch, freeing the old one) or gone (then only
// an administrator can free it, and is told so).
type Lookup interface {
	// LookupUsers returns the users with these ids; ids the source no
	// longer has are left out.
	LookupUsers(ctx context.Context, ids []string) (map[string]User, error)
}

// sameSourceTimeout bounds asking whether another spelling is this source.
const sameSourceTimeout = 10 * time.Second

// Adopt identifies src and moves to its owner name whatever the directory
// keeps under another spelling of the same source (see
// usersync.Directory.RenameSource), so that nothing is skipped or made
// twice for it. It returns what it moved (in a dry run, would move), to be
// told, and warnings for the spellings it could not check.
func Adopt(ctx context.Context, dir usersync.Directory, src Source, dryRun bool) (notes, warnings []string, err error) {
	id, ok := src.(Identity)
	if !ok {
		return nil, nil, nil
	}
	if err := id.Identify(ctx); err != nil {
		return nil, nil, err
	}
	owner := src.Owner()
	kind, _, _ := strings.Cut(owner, ":")
	sources, err := dir.Sources(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, other := range sources {
		k, _, _ := strings.Cut(other, ":")
		if other == owner || k != kind {
			continue
		}
		// Another spelling may name a host that is gone (an emulator's
		// old port): it must not hold the run up.
		sctx, cancel := context.WithTimeout(ctx, sameSourceTimeout)
		same, err := id.SameSource(sctx, other)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return notes, warnings, ctx.Err()
			}
			warnings = append(warnings, fmt.Sprintf("could not tell whether %s is this source spelled another way: %s", other, usersync.ErrorMessage(err)))
			continue
		}
		if !same {
			continue
		}
		if dryRun {
			notes = append(notes, fmt.Sprintf("%s is %s: what the directory keeps under %s would be kept under %s from now on (not in a dry run; this plan treats it as another source's)", other, owner, other, owner))
			continue
		}
		moved, err := dir.RenameSource(ctx, other, owner)
		if err != nil {
			return notes, warnings, err
		}
		notes = append(notes, fmt.Sprintf("%s is %s: its %d users, %d groups and %d sync states are kept under %s from now on", other, owner, moved.Users, moved.Groups, moved.SyncStates, owner))
	}
	return notes, warnings, nil
}
