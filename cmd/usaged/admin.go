package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/usaged/usaged/client"
	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/internal/cmdline"
	"github.com/usaged/usaged/internal/flagvalue"
	"github.com/usaged/usaged/internal/termout"
	"github.com/usaged/usaged/usage"
)

// admin is what an admin command does once its flags are set: check
// refuses flags it cannot use (with a usage error) before any request, call
// asks the server with the admin token, and text prints the answer for a
// person.
type admin[T any] struct {
	check func() error
	call  func(ctx context.Context, api *client.Client) (T, error)
	text  func(w io.Writer, v T) error
	// clientToken is set for commands that take a client's token rather
	// than the admin's: a missing one is the server's 401 to report.
	clientToken bool
}

// newAdminCommand starts an admin command with the flags that reach the
// server; format, when not nil, prints the answer as JSON instead.
func (c *cli) newAdminCommand(name, summary, details string) (*cmdline.Command, *remoteFlags) {
	cmd := c.newCommand(name, summary, details)
	return cmd, addRemoteFlags(cmd.Flags, "admin token")
}

// run is the command's Run: check, call, print as text, or as JSON when
// format (nil for commands without --format) asks for it.
func (a admin[T]) run(c *cli, remote *remoteFlags, format *flagvalue.OneOf) func(context.Context) error {
	return func(ctx context.Context) error {
		if a.check != nil {
			if err := a.check(); err != nil {
				return err
			}
		}
		api, err := remote.client(!a.clientToken, 1)
		if err != nil {
			return err
		}
		v, err := a.call(ctx, api)
		if err != nil {
			return err
		}
		if format != nil && format.Value == "json" {
			return termout.WriteJSON(c.stdout, v)
		}
		return a.text(c.stdout, v)
	}
}

// required is the usage error of a required flag left empty, or nil.
func required(msg string, empty ...bool) error {
	for _, e := range empty {
		if e {
			return cmdline.UsageError{Err: errors.New(msg)}
		}
	}
	return nil
}

// checkName refuses an unusable --name.
func checkName(name *string) func() error {
	return func() error {
		if err := usage.CheckName("--name", *name); err != nil {
			return cmdline.UsageError{Err: err}
		}
		return nil
	}
}

// createNamed is an admin command whose one own flag, --name, names the
// thing (what) it creates.
func createNamed[T any](c *cli, name, summary, what string, create func(context.Context, *client.Client, string) (T, error), text func(io.Writer, T) error) *cmdline.Command {
	cmd, remote := c.newAdminCommand(name, summary, "")
	n := cmd.Flags.String("name", "", "name of the "+what+", required")
	cmd.Run = admin[T]{
		check: checkName(n),
		call:  func(ctx context.Context, api *client.Client) (T, error) { return create(ctx, api, *n) },
		text:  text,
	}.run(c, remote, formatFlag(cmd))
	return cmd
}

func formatFlag(cmd *cmdline.Command) *flagvalue.OneOf {
	f := &flagvalue.OneOf{Value: "text", Allowed: []string{"text", "json"}}
	cmd.Flags.Var(f, "format", "output `format`: text or json")
	return f
}

func (c *cli) orgCreateCommand() *cmdline.Command {
	return createNamed(c, "org create", "create an organization (admin)", "organization",
		func(ctx context.Context, api *client.Client, name string) (wire.Organization, error) {
			return api.CreateOrganization(ctx, name)
		},
		termout.Printed("created organization %q\n  id  %s\n", func(o wire.Organization) []any { return []any{o.Name, o.ID} }))
}

func (c *cli) orgListCommand() *cmdline.Command {
	cmd, remote := c.newAdminCommand("org list", "list organizations (admin)", "")
	rows := termout.Table("ID\tNAME\tCREATED\t", "%s\t%s\t%s\t\n", func(o wire.Organization) []any { return []any{o.ID, o.Name, o.DateCreated} })
	cmd.Run = admin[wire.Entities[wire.Organization]]{
		call: func(ctx context.Context, api *client.Client) (wire.Entities[wire.Organization], error) {
			orgs, err := api.Organizations(ctx)
			return wire.Entities[wire.Organization]{Entities: orgs}, err
		},
		text: func(w io.Writer, v wire.Entities[wire.Organization]) error { return rows(w, v.Entities) },
	}.run(c, remote, formatFlag(cmd))
	return cmd
}

func (c *cli) clientCreateCommand() *cmdline.Command {
	cmd, remote := c.newAdminCommand("client create", "create an OAuth client of an organization and print its secret (admin)",
		"Permissions: "+strings.Join(usage.Permissions, ", ")+".")
	org := cmd.Flags.String("org", "", "organization id, required")
	name := cmd.Flags.String("name", "", "client name, required")
	desc := cmd.Flags.String("description", "", "client description")
	perms := flagvalue.List{}
	cmd.Flags.Var(&perms, "permissions", "comma-separated `permissions`, e.g. usage:event:add,usage:organization:view")
	validity := cmd.Flags.Int("validity", 86400, "lifetime of the client's access tokens, in seconds (300 to 172800)")
	cmd.Run = admin[wire.Client]{
		check: func() error {
			if err := required("--org and --name are required", *org == "", *name == ""); err != nil {
				return err
			}
			for _, p := range perms {
				if !usage.KnownPermission(p) {
					return cmdline.UsageError{Err: fmt.Errorf("--permissions: %q is not one of %s", p, strings.Join(usage.Permissions, ", "))}
				}
			}
			return nil
		},
		call: func(ctx context.Context, api *client.Client) (wire.Client, error) {
			return api.CreateClient(ctx, *org, wire.CreateClientRequest{Name: *name, Description: *desc, Permissions: append([]string{}, perms...), AccessTokenValiditySeconds: int64(*validity)})
		},
		text: func(w io.Writer, cl wire.Client) error {
			fmt.Fprintf(w, `created client %q in organization %s
  id           %s
  secret       %s
  permissions  %s
  token valid  %s

The secret is shown only now; usaged keeps just a hash of it. Get a token with:
  curl -s -u '%s:%s' -d grant_type=client_credentials %s/oauth/token
`, cl.Name, *org, cl.ID, cl.Secret, strings.Join(cl.Permissions, ", "), time.Duration(cl.AccessTokenValiditySeconds)*time.Second,
				cl.ID, cl.Secret, strings.TrimRight(remote.server, "/"))
			return nil
		},
	}.run(c, remote, formatFlag(cmd))
	return cmd
}

func (c *cli) clientListCommand() *cmdline.Command {
	cmd, remote := c.newAdminCommand("client list", "list the OAuth clients of an organization (admin)", "")
	org := cmd.Flags.String("org", "", "organization id, required")
	rows := termout.Table("ID\tNAME\tPERMISSIONS\tTOKEN VALIDITY\tCREATED\t", "%s\t%s\t%s\t%ds\t%s\t\n", func(cl wire.Client) []any {
		return []any{cl.ID, cl.Name, strings.Join(cl.Permissions, ","), cl.AccessTokenValiditySeconds, cl.DateCreated}
	})
	cmd.Run = admin[wire.Entities[wire.Client]]{
		check: func() error { return required("--org is required", *org == "") },
		call: func(ctx context.Context, api *client.Client) (wire.Entities[wire.Client], error) {
			cls, err := api.Clients(ctx, *org)
			return wire.Entities[wire.Client]{Entities: cls}, err
		},
		text: func(w io.Writer, v wire.Entities[wire.Client]) error { return rows(w, v.Entities) },
	}.run(c, remote, formatFlag(cmd))
	return cmd
}

func (c *cli) clientDeleteCommand() *cmdline.Command {
	cmd, remote := c.newAdminCommand("client delete", "delete an OAuth client; its tokens stop working (admin)", "")
	org := cmd.Flags.String("org", "", "organization id, required")
	id := cmd.Flags.String("id", "", "client id, required")
	cmd.Run = admin[struct{}]{
		check: func() error { return required("--org and --id are required", *org == "", *id == "") },
		call: func(ctx context.Context, api *client.Client) (struct{}, error) {
			return struct{}{}, api.DeleteClient(ctx, *org, *id)
		},
		text: termout.Printed("deleted client %s of organization %s\n", func(_ struct{}) []any { return []any{*id, *org} }),
	}.run(c, remote, nil)
	return cmd
}
