package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/usaged/usaged/usage"
)

func formatFlag(cmd *command) *oneOf {
	f := &oneOf{value: "text", allowed: []string{"text", "json"}}
	cmd.fs.Var(f, "format", "output `format`: text or json")
	return f
}

func (c *cli) orgCreateCommand() *command {
	cmd := c.newCommand("org create", "create an organization (admin)", "")
	remote := addRemoteFlags(cmd.fs, "admin token")
	name := cmd.fs.String("name", "", "name of the organization, required")
	format := formatFlag(cmd)
	cmd.run = func(ctx context.Context) error {
		if err := usage.CheckName("--name", *name); err != nil {
			return usageError{err: err}
		}
		api, err := remote.client(true, 1)
		if err != nil {
			return err
		}
		o, err := api.createOrg(ctx, *name)
		if err != nil {
			return err
		}
		if format.value == "json" {
			return writeJSON(c.stdout, o)
		}
		fmt.Fprintf(c.stdout, "created organization %q\n  id  %s\n", o.Name, o.ID)
		return nil
	}
	return cmd
}

func (c *cli) orgListCommand() *command {
	cmd := c.newCommand("org list", "list organizations (admin)", "")
	remote := addRemoteFlags(cmd.fs, "admin token")
	format := formatFlag(cmd)
	cmd.run = func(ctx context.Context) error {
		api, err := remote.client(true, 1)
		if err != nil {
			return err
		}
		orgs, err := api.listOrgs(ctx)
		if err != nil {
			return err
		}
		if format.value == "json" {
			return writeJSON(c.stdout, entities[orgBody]{Entities: orgs})
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCREATED\t")
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
	remote := addRemoteFlags(cmd.fs, "admin token")
	org := cmd.fs.String("org", "", "organization id, required")
	name := cmd.fs.String("name", "", "client name, required")
	desc := cmd.fs.String("description", "", "client description")
	perms := listValue{}
	cmd.fs.Var(&perms, "permissions", "comma-separated `permissions`, e.g. usage:event:add,usage:organization:view")
	validity := cmd.fs.Int("validity", 86400, "lifetime of the client's access tokens, in seconds (300 to 172800)")
	format := formatFlag(cmd)
	cmd.run = func(ctx context.Context) error {
		if *org == "" || *name == "" {
			return usageError{err: errors.New("--org and --name are required")}
		}
		for _, p := range perms {
			if !usage.KnownPermission(p) {
				return usageError{err: fmt.Errorf("--permissions: %q is not one of %s", p, strings.Join(usage.Permissions, ", "))}
			}
		}
		api, err := remote.client(true, 1)
		if err != nil {
			return err
		}
		cl, err := api.createClient(ctx, *org, createClientRequest{Name: *name, Description: *desc, Permissions: append([]string{}, perms...), AccessTokenValiditySeconds: int64(*validity)})
		if err != nil {
			return err
		}
		if format.value == "json" {
			return writeJSON(c.stdout, cl)
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
	remote := addRemoteFlags(cmd.fs, "admin token")
	org := cmd.fs.String("org", "", "organization id, required")
	format := formatFlag(cmd)
	cmd.run = func(ctx context.Context) error {
		if *org == "" {
			return usageError{err: errors.New("--org is required")}
		}
		api, err := remote.client(true, 1)
		if err != nil {
			return err
		}
		cls, err := api.listClients(ctx, *org)
		if err != nil {
			return err
		}
		if format.value == "json" {
			return writeJSON(c.stdout, entities[clientBody]{Entities: cls})
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tPERMISSIONS\tTOKEN VALIDITY\tCREATED\t")
		for _, cl := range cls {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%ds\t%s\t\n", cl.ID, cl.Name, strings.Join(cl.Permissions, ","), cl.AccessTokenValiditySeconds, cl.DateCreated)
		}
		return tw.Flush()
	}
	return cmd
}

func (c *cli) clientDeleteCommand() *command {
	cmd := c.newCommand("client delete", "delete an OAuth client; its tokens stop working (admin)", "")
	remote := addRemoteFlags(cmd.fs, "admin token")
	org := cmd.fs.String("org", "", "organization id, required")
	id := cmd.fs.String("id", "", "client id, required")
	cmd.run = func(ctx context.Context) error {
		if *org == "" || *id == "" {
			return usageError{err: errors.New("--org and --id are required")}
		}
		api, err := remote.client(true, 1)
		if err != nil {
			return err
		}
		if err := api.deleteClient(ctx, *org, *id); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "deleted client %s of organization %s\n", *id, *org)
		return nil
	}
	return cmd
}
