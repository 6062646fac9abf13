package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/magiconair/properties"
	"github.com/spf13/cobra"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/sqlstore"
	"github.com/usersync/usersync/target/entra"
)

const consumerPrefix = "changeLog.consumer."

// importedProvisioner is one changeLog.consumer.NAME block.
type importedProvisioner struct {
	p      *usersync.Provisioner
	secret string
}

// parseGrouperProperties reads the Office 365 consumers of a
// grouper-loader.properties file. Other consumers are reported in skipped;
// an unknown property of an Office 365 consumer, a placeholder left in
// (@o365.tenantId@), or a value that does not parse is an error naming
// the key.
func parseGrouperProperties(src []byte) (out []importedProvisioner, skipped []string, err error) {
	l := &properties.Loader{Encoding: properties.UTF8, DisableExpansion: true}
	props, err := l.LoadBytes(src)
	if err != nil {
		return nil, nil, usersync.Errorf(usersync.EINVALID, "read the properties: %v", err)
	}
	blocks := map[string]map[string]string{}
	for _, key := range props.Keys() {
		rest, ok := strings.CutPrefix(key, consumerPrefix)
		if !ok {
			continue // the rest of grouper-loader.properties is not ours
		}
		name, prop, ok := strings.Cut(rest, ".")
		if !ok || name == "" || prop == "" {
			return nil, nil, usersync.Errorf(usersync.EINVALID, "%s: expected changeLog.consumer.NAME.PROPERTY", key)
		}
		if blocks[name] == nil {
			blocks[name] = map[string]string{}
		}
		blocks[name][prop] = strings.TrimSpace(props.GetString(key, ""))
	}
	byProperty := map[string]setting{}
	for _, s := range settings {
		byProperty[s.property] = s
	}
	names := make([]string, 0, len(blocks))
	for n := range blocks {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		block := blocks[name]
		if class := block["class"]; !strings.HasSuffix(class, ".Office365ChangeLogConsumer") {
			skipped = append(skipped, fmt.Sprintf("%s%s (class %q is not Grouper's Office 365 consumer)", consumerPrefix, name, class))
			continue
		}
		p := &usersync.Provisioner{Name: name, Kind: usersync.ProvisionerGroups}
		p.Config.RetryOnError = true
		var secret string
		props := make([]string, 0, len(block))
		for prop := range block {
			props = append(props, prop)
		}
		sort.Strings(props)
		for _, prop := range props {
			v, key := block[prop], consumerPrefix+name+"."+prop
			if strings.HasPrefix(v, "@") && strings.HasSuffix(v, "@") && len(v) > 1 {
				return nil, nil, usersync.Errorf(usersync.EINVALID, "%s is the placeholder %s: put the real value in the file (the Grouper build filled these in)", key, v)
			}
			if v == "..." {
				return nil, nil, usersync.Errorf(usersync.EINVALID, "%s is the placeholder \"...\": put the real value in the file", key)
			}
			switch prop {
			case "class":
				continue
			case "clientSecret":
				secret = v
				continue
			}
			s, ok := byProperty[prop]
			if !ok {
				return nil, nil, usersync.Errorf(usersync.EINVALID, "%s: usersync does not know the property %q (known: class, clientSecret, %s)", key, prop, knownProperties())
			}
			switch {
			case s.str != nil:
				*s.str(&p.Config) = v
			case s.num != nil:
				n, err := strconv.Atoi(v)
				if err != nil && v != "" {
					return nil, nil, usersync.Errorf(usersync.EINVALID, "%s = %q is not a whole number", key, v)
				}
				*s.num(&p.Config) = n
			default:
				b, err := strconv.ParseBool(v)
				if err != nil {
					return nil, nil, usersync.Errorf(usersync.EINVALID, "%s = %q is not true or false", key, v)
				}
				*s.boolean(&p.Config) = b
			}
		}
		if secret == "" {
			return nil, nil, usersync.Errorf(usersync.EINVALID, "%s%s.clientSecret is missing or empty", consumerPrefix, name)
		}
		if err := checkProvisioner(p); err != nil {
			return nil, nil, err
		}
		out = append(out, importedProvisioner{p: p, secret: secret})
	}
	return out, skipped, nil
}

func knownProperties() string {
	var out []string
	for _, s := range settings {
		out = append(out, s.property)
	}
	return strings.Join(out, ", ")
}

func (a *app) provisionersImport() *cobra.Command {
	var noVerify, replace bool
	c := &cobra.Command{Use: "import FILE", Short: "Make a provisioner of every changeLog.consumer.NAME block of a grouper-loader.properties file", Args: cobra.ExactArgs(1),
		Long: `Read Grouper's grouper-loader.properties (FILE, or - for standard input) and
make provisioner NAME of every changeLog.consumer.NAME block whose class is
the Office 365 consumer; other consumers are listed and skipped. The client
secret comes from the block's clientSecret. Everything is checked first (a
placeholder such as @o365.tenantId@ names its key; unless --no-verify, each
block signs in to its tenant): either every provisioner is made, or none.`}
	c.Flags().BoolVar(&noVerify, "no-verify", false, "do not sign in to the tenants first")
	c.Flags().BoolVar(&replace, "replace", false, "replace provisioners of the same names (else they are an error)")
	c.RunE = a.withDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
		var src []byte
		var err error
		if args[0] == "-" {
			src, err = io.ReadAll(io.LimitReader(a.stdin, 16<<20))
		} else {
			src, err = os.ReadFile(args[0])
		}
		if err != nil {
			return usersync.Errorf(usersync.EINVALID, "read %s: %v", args[0], err)
		}
		found, skipped, err := parseGrouperProperties(src)
		if err != nil {
			return usersync.Errorf(usersync.EINVALID, "%s: %s; nothing imported", args[0], usersync.ErrorMessage(err))
		}
		for _, s := range skipped {
			fmt.Fprintf(a.stderr, "skipped %s\n", s)
		}
		if len(found) == 0 {
			return usersync.Errorf(usersync.EINVALID, "%s holds no changeLog.consumer.NAME block of class ...Office365ChangeLogConsumer; nothing imported", args[0])
		}
		exists := map[string]bool{}
		for _, f := range found {
			_, err := d.FindProvisioner(ctx, f.p.Name)
			switch {
			case err == nil && !replace:
				return usersync.Errorf(usersync.ECONFLICT, "provisioner %s exists already (--replace replaces it); nothing imported", f.p.Name)
			case err == nil:
				exists[f.p.Name] = true
			case usersync.ErrorCode(err) != usersync.ENOTFOUND:
				return err
			}
			if !noVerify {
				client, err := entra.NewClient(ctx, d, f.p, f.secret, nil)
				if err == nil {
					err = client.SignIn(ctx)
				}
				if err != nil {
					return usersync.Errorf(usersync.ErrorCode(err), "provisioner %s: %s; nothing imported (--no-verify imports without signing in)", f.p.Name, usersync.ErrorMessage(err))
				}
			}
		}
		var made []*usersync.Provisioner
		for _, f := range found {
			if exists[f.p.Name] {
				err = d.UpdateProvisioner(ctx, f.p, &f.secret)
			} else {
				err = d.CreateProvisioner(ctx, f.p, f.secret)
			}
			if err != nil {
				return err
			}
			made = append(made, f.p)
		}
		return a.emit(made, func(w io.Writer) {
			for _, p := range made {
				fmt.Fprintf(w, "imported provisioner %s: groups marked with %s go to tenant %s as %s groups\n", p.Name, p.Config.SyncAttribute, p.Config.TenantID, p.Config.GroupType)
			}
		})
	})
	return c
}
