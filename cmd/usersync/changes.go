package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/api"
)

func (a *app) changesCommand() *cobra.Command {
	var after int64
	var limit int
	var follow bool
	c := &cobra.Command{
		Use:   "changes [--after N] [--limit N] [--follow]",
		Short: "Show the change log: every change to users, groups, folders and memberships",
		Args:  cobra.NoArgs,
	}
	c.Flags().Int64Var(&after, "after", 0, "show events with a sequence number above N")
	c.Flags().IntVar(&limit, "limit", 1000, "show at most this many events (without --follow)")
	c.Flags().BoolVarP(&follow, "follow", "f", false, "keep waiting for new events (JSON: one event per line)")
	c.RunE = a.withOps(true, func(ctx context.Context, o api.Operations, args []string) error {
		if !follow {
			if limit <= 0 {
				limit = 1000
			}
			var cs []*usersync.Change
			for len(cs) < limit { // pages of at most 1000, as the API gives them
				more, err := o.Changes(ctx, after, min(limit-len(cs), 1000), 0)
				if err != nil {
					return err
				}
				if len(more) == 0 {
					break
				}
				cs, after = append(cs, more...), more[len(more)-1].Seq
			}
			return a.emit(nonNil(cs), func(w io.Writer) {
				row(w, "SEQ", "TIME", "ACTOR", "KIND", "OBJECT", "DETAILS")
				for _, ch := range cs {
					printChange(w, ch)
				}
			})
		}
		enc := json.NewEncoder(a.stdout)
		for {
			cs, err := o.Changes(ctx, after, 1000, 30*time.Second) // a long poll: a change shows at once
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				return err
			}
			for _, ch := range cs {
				if a.output == "json" {
					enc.Encode(ch)
				} else {
					printChange(a.stdout, ch)
				}
				after = ch.Seq
			}
		}
	})
	return remote(c)
}

func printChange(w io.Writer, c *usersync.Change) {
	obj := c.Object.Type + " " + c.Object.Name
	if c.Member != nil {
		obj += " ← " + c.Member.Type + " " + c.Member.Name
	}
	keys := make([]string, 0, len(c.Fields))
	for k := range c.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var details []string
	for _, k := range keys {
		f := c.Fields[k]
		switch {
		case c.Kind == usersync.UserCreated || c.Kind == usersync.GroupCreated:
			details = append(details, fmt.Sprintf("%s=%q", k, f.To))
		case strings.HasSuffix(string(c.Kind), ".deleted"):
			continue
		default:
			details = append(details, fmt.Sprintf("%s: %q→%q", k, f.From, f.To))
		}
	}
	row(w, c.Seq, fmtTime(c.At), c.Actor, c.Kind, obj, orDash(strings.Join(details, " ")))
}
