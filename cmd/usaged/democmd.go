package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/usaged/usaged/demo"
	"github.com/usaged/usaged/internal/cmdline"
	"github.com/usaged/usaged/internal/flagvalue"
	"github.com/usaged/usaged/internal/termout"
)

// demoFlags are demo's flags: those of the seeding bind to its
// configurations.
type demoFlags struct {
	remote   *remoteFlags
	format   flagvalue.OneOf
	services bool // also the service-usage demo, with svc
	r        demo.Remote
	svc      demo.ServicesConfig
}

func (c *cli) demoCommand() *cmdline.Command {
	cmd := c.newCommand("demo", "seed a running server with synthetic traffic over HTTP",
		`Finds or creates the organizations ("Demo Org", "Demo Org 2", …, or those given
with --org) and their integration clients through the admin API, then posts
gzip NDJSON batches of generated events covering the --days whole hours before
now. The traffic is a function of --seed and the organization: running the same
command again within the hour sends only duplicates.

Unless --services=false, it also seeds the service-usage reports: it finds or
creates demo partners, their resellers and collections and the customer
services they sell (in several statuses, Blocked and Provisioning included
from four services on; services it finds keep the status they have), posts the same --days of each service's activity
(users, messages, attachments, features) as gzip NDJSON, and creates an API key
scoped to the first partner, which it prints with requests to try. The activity
is a function of --seed too: a re-run within the hour sends only duplicates,
but creates a new key each time.`)
	f := &demoFlags{format: flagvalue.OneOf{Value: "text", Allowed: []string{"text", "json"}}}
	f.remote = addRemoteFlags(cmd.Flags, "admin token")
	cmd.Flags.Int64Var(&f.r.Seed, "seed", 1, "seed of the generated traffic; the same seed yields the same events")
	cmd.Flags.IntVar(&f.r.Orgs, "orgs", 1, "number of demo organizations to find or create (ignored with --org)")
	cmd.Flags.Var((*flagvalue.List)(&f.r.OrgIDs), "org", "comma-separated `ids` of existing organizations to send traffic for, instead of demo ones")
	cmd.Flags.IntVar(&f.r.Clients, "clients", 8, "integration clients per organization")
	cmd.Flags.IntVar(&f.r.UsersPerOrg, "users", 50, "distinct users per organization")
	cmd.Flags.IntVar(&f.r.Templates, "templates", 150, fmt.Sprintf("distinct route templates, at most %d", demo.TemplateCount))
	cmd.Flags.IntVar(&f.r.Days, "days", 30, "days of traffic, ending at the start of the current hour")
	cmd.Flags.IntVar(&f.r.EventsPerDay, "events-per-day", 10_000, "average events per organization per day")
	cmd.Flags.IntVar(&f.r.Batch, "batch", 5000, "events per request")
	cmd.Flags.IntVar(&f.r.Concurrency, "concurrency", 2, "requests in flight")
	cmd.Flags.Var(&f.format, "format", "summary `format`: text or json (progress then goes to stderr)")
	cmd.Flags.BoolVar(&f.services, "services", true, "also seed the service-usage reports: partners, resellers, services, their activity and a partner API key")
	cmd.Flags.IntVar(&f.svc.Partners, "partners", 1, "demo partners of the service-usage reports")
	cmd.Flags.IntVar(&f.svc.ResellersPerPartner, "resellers-per-partner", 2, "resellers of each demo partner")
	cmd.Flags.IntVar(&f.svc.ServicesPerReseller, "services-per-reseller", 3, "customer services of each demo reseller")
	cmd.Flags.IntVar(&f.svc.UsersPerService, "users-per-service", 15, fmt.Sprintf("people using each demo service, from %d", demo.MinUsersPerService))
	cmd.Run = func(ctx context.Context) error { return c.demo(ctx, f) }
	return cmd
}

func (c *cli) demo(ctx context.Context, f *demoFlags) error {
	if err := inRange(bound{"orgs", f.r.Orgs, 1, demo.MaxOrgs}, bound{"clients", f.r.Clients, 1, demo.MaxClients},
		bound{"templates", f.r.Templates, 1, demo.TemplateCount}, bound{"days", f.r.Days, 1, 5 * 365},
		bound{"events-per-day", f.r.EventsPerDay, 1, demo.MaxEventsPerDay}, bound{"batch", f.r.Batch, 1, 1_000_000},
		bound{"concurrency", f.r.Concurrency, 1, 256}, bound{"users", f.r.UsersPerOrg, 0, demo.MaxUsers}); err != nil {
		return err
	}
	if f.services {
		if err := inRange(bound{"partners", f.svc.Partners, 1, demo.MaxPartners},
			bound{"resellers-per-partner", f.svc.ResellersPerPartner, 1, demo.MaxResellersPerPartner},
			bound{"services-per-reseller", f.svc.ServicesPerReseller, 1, demo.MaxServicesPerReseller},
			bound{"users-per-service", f.svc.UsersPerService, demo.MinUsersPerService, demo.MaxUsersPerService}); err != nil {
			return err
		}
		if f.r.Days > demo.MaxServiceDays {
			return cmdline.UsageError{Err: fmt.Errorf("--days must be at most %d with --services, got %d", demo.MaxServiceDays, f.r.Days)}
		}
	}
	api, err := f.remote.client(true, f.r.Concurrency)
	if err != nil {
		return err
	}
	out, info := c.stdout, c.stdout
	if f.format.Value == "json" {
		info = c.stderr
	}
	r := &f.r
	r.API, r.End, r.Info = api, time.Now().UTC().Truncate(time.Hour), info
	sum, err := r.SeedEvents(ctx)
	if err != nil {
		return err
	}
	if f.format.Value != "json" {
		fmt.Fprintf(out, "done: %s events in %.1fs (%s events/s): %s accepted, %s duplicates, %s rejected\n",
			termout.Group(int64(sum.Events)), sum.Seconds, termout.Group(int64(sum.EventsPerSecond)), termout.Group(int64(sum.Accepted)), termout.Group(int64(sum.Duplicates)), termout.Group(int64(sum.Rejected)))
		for _, e := range sum.Errors {
			fmt.Fprintf(out, "  rejected %s: %s %s\n", e.ID, e.Code, e.Message)
		}
	}
	if f.services {
		f.svc.Seed = uint64(r.Seed)
		sum.ServiceUsage, err = r.SeedServices(ctx, f.svc)
		if err != nil {
			return err
		}
	}
	if f.format.Value == "json" {
		return termout.WriteJSON(out, sum)
	}
	if s := sum.ServiceUsage; s != nil {
		fmt.Fprintf(out, "service usage: %s activity events of %s (%d created): %s accepted, %s duplicates, %s rejected\n",
			termout.Group(int64(s.Events)), termout.Plural(s.Services, "service"), s.Created, termout.Group(int64(s.Accepted)), termout.Group(int64(s.Duplicates)), termout.Group(int64(s.Rejected)))
		for _, e := range s.Errors {
			fmt.Fprintf(out, "  rejected %s: %s %s\n", e.ID, e.Code, e.Message)
		}
		demo.PrintServices(out, strings.TrimRight(f.remote.server, "/"), s)
	}
	return nil
}
