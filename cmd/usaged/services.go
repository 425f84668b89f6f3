package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/usaged/usaged/demo"
	"github.com/usaged/usaged/usage"
)

// guidFlag parses the GUID given to --name; empty is zero.
func guidFlag(name, v string) (usage.GUID, error) {
	if v == "" {
		return usage.GUID{}, nil
	}
	g, err := usage.ParseGUID(v)
	if err != nil {
		return g, usageError{Err: fmt.Errorf("--%s %q is not a GUID: use 32 hex digits, optionally dashed as 8-4-4-4-12", name, v)}
	}
	return g, nil
}

// partnerCreateCommand is usaged partner create.
func (c *cli) partnerCreateCommand() *command {
	cmd := c.newCommand("partner create", "create a partner of the service-usage reports (admin)", "")
	remote := addRemoteFlags(cmd.Flags, "admin token")
	name := cmd.Flags.String("name", "", "name of the partner, required")
	format := formatFlag(cmd)
	cmd.Run = func(ctx context.Context) error {
		if err := usage.CheckName("--name", *name); err != nil {
			return usageError{Err: err}
		}
		api, err := remote.client(true, 1)
		if err != nil {
			return err
		}
		p, err := api.CreatePartner(ctx, *name)
		if err != nil || format.value == "json" {
			return c.jsonOr(err, p)
		}
		fmt.Fprintf(c.stdout, "created partner %q\n  guid  %s\n", p.Name, p.PartnerGuid)
		return nil
	}
	return cmd
}

// partnerListCommand is usaged partner list.
func (c *cli) partnerListCommand() *command {
	cmd := c.newCommand("partner list", "list the partners (admin)", "")
	remote := addRemoteFlags(cmd.Flags, "admin token")
	format := formatFlag(cmd)
	cmd.Run = func(ctx context.Context) error {
		api, err := remote.client(true, 1)
		if err != nil {
			return err
		}
		ps, err := api.Partners(ctx)
		if err != nil || format.value == "json" {
			return c.jsonOr(err, ps)
		}
		tw := newTable(c.stdout, "GUID\tNAME\tCREATED\t")
		for _, p := range ps {
			fmt.Fprintf(tw, "%s\t%s\t%s\t\n", p.PartnerGuid, p.Name, p.CreatedOn)
		}
		return tw.Flush()
	}
	return cmd
}

// resellerCreateCommand is usaged reseller create.
func (c *cli) resellerCreateCommand() *command {
	cmd := c.newCommand("reseller create", "create a reseller of a partner (admin)", "")
	remote := addRemoteFlags(cmd.Flags, "admin token")
	partner := cmd.Flags.String("partner", "", "GUID of the partner, required")
	name := cmd.Flags.String("name", "", "name of the reseller, required")
	format := formatFlag(cmd)
	cmd.Run = func(ctx context.Context) error {
		if *partner == "" || strings.TrimSpace(*name) == "" {
			return usageError{Err: errors.New("--partner and --name are required")}
		}
		p, err := guidFlag("partner", *partner)
		if err != nil {
			return err
		}
		api, err := remote.client(true, 1)
		if err != nil {
			return err
		}
		x, err := api.CreateReseller(ctx, p, *name)
		if err != nil || format.value == "json" {
			return c.jsonOr(err, x)
		}
		fmt.Fprintf(c.stdout, "created reseller %q of partner %s\n  guid  %s\n", x.Name, x.PartnerGuid, x.ResellerGuid)
		return nil
	}
	return cmd
}

// resellerListCommand is usaged reseller list.
func (c *cli) resellerListCommand() *command {
	cmd := c.newCommand("reseller list", "list the resellers of a partner (admin)", "")
	remote := addRemoteFlags(cmd.Flags, "admin token")
	partner := cmd.Flags.String("partner", "", "GUID of the partner, required")
	format := formatFlag(cmd)
	cmd.Run = func(ctx context.Context) error {
		if *partner == "" {
			return usageError{Err: errors.New("--partner is required")}
		}
		p, err := guidFlag("partner", *partner)
		if err != nil {
			return err
		}
		api, err := remote.client(true, 1)
		if err != nil {
			return err
		}
		xs, err := api.Resellers(ctx, p)
		if err != nil || format.value == "json" {
			return c.jsonOr(err, xs)
		}
		tw := newTable(c.stdout, "GUID\tNAME\tCREATED\t")
		for _, x := range xs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t\n", x.ResellerGuid, x.Name, x.CreatedOn)
		}
		return tw.Flush()
	}
	return cmd
}

// apikeyCreateCommand is usaged apikey create.
func (c *cli) apikeyCreateCommand() *command {
	cmd := c.newCommand("apikey create", "create an API key for the service-usage reports and print it (admin)",
		`A key is scoped to exactly one of a partner (every service of its resellers),
a reseller (its services) or one service. The key is shown only in this answer;
the server keeps just a hash of it. Send it as Authorization: Bearer <key>.`)
	remote := addRemoteFlags(cmd.Flags, "admin token")
	name := cmd.Flags.String("name", "", "name of the key, required")
	partner := cmd.Flags.String("partner", "", "scope the key to the partner with this `GUID`")
	reseller := cmd.Flags.String("reseller", "", "scope the key to the reseller with this `GUID`")
	service := cmd.Flags.String("service", "", "scope the key to the service with this `GUID`")
	format := formatFlag(cmd)
	cmd.Run = func(ctx context.Context) error {
		if err := usage.CheckName("--name", *name); err != nil {
			return usageError{Err: err}
		}
		var scope usage.Scope
		var set int
		for _, s := range []struct {
			flag, v string
			kind    usage.ScopeKind
		}{{"partner", *partner, usage.ScopePartner}, {"reseller", *reseller, usage.ScopeReseller}, {"service", *service, usage.ScopeService}} {
			if s.v == "" {
				continue
			}
			g, err := guidFlag(s.flag, s.v)
			if err != nil {
				return err
			}
			scope, set = usage.Scope{Kind: s.kind, GUID: g}, set+1
		}
		if set != 1 {
			return usageError{Err: fmt.Errorf("give exactly one of --partner, --reseller or --service, got %d", set)}
		}
		api, err := remote.client(true, 1)
		if err != nil {
			return err
		}
		k, err := api.CreateAPIKey(ctx, *name, scope)
		if err != nil || format.value == "json" {
			return c.jsonOr(err, k)
		}
		fmt.Fprintf(c.stdout, `created API key %q for %s %s
  id   %s
  key  %s

The key is shown only now; usaged keeps just a hash of it. Try it:
  %s
`, k.Name, k.Scope, k.ScopeGuid, k.Id, k.Key, curlExample(remote.server, k.Key, scope))
		return nil
	}
	return cmd
}

// curlExample is a request a key of scope may make: the usage of its
// services, or of its one service.
func curlExample(server, key string, scope usage.Scope) string {
	path := "/api/services/usage"
	if scope.Kind == usage.ScopeService {
		path = "/api/services/" + scope.GUID.String() + "/serviceusage"
	}
	return fmt.Sprintf("curl -s -H 'Authorization: Bearer %s' %s%s", key, strings.TrimRight(server, "/"), path)
}

// apikeyListCommand is usaged apikey list.
func (c *cli) apikeyListCommand() *command {
	cmd := c.newCommand("apikey list", "list the API keys of the service-usage reports, without their secrets (admin)", "")
	remote := addRemoteFlags(cmd.Flags, "admin token")
	format := formatFlag(cmd)
	cmd.Run = func(ctx context.Context) error {
		api, err := remote.client(true, 1)
		if err != nil {
			return err
		}
		ks, err := api.APIKeys(ctx)
		if err != nil || format.value == "json" {
			return c.jsonOr(err, ks)
		}
		tw := newTable(c.stdout, "ID\tNAME\tSCOPE\tSCOPE GUID\tCREATED\t")
		for _, k := range ks {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", k.Id, k.Name, k.Scope, k.ScopeGuid, k.CreatedOn)
		}
		return tw.Flush()
	}
	return cmd
}

// apikeyDeleteCommand is usaged apikey delete.
func (c *cli) apikeyDeleteCommand() *command {
	cmd := c.newCommand("apikey delete", "revoke an API key at once (admin)", "")
	remote := addRemoteFlags(cmd.Flags, "admin token")
	id := cmd.Flags.String("id", "", "id of the key as apikey list shows it (64 hex digits), required")
	cmd.Run = func(ctx context.Context) error {
		if *id == "" {
			return usageError{Err: errors.New("--id is required")}
		}
		api, err := remote.client(true, 1)
		if err != nil {
			return err
		}
		if err := api.DeleteAPIKey(ctx, *id); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "deleted API key %s\n", *id)
		return nil
	}
	return cmd
}

// printServiceDemo shows how to read a service-usage demo with its key.
func printServiceDemo(w io.Writer, base string, s *demo.ServiceSummary) {
	p := s.Partners[0]
	// Without a Period the reports answer the current UTC day so far, which
	// holds little or nothing (the demo's activity ends when it was seeded,
	// at the start of the hour for usaged demo): ask for the window's last
	// whole day, yesterday when just seeded.
	day := lastWholeDay(s.Interval)
	fmt.Fprintf(w, `
Service usage: %s under %s were seeded with %s activity events over %s.
The API key of partner %q (%s) sees its %s:
  API key  %s

Try it (%s, the demo's last whole day; without Period the reports answer today so far):
  curl -s -H 'Authorization: Bearer %s' '%s/api/services/usage?Period=%s'
  curl -s -H 'Authorization: Bearer %s' '%s/api/services/%s/serviceusage.csv?Period=%s'
`, plural(s.Services, "service"), plural(len(s.Partners), "partner"), group(int64(s.Events)), s.Interval,
		p.Name, p.GUID, plural(s.KeyServices, "service"), s.APIKey,
		day, s.APIKey, base, day, s.APIKey, base, s.SampleService, day)
}

// lastWholeDay is the last UTC day that ends inside the interval iv, as
// yyyy-MM-dd.
func lastWholeDay(iv string) string {
	i, err := usage.ParseInterval(iv)
	if err != nil {
		return time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	}
	return i.End.UTC().Truncate(24*time.Hour).AddDate(0, 0, -1).Format(time.DateOnly)
}
