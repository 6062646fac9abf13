package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The provision commands take the command lines of the seeds' scripts,
// which parse them with Python's argparse, so cron lines written for
// those keep their meaning here. argparse accepts what pflag does not:
// attached short values (-aall, -Ptoken, -tadministrator), unambiguous
// prefixes of long options (--dry for --dry-run), and options whose value
// may be left out (nargs='?': -a, -P). argparseArgs rewrites such a command
// line into the canonical --name=value form before cobra parses it.
//
// Prefixes are resolved as argparse resolves them for the seed's own
// options first, so an option usersync adds never changes what a seed
// prefix means ("--full" stays --full-summary); only a prefix that no seed
// option explains is tried against usersync's own.

// Flag annotations read by argparseArgs.
const (
	annSeed     = "usersync/seed"     // the seed script has this option
	annOptional = "usersync/optional" // nargs='?': the value may be left out; the value is the flag set when it is
)

// seedFlag marks flags as the seed script's own.
func seedFlag(fs *pflag.FlagSet, names ...string) {
	for _, n := range names {
		if err := fs.SetAnnotation(n, annSeed, []string{"true"}); err != nil {
			panic(err) // a flag name typo in this file
		}
	}
}

// optionalValue marks a flag whose value may be left out (argparse's
// nargs='?'); without a value the boolean flag named bare is set instead.
func optionalValue(fs *pflag.FlagSet, name, bare string) {
	if err := fs.SetAnnotation(name, annOptional, []string{bare}); err != nil {
		panic(err)
	}
}

// argparseArgs rewrites args for command c (see above). Words that are not
// options pass through, and so does anything it does not recognise, for
// cobra to report.
func argparseArgs(c *cobra.Command, args []string) ([]string, error) {
	var all []*pflag.Flag
	byShort := map[byte]*pflag.Flag{}
	visit := func(f *pflag.Flag) {
		all = append(all, f)
		if f.Shorthand != "" {
			byShort[f.Shorthand[0]] = f
		}
	}
	c.LocalFlags().VisitAll(visit)
	c.InheritedFlags().VisitAll(visit)
	if h := c.Flags().Lookup("help"); h != nil {
		visit(h)
	}
	out := make([]string, 0, len(args))
	// value returns f in canonical form with its value: attached, else the
	// next word unless that is an option (argparse's rule), else, for an
	// optional value, the bare form.
	value := func(f *pflag.Flag, attached string, hasAttached bool, i *int) (string, error) {
		switch {
		case hasAttached:
			return "--" + f.Name + "=" + attached, nil
		case isBool(f):
			return "--" + f.Name, nil
		}
		hasNext := *i+1 < len(args)
		isOption := hasNext && strings.HasPrefix(args[*i+1], "-") && args[*i+1] != "-"
		if bare, ok := f.Annotations[annOptional]; ok && (!hasNext || isOption) {
			return bare[0], nil
		}
		if !hasNext || isOption {
			return "", usageError{fmt.Errorf("argument %s: expected one argument", optionNames(f))}
		}
		*i++
		return "--" + f.Name + "=" + args[*i], nil
	}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "--":
			return append(out, args[i:]...), nil
		case strings.HasPrefix(arg, "--"):
			name, attached, hasAttached := strings.Cut(arg[2:], "=")
			f, err := resolveLong(all, name)
			if err != nil {
				return nil, err
			}
			if f == nil {
				out = append(out, arg) // cobra names the unknown option
				continue
			}
			w, err := value(f, attached, hasAttached, &i)
			if err != nil {
				return nil, err
			}
			out = append(out, w)
		case strings.HasPrefix(arg, "-") && len(arg) > 1:
			// A cluster of short options: flags without values, then at
			// most one that takes the rest of the word (or the next word).
			words, ok := []string(nil), true
			cluster := arg[1:]
			for j := 0; j < len(cluster); j++ {
				f := byShort[cluster[j]]
				if f == nil {
					ok = false
					break
				}
				if isBool(f) {
					words = append(words, "--"+f.Name)
					continue
				}
				rest := strings.TrimPrefix(cluster[j+1:], "=")
				w, err := value(f, rest, rest != "", &i)
				if err != nil {
					return nil, err
				}
				words = append(words, w)
				break
			}
			if !ok {
				out = append(out, arg) // cobra names the unknown option
				continue
			}
			out = append(out, words...)
		default:
			out = append(out, arg)
		}
	}
	return out, nil
}

func isBool(f *pflag.Flag) bool { return f.Value.Type() == "bool" && f.NoOptDefVal != "" }

// resolveLong finds the flag a long option names: by its whole name, else
// as argparse would among the seed's options, else among all.
func resolveLong(all []*pflag.Flag, name string) (*pflag.Flag, error) {
	for _, f := range all {
		if f.Name == name {
			return f, nil
		}
	}
	if name == "" {
		return nil, nil
	}
	for _, seedOnly := range []bool{true, false} {
		var found []*pflag.Flag
		for _, f := range all {
			if _, seed := f.Annotations[annSeed]; (seed || !seedOnly) && !f.Hidden && strings.HasPrefix(f.Name, name) {
				found = append(found, f)
			}
		}
		switch len(found) {
		case 0:
			continue
		case 1:
			return found[0], nil
		}
		var names []string
		for _, f := range found {
			names = append(names, "--"+f.Name)
		}
		sort.Strings(names)
		return nil, usageError{fmt.Errorf("ambiguous option: --%s could match %s", name, strings.Join(names, ", "))}
	}
	return nil, nil
}

func optionNames(f *pflag.Flag) string {
	if f.Shorthand != "" {
		return "-" + f.Shorthand + "/--" + f.Name
	}
	return "--" + f.Name
}
