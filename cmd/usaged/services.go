package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/usaged/usaged/ccc/dto"
	"github.com/usaged/usaged/client"
	"github.com/usaged/usaged/internal/cmdline"
	"github.com/usaged/usaged/internal/termout"
	"github.com/usaged/usaged/usage"
)

// guidFlag parses the GUID given to --name; empty is zero.
func guidFlag(name, v string) (usage.GUID, error) {
	if v == "" {
		return usage.GUID{}, nil
	}
	g, err := usage.ParseGUID(v)
	if err != nil {
		return g, cmdline.UsageError{Err: fmt.Errorf("--%s %q is not a GUID: use 32 hex digits, optionally dashed as 8-4-4-4-12", name, v)}
	}
	return g, nil
}

// partnerCreateCommand is usaged partner create.
func (c *cli) partnerCreateCommand() *cmdline.Command {
	return createNamed(c, "partner create", "create a partner of the service-usage reports (admin)", "partner",
		func(ctx context.Context, api *client.Client, name string) (dto.Partner, error) {
			return api.CreatePartner(ctx, name)
		},
		termout.Printed("created partner %q\n  guid  %s\n", func(p dto.Partner) []any { return []any{p.Name, p.PartnerGuid} }))
}

// partnerListCommand is usaged partner list.
func (c *cli) partnerListCommand() *cmdline.Command {
	cmd, remote := c.newAdminCommand("partner list", "list the partners (admin)", "")
	cmd.Run = admin[[]dto.Partner]{
		call: func(ctx context.Context, api *client.Client) ([]dto.Partner, error) { return api.Partners(ctx) },
		text: termout.Table("GUID\tNAME\tCREATED\t", "%s\t%s\t%s\t\n", func(p dto.Partner) []any { return []any{p.PartnerGuid, p.Name, p.CreatedOn} }),
	}.run(c, remote, formatFlag(cmd))
	return cmd
}

// resellerCreateCommand is usaged reseller create.
func (c *cli) resellerCreateCommand() *cmdline.Command {
	cmd, remote := c.newAdminCommand("reseller create", "create a reseller of a partner (admin)", "")
	partner := cmd.Flags.String("partner", "", "GUID of the partner, required")
	name := cmd.Flags.String("name", "", "name of the reseller, required")
	var p usage.GUID
	cmd.Run = admin[dto.Reseller]{
		check: func() (err error) {
			if err := required("--partner and --name are required", *partner == "", strings.TrimSpace(*name) == ""); err != nil {
				return err
			}
			p, err = guidFlag("partner", *partner)
			return err
		},
		call: func(ctx context.Context, api *client.Client) (dto.Reseller, error) {
			return api.CreateReseller(ctx, p, *name)
		},
		text: termout.Printed("created reseller %q of partner %s\n  guid  %s\n", func(x dto.Reseller) []any { return []any{x.Name, x.PartnerGuid, x.ResellerGuid} }),
	}.run(c, remote, formatFlag(cmd))
	return cmd
}

// resellerListCommand is usaged reseller list.
func (c *cli) resellerListCommand() *cmdline.Command {
	cmd, remote := c.newAdminCommand("reseller list", "list the resellers of a partner (admin)", "")
	partner := cmd.Flags.String("partner", "", "GUID of the partner, required")
	var p usage.GUID
	cmd.Run = admin[[]dto.Reseller]{
		check: func() (err error) {
			if err := required("--partner is required", *partner == ""); err != nil {
				return err
			}
			p, err = guidFlag("partner", *partner)
			return err
		},
		call: func(ctx context.Context, api *client.Client) ([]dto.Reseller, error) { return api.Resellers(ctx, p) },
		text: termout.Table("GUID\tNAME\tCREATED\t", "%s\t%s\t%s\t\n", func(x dto.Reseller) []any { return []any{x.ResellerGuid, x.Name, x.CreatedOn} }),
	}.run(c, remote, formatFlag(cmd))
	return cmd
}

// apikeyCreateCommand is usaged apikey create.
func (c *cli) apikeyCreateCommand() *cmdline.Command {
	cmd, remote := c.newAdminCommand("apikey create", "create an API key for the service-usage reports and print it (admin)",
		`A key is scoped to exactly one of a partner (every service of its resellers),
a reseller (its services) or one service. The key is shown only in this answer;
the server keeps just a hash of it. Send it as Authorization: Bearer <key>.`)
	name := cmd.Flags.String("name", "", "name of the key, required")
	partner := cmd.Flags.String("partner", "", "scope the key to the partner with this `GUID`")
	reseller := cmd.Flags.String("reseller", "", "scope the key to the reseller with this `GUID`")
	service := cmd.Flags.String("service", "", "scope the key to the service with this `GUID`")
	var scope usage.Scope
	cmd.Run = admin[dto.APIKey]{
		check: func() error {
			if err := checkName(name)(); err != nil {
				return err
			}
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
				return cmdline.UsageError{Err: fmt.Errorf("give exactly one of --partner, --reseller or --service, got %d", set)}
			}
			return nil
		},
		call: func(ctx context.Context, api *client.Client) (dto.APIKey, error) {
			return api.CreateAPIKey(ctx, *name, scope)
		},
		text: func(w io.Writer, k dto.APIKey) error {
			fmt.Fprintf(w, `created API key %q for %s %s
  id   %s
  key  %s

The key is shown only now; usaged keeps just a hash of it. Try it:
  %s
`, k.Name, k.Scope, k.ScopeGuid, k.Id, k.Key, curlExample(remote.server, k.Key, scope))
			return nil
		},
	}.run(c, remote, formatFlag(cmd))
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
func (c *cli) apikeyListCommand() *cmdline.Command {
	cmd, remote := c.newAdminCommand("apikey list", "list the API keys of the service-usage reports, without their secrets (admin)", "")
	cmd.Run = admin[[]dto.APIKey]{
		call: func(ctx context.Context, api *client.Client) ([]dto.APIKey, error) { return api.APIKeys(ctx) },
		text: termout.Table("ID\tNAME\tSCOPE\tSCOPE GUID\tCREATED\t", "%s\t%s\t%s\t%s\t%s\t\n", func(k dto.APIKey) []any {
			return []any{k.Id, k.Name, k.Scope, k.ScopeGuid, k.CreatedOn}
		}),
	}.run(c, remote, formatFlag(cmd))
	return cmd
}

// apikeyDeleteCommand is usaged apikey delete.
func (c *cli) apikeyDeleteCommand() *cmdline.Command {
	cmd, remote := c.newAdminCommand("apikey delete", "revoke an API key at once (admin)", "")
	id := cmd.Flags.String("id", "", "id of the key as apikey list shows it (64 hex digits), required")
	cmd.Run = admin[struct{}]{
		check: func() error { return required("--id is required", *id == "") },
		call: func(ctx context.Context, api *client.Client) (struct{}, error) {
			return struct{}{}, api.DeleteAPIKey(ctx, *id)
		},
		text: termout.Printed("deleted API key %s\n", func(_ struct{}) []any { return []any{*id} }),
	}.run(c, remote, nil)
	return cmd
}
