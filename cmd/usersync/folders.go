package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/api"
)

func (a *app) foldersCommand() *cobra.Command {
	c := &cobra.Command{Use: "folders", Short: "List and manage folders (the path part of group names) and their attributes"}
	var under string
	list := &cobra.Command{Use: "list", Short: "List folders", Args: cobra.NoArgs}
	list.Flags().StringVar(&under, "under", "", "only folders below this one")
	list.RunE = a.withOps(true, func(ctx context.Context, o api.Operations, args []string) error {
		fs, err := o.ListFolders(ctx, under)
		if err != nil {
			return err
		}
		return a.emit(nonNil(fs), func(w io.Writer) {
			row(w, "PATH", "ATTRIBUTES")
			for _, f := range fs {
				row(w, f.Path, fmtAttrs(f.Attributes))
			}
		})
	})
	show := func(w io.Writer, f *usersync.Folder) {
		row(w, "Path:", f.Path)
		row(w, "Attributes:", fmtAttrs(f.Attributes))
		row(w, "Created:", fmtTime(f.CreatedAt))
		row(w, "Updated:", fmtTime(f.UpdatedAt))
	}
	remote(list)
	c.AddCommand(list,
		remote(&cobra.Command{Use: "show PATH", Short: "Show a folder", Args: cobra.ExactArgs(1),
			RunE: a.withOps(true, func(ctx context.Context, o api.Operations, args []string) error {
				f, err := o.GetFolder(ctx, args[0])
				if err != nil {
					return err
				}
				return a.emit(f, func(w io.Writer) { show(w, f) })
			})}),
		remote(&cobra.Command{Use: "create PATH", Short: "Create an empty folder (and the folders above it)", Args: cobra.ExactArgs(1),
			RunE: a.withOps(false, func(ctx context.Context, o api.Operations, args []string) error {
				f, err := o.CreateFolder(ctx, args[0])
				if err != nil {
					return err
				}
				return a.emit(f, func(w io.Writer) { row(w, "created folder", f.Path) })
			})}),
		remote(&cobra.Command{Use: "delete PATH", Short: "Delete an empty folder", Args: cobra.ExactArgs(1),
			RunE: a.withOps(false, func(ctx context.Context, o api.Operations, args []string) error {
				if err := o.DeleteFolder(ctx, args[0]); err != nil {
					return err
				}
				return a.emit(map[string]any{"deleted": args[0]}, func(w io.Writer) { row(w, "deleted folder", args[0]) })
			})}),
		remote(&cobra.Command{Use: "set-attr PATH NAME=VALUE...", Short: "Set folder attributes", Args: cobra.MinimumNArgs(2),
			RunE: a.withOps(false, func(ctx context.Context, o api.Operations, args []string) error {
				attrs, err := parseAttrs(args[1:], nil)
				if err != nil {
					return err
				}
				f, err := o.SetFolderAttributes(ctx, args[0], attrs)
				if err != nil {
					return err
				}
				return a.emit(f, func(w io.Writer) { show(w, f) })
			})}),
		remote(&cobra.Command{Use: "unset-attr PATH NAME...", Short: "Remove folder attributes", Args: cobra.MinimumNArgs(2),
			RunE: a.withOps(false, func(ctx context.Context, o api.Operations, args []string) error {
				attrs, _ := parseAttrs(nil, args[1:])
				f, err := o.SetFolderAttributes(ctx, args[0], attrs)
				if err != nil {
					return err
				}
				return a.emit(f, func(w io.Writer) { show(w, f) })
			})}),
	)
	return c
}
