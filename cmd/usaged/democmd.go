package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/usaged/usaged/client"
	"github.com/usaged/usaged/demo"
	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/usage"
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

// demoSummary is the result of a demo run, as printed with --format json.
type demoSummary struct {
	Interval        string              `json:"interval"`
	Organizations   []demo.OrgSummary   `json:"organizations"`
	Events          int                 `json:"events"`
	Accepted        int                 `json:"accepted"`
	Duplicates      int                 `json:"duplicates"`
	Rejected        int                 `json:"rejected"`
	Seconds         float64             `json:"seconds"`
	EventsPerSecond float64             `json:"eventsPerSecond"`
	Errors          []ingest.EventError `json:"errors"` // a sample of the rejections
	// ServiceUsage is what seeding the service-usage reports did; absent
	// with --services=false.
	ServiceUsage *demo.ServiceSummary `json:"serviceUsage,omitempty"`
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

	var sum demoSummary
	sum.Organizations, err = demo.Organizations(ctx, api, f.org, f.orgs, f.clients, func(o demo.OrgSummary) {
		fmt.Fprintf(info, "organization %s %s: %d clients (%d created)\n", o.ID, quoteName(o.Name), len(o.Clients), o.Created)
	})
	if err != nil {
		return err
	}
	var orgs []demo.Org
	for _, o := range sum.Organizations {
		orgs = append(orgs, demo.Org{ID: o.ID, Clients: o.Clients})
	}

	end := time.Now().UTC().Truncate(time.Hour)
	start := end.AddDate(0, 0, -f.days)
	g, err := demo.New(demo.Config{
		Seed: f.seed, Organizations: orgs, UsersPerOrg: f.users, Templates: f.templates,
		Start: start, End: end, EventsPerDay: f.eventsPerDay,
	})
	if err != nil {
		return err
	}
	sum.Interval = usage.Interval{Start: start, End: end}.String()
	sum.Events = g.Total()
	fmt.Fprintf(info, "sending %s events over %s in batches of %s, %d at a time\n", group(int64(sum.Events)), sum.Interval, group(int64(f.batch)), f.concurrency)

	began := time.Now()
	prog := startProgress(info, "demo", g.Total())
	sent, err := demo.SendEvents(ctx, api, g, f.batch, f.concurrency, prog)
	prog.Finish()
	if err != nil {
		return err
	}
	sum.Accepted, sum.Duplicates, sum.Rejected, sum.Errors = sent.Accepted, sent.Duplicates, sent.Rejected, sent.Errors
	sum.Seconds = time.Since(began).Seconds()
	sum.EventsPerSecond = float64(sum.Events) / max(sum.Seconds, 1e-3)
	if sum.Errors == nil {
		sum.Errors = []ingest.EventError{}
	}
	if f.format.value != "json" {
		fmt.Fprintf(out, "done: %s events in %.1fs (%s events/s): %s accepted, %s duplicates, %s rejected\n",
			group(int64(sum.Events)), sum.Seconds, group(int64(sum.EventsPerSecond)), group(int64(sum.Accepted)), group(int64(sum.Duplicates)), group(int64(sum.Rejected)))
		for _, e := range sum.Errors {
			fmt.Fprintf(out, "  rejected %s: %s %s\n", e.ID, e.Code, e.Message)
		}
	}
	if f.services {
		if sum.ServiceUsage, err = demoServices(ctx, api, f, start, end, info); err != nil {
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

// demoServices seeds the service-usage reports over HTTP: the hierarchy,
// the activity of [start, end) and a key of the first partner.
func demoServices(ctx context.Context, api *client.Client, f *demoFlags, start, end time.Time, info io.Writer) (*demo.ServiceSummary, error) {
	d, err := demo.NewServiceDemo(demo.ServicesConfig{
		Seed: uint64(f.seed), Partners: f.partners, ResellersPerPartner: f.resellersPerPartner,
		ServicesPerReseller: f.servicesPerReseller, UsersPerService: f.usersPerService, Start: start, End: end,
	})
	if err != nil {
		return nil, err
	}
	var prog *progress
	sum, err := demo.SeedServices(ctx, api, d, f.batch, f.concurrency, func(sum *demo.ServiceSummary) demo.Progress {
		fmt.Fprintf(info, "service usage: %s, %s (%d created); sending %s activity events\n",
			plural(len(sum.Partners), "partner"), plural(sum.Services, "service"), sum.Created, group(int64(sum.Events)))
		prog = startProgress(info, "services", sum.Events)
		return prog
	})
	if prog != nil {
		prog.Finish()
	}
	return sum, err
}

func quoteName(s string) string {
	if s == "" {
		return ""
	}
	return fmt.Sprintf("%q", s)
}
