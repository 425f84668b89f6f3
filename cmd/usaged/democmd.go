package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/usaged/usaged/demo"
)

type demoFlags struct {
	remote       *remoteFlags
	seed         int64
	orgs         int
	org          listValue
	clients      int
	users        int
	templates    int
	days         int
	eventsPerDay int
	batch        int
	concurrency  int
	format       oneOf

	// The service-usage demo.
	services            bool
	partners            int
	resellersPerPartner int
	servicesPerReseller int
	usersPerService     int
}

func (c *cli) demoCommand() *command {
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
	f := &demoFlags{format: oneOf{value: "text", allowed: []string{"text", "json"}}}
	f.remote = addRemoteFlags(cmd.Flags, "admin token")
	cmd.Flags.Int64Var(&f.seed, "seed", 1, "seed of the generated traffic; the same seed yields the same events")
	cmd.Flags.IntVar(&f.orgs, "orgs", 1, "number of demo organizations to find or create (ignored with --org)")
	cmd.Flags.Var(&f.org, "org", "comma-separated `ids` of existing organizations to send traffic for, instead of demo ones")
	cmd.Flags.IntVar(&f.clients, "clients", 8, "integration clients per organization")
	cmd.Flags.IntVar(&f.users, "users", 50, "distinct users per organization")
	cmd.Flags.IntVar(&f.templates, "templates", 150, fmt.Sprintf("distinct route templates, at most %d", demo.TemplateCount))
	cmd.Flags.IntVar(&f.days, "days", 30, "days of traffic, ending at the start of the current hour")
	cmd.Flags.IntVar(&f.eventsPerDay, "events-per-day", 10_000, "average events per organization per day")
	cmd.Flags.IntVar(&f.batch, "batch", 5000, "events per request")
	cmd.Flags.IntVar(&f.concurrency, "concurrency", 2, "requests in flight")
	cmd.Flags.Var(&f.format, "format", "summary `format`: text or json (progress then goes to stderr)")
	cmd.Flags.BoolVar(&f.services, "services", true, "also seed the service-usage reports: partners, resellers, services, their activity and a partner API key")
	cmd.Flags.IntVar(&f.partners, "partners", 1, "demo partners of the service-usage reports")
	cmd.Flags.IntVar(&f.resellersPerPartner, "resellers-per-partner", 2, "resellers of each demo partner")
	cmd.Flags.IntVar(&f.servicesPerReseller, "services-per-reseller", 3, "customer services of each demo reseller")
	cmd.Flags.IntVar(&f.usersPerService, "users-per-service", 15, fmt.Sprintf("people using each demo service, from %d", demo.MinUsersPerService))
	cmd.Run = func(ctx context.Context) error { return c.demo(ctx, f) }
	return cmd
}

func (c *cli) demo(ctx context.Context, f *demoFlags) error {
	for _, v := range []struct {
		name     string
		val, max int
	}{{"orgs", f.orgs, demo.MaxOrgs}, {"clients", f.clients, demo.MaxClients}, {"templates", f.templates, demo.TemplateCount},
		{"days", f.days, 5 * 365}, {"events-per-day", f.eventsPerDay, demo.MaxEventsPerDay}, {"batch", f.batch, 1_000_000}, {"concurrency", f.concurrency, 256}} {
		if v.val < 1 || v.val > v.max {
			return usageError{Err: fmt.Errorf("--%s must be from 1 to %d, got %d", v.name, v.max, v.val)}
		}
	}
	if f.users < 0 || f.users > demo.MaxUsers {
		return usageError{Err: fmt.Errorf("--users must be from 0 to %d, got %d", demo.MaxUsers, f.users)}
	}
	if f.services {
		for _, v := range []struct {
			name          string
			val, min, max int
		}{{"partners", f.partners, 1, demo.MaxPartners}, {"resellers-per-partner", f.resellersPerPartner, 1, demo.MaxResellersPerPartner},
			{"services-per-reseller", f.servicesPerReseller, 1, demo.MaxServicesPerReseller},
			{"users-per-service", f.usersPerService, demo.MinUsersPerService, demo.MaxUsersPerService}} {
			if v.val < v.min || v.val > v.max {
				return usageError{Err: fmt.Errorf("--%s must be from %d to %d, got %d", v.name, v.min, v.max, v.val)}
			}
		}
		if f.days > demo.MaxServiceDays {
			return usageError{Err: fmt.Errorf("--days must be at most %d with --services, got %d", demo.MaxServiceDays, f.days)}
		}
	}
	api, err := f.remote.client(true, f.concurrency)
	if err != nil {
		return err
	}
	out, info := c.stdout, c.stdout
	if f.format.value == "json" {
		info = c.stderr
	}
	r := &demo.Remote{API: api, Seed: f.seed, OrgIDs: f.org, Orgs: f.orgs, Clients: f.clients, UsersPerOrg: f.users, Templates: f.templates,
		Days: f.days, End: time.Now().UTC().Truncate(time.Hour), EventsPerDay: f.eventsPerDay, Batch: f.batch, Concurrency: f.concurrency, Info: info}
	sum, err := r.SeedEvents(ctx)
	if err != nil {
		return err
	}
	if f.format.value != "json" {
		fmt.Fprintf(out, "done: %s events in %.1fs (%s events/s): %s accepted, %s duplicates, %s rejected\n",
			group(int64(sum.Events)), sum.Seconds, group(int64(sum.EventsPerSecond)), group(int64(sum.Accepted)), group(int64(sum.Duplicates)), group(int64(sum.Rejected)))
		for _, e := range sum.Errors {
			fmt.Fprintf(out, "  rejected %s: %s %s\n", e.ID, e.Code, e.Message)
		}
	}
	if f.services {
		sum.ServiceUsage, err = r.SeedServices(ctx, demo.ServicesConfig{Seed: uint64(f.seed), Partners: f.partners,
			ResellersPerPartner: f.resellersPerPartner, ServicesPerReseller: f.servicesPerReseller, UsersPerService: f.usersPerService})
		if err != nil {
			return err
		}
	}
	if f.format.value == "json" {
		return writeJSON(out, sum)
	}
	if s := sum.ServiceUsage; s != nil {
		fmt.Fprintf(out, "service usage: %s activity events of %s (%d created): %s accepted, %s duplicates, %s rejected\n",
			group(int64(s.Events)), plural(s.Services, "service"), s.Created, group(int64(s.Accepted)), group(int64(s.Duplicates)), group(int64(s.Rejected)))
		for _, e := range s.Errors {
			fmt.Fprintf(out, "  rejected %s: %s %s\n", e.ID, e.Code, e.Message)
		}
		printServiceDemo(out, strings.TrimRight(f.remote.server, "/"), s)
	}
	return nil
}
