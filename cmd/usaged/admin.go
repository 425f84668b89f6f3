package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/usage"
)

// jsonOr returns err, or writes v as indented JSON.
func (c *cli) jsonOr(err error, v any) error {
	if err != nil {
		return err
	}
	return writeJSON(c.stdout, v)
}

// newTable starts a table of tab-separated columns under header.
func newTable(w io.Writer, header string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	return tw
}

func formatFlag(cmd *command) *oneOf {
	f := &oneOf{value: "text", allowed: []string{"text", "json"}}
	cmd.Flags.Var(f, "format", "output `format`: text or json")
	return f
}

func (c *cli) orgCreateCommand() *command {
	cmd := c.newCommand("org create", "create an organization (admin)", "")
	remote := addRemoteFlags(cmd.Flags, "admin token")
	name := cmd.Flags.String("name", "", "name of the organization, required")
	format := formatFlag(cmd)
	cmd.Run = func(ctx context.Context) error {
		if err := usage.CheckName("--name", *name); err != nil {
			return usageError{Err: err}
		}
		api, err := remote.client(true, 1)
		if err != nil {
			return err
		}
		o, err := api.CreateOrganization(ctx, *name)
		if err != nil || format.value == "json" {
			return c.jsonOr(err, o)
		}
		fmt.Fprintf(c.stdout, "created organization %q\n  id  %s\n", o.Name, o.ID)
		return nil
	}
	return cmd
}

func (c *cli) orgListCommand() *command {
	cmd := c.newCommand("org list", "list organizations (admin)", "")
	remote := addRemoteFlags(cmd.Flags, "admin token")
	format := formatFlag(cmd)
	cmd.Run = func(ctx context.Context) error {
		api, err := remote.client(true, 1)
		if err != nil {
			return err
		}
		orgs, err := api.Organizations(ctx)
		if err != nil || format.value == "json" {
			return c.jsonOr(err, wire.Entities[wire.Organization]{Entities: orgs})
		}
		tw := newTable(c.stdout, "ID\tNAME\tCREATED\t")
		for _, o := range orgs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t\n", o.ID, o.Name, o.DateCreated)
		}
		return tw.Flush()
	}
	return cmd
}

func (c *cli) clientCreateCommand() *command {
	cmd := c.newCommand("client create", "create an OAuth client of an organization and print its secret (admin)",
		"Permissions: "+strings.Join(usage.Permissions, ", ")+".")
	remote := addRemoteFlags(cmd.Flags, "admin token")
	org := cmd.Flags.String("org", "", "organization id, required")
	name := cmd.Flags.String("name", "", "client name, required")
	desc := cmd.Flags.String("description", "", "client description")
	perms := listValue{}
	cmd.Flags.Var(&perms, "permissions", "comma-separated `permissions`, e.g. usage:event:add,usage:organization:view")
	validity := cmd.Flags.Int("validity", 86400, "lifetime of the client's access tokens, in seconds (300 to 172800)")
	format := formatFlag(cmd)
	cmd.Run = func(ctx context.Context) error {
		if *org == "" || *name == "" {
			return usageError{Err: errors.New("--org and --name are required")}
		}
		for _, p := range perms {
			if !usage.KnownPermission(p) {
				return usageError{Err: fmt.Errorf("--permissions: %q is not one of %s", p, strings.Join(usage.Permissions, ", "))}
			}
		}
		api, err := remote.client(true, 1)
		if err != nil {
			return err
		}
		cl, err := api.CreateClient(ctx, *org, wire.CreateClientRequest{Name: *name, Description: *desc, Permissions: append([]string{}, perms...), AccessTokenValiditySeconds: int64(*validity)})
		if err != nil || format.value == "json" {
			return c.jsonOr(err, cl)
		}
		fmt.Fprintf(c.stdout, `created client %q in organization %s
  id           %s
  secret       %s
  permissions  %s
  token valid  %s

The secret is shown only now; usaged keeps just a hash of it. Get a token with:
  curl -s -u '%s:%s' -d grant_type=client_credentials %s/oauth/token
`, cl.Name, *org, cl.ID, cl.Secret, strings.Join(cl.Permissions, ", "), time.Duration(cl.AccessTokenValiditySeconds)*time.Second,
			cl.ID, cl.Secret, strings.TrimRight(remote.server, "/"))
		return nil
	}
	return cmd
}

func (c *cli) clientListCommand() *command {
	cmd := c.newCommand("client list", "list the OAuth clients of an organization (admin)", "")
	remote := addRemoteFlags(cmd.Flags, "admin token")
	org := cmd.Flags.String("org", "", "organization id, required")
	format := formatFlag(cmd)
	cmd.Run = func(ctx context.Context) error {
		if *org == "" {
			return usageError{Err: errors.New("--org is required")}
		}
		api, err := remote.client(true, 1)
		if err != nil {
			return err
		}
		cls, err := api.Clients(ctx, *org)
		if err != nil || format.value == "json" {
			return c.jsonOr(err, wire.Entities[wire.Client]{Entities: cls})
		}
		tw := newTable(c.stdout, "ID\tNAME\tPERMISSIONS\tTOKEN VALIDITY\tCREATED\t")
		for _, cl := range cls {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%ds\t%s\t\n", cl.ID, cl.Name, strings.Join(cl.Permissions, ","), cl.AccessTokenValiditySeconds, cl.DateCreated)
		}
		return tw.Flush()
	}
	return cmd
}

func (c *cli) clientDeleteCommand() *command {
	cmd := c.newCommand("client delete", "delete an OAuth client; its tokens stop working (admin)", "")
	remote := addRemoteFlags(cmd.Flags, "admin token")
	org := cmd.Flags.String("org", "", "organization id, required")
	id := cmd.Flags.String("id", "", "client id, required")
	cmd.Run = func(ctx context.Context) error {
		if *org == "" || *id == "" {
			return usageError{Err: errors.New("--org and --id are required")}
		}
		api, err := remote.client(true, 1)
		if err != nil {
			return err
		}
		if err := api.DeleteClient(ctx, *org, *id); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "deleted client %s of organization %s\n", *id, *org)
		return nil
	}
	return cmd
}
