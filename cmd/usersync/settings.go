package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/api"
	"github.com/usersync/usersync/sqlstore"
)

func (a *app) settingsCommand() *cobra.Command {
	c := &cobra.Command{Use: "settings", Short: "Read and change system settings"}
	list := &cobra.Command{Use: "list", Short: "List every setting with its value (secrets masked)", Args: cobra.NoArgs,
		RunE: a.withOps(true, func(ctx context.Context, o api.Operations, args []string) error {
			shown, err := o.Settings(ctx) // secrets masked
			if err != nil {
				return err
			}
			return a.emit(shown, func(w io.Writer) {
				row(w, "KEY", "VALUE", "TYPE", "SET", "DESCRIPTION")
				for _, s := range shown {
					row(w, s.Key, orDash(s.Value), s.Type, map[bool]string{true: "yes", false: "default"}[s.IsSet], s.Description)
				}
			})
		})}
	var reveal bool
	get := &cobra.Command{Use: "get KEY", Short: "Print a setting's value", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !reveal {
				return a.withOps(true, func(ctx context.Context, o api.Operations, args []string) error {
					s, err := o.Setting(ctx, args[0])
					if err != nil {
						return err
					}
					return a.emit(s, func(w io.Writer) { fmt.Fprintln(w, s.Value) })
				})(cmd, args)
			}
			if a.serverURL() != "" {
				return usageError{fmt.Errorf("--reveal reads a secret from the database itself: the API never gives secrets out (run it without --server)")}
			}
			return a.readDB(a.revealSetting)(cmd, args)
		}}
	get.Flags().BoolVar(&reveal, "reveal", false, "print a secret setting's value instead of a mask (not with --server)")
	set := &cobra.Command{Use: "set KEY VALUE", Short: "Change a setting (VALUE - reads it from standard input, for secrets)", Args: cobra.ExactArgs(2),
		RunE: a.withOps(false, func(ctx context.Context, o api.Operations, args []string) error {
			value := args[1]
			if value == "-" {
				b, err := io.ReadAll(io.LimitReader(a.stdin, 1<<16))
				if err != nil {
					return err
				}
				value = strings.TrimRight(string(b), "\r\n")
			}
			s, err := o.SetSetting(ctx, args[0], value)
			if err != nil {
				return err
			}
			return a.emit(s, func(w io.Writer) { row(w, s.Key, "=", s.Value) })
		})}
	reset := &cobra.Command{Use: "reset KEY", Short: "Return a setting to its default", Args: cobra.ExactArgs(1),
		RunE: a.withOps(false, func(ctx context.Context, o api.Operations, args []string) error {
			s, err := o.ResetSetting(ctx, args[0])
			if err != nil {
				return err
			}
			return a.emit(s, func(w io.Writer) { row(w, s.Key, "=", orDash(s.Value), "(default)") })
		})}
	for _, sub := range []*cobra.Command{get, set, reset} {
		sub.ValidArgsFunction = completeSettingKey
	}
	c.AddCommand(remote(list), remote(get), remote(set), remote(reset))
	return c
}

// completeSettingKey completes a setting's key (the first argument), and
// for a yes/no setting its value.
func completeSettingKey(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	switch {
	case len(args) == 0:
		keys := make([]string, 0, len(usersync.SettingDefs))
		for _, d := range usersync.SettingDefs {
			keys = append(keys, d.Key+"\t"+d.Description)
		}
		return keys, cobra.ShellCompDirectiveNoFileComp
	case len(args) == 1 && cmd.Name() == "set":
		if d, err := usersync.LookupSetting(args[0]); err == nil && d.Type == usersync.SettingBool {
			return []string{"Y", "N"}, cobra.ShellCompDirectiveNoFileComp
		}
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}

// revealSetting prints a setting's value, a secret's too: on the database only.
func (a *app) revealSetting(ctx context.Context, d *sqlstore.DB, args []string) error {
	s, err := d.Setting(ctx, args[0])
	if err != nil {
		return err
	}
	return a.emit(s, func(w io.Writer) { fmt.Fprintln(w, s.Value) })
}
