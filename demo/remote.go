package demo

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/usaged/usaged/ccc/dto"
	"github.com/usaged/usaged/client"
	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/internal/termout"
	"github.com/usaged/usaged/servicestack"
	"github.com/usaged/usaged/usage"
)

// The seeding of a running server over HTTP, as usaged demo does it.

// OrgName names the first demo organization; the next ones are
// "Demo Org 2", "Demo Org 3", ….
const OrgName = "Demo Org"

// Organizations finds or creates the organizations traffic is sent for,
// each with the integration clients of ClientNames(clients): the
// organizations ids when given, else n demo organizations by name. found,
// if set, is told of each in turn.
func Organizations(ctx context.Context, api *client.Client, ids []string, n, clients int, found func(OrgSummary)) ([]OrgSummary, error) {
	var out []OrgSummary
	names := ClientNames(clients)
	if len(ids) > 0 {
		n = len(ids)
	}
	for i := range n {
		var o wire.Organization
		if len(ids) > 0 {
			o.ID = ids[i]
		} else {
			name := OrgName
			if i > 0 {
				name = fmt.Sprintf("%s %d", OrgName, i+1)
			}
			var err error
			if o, _, err = api.OrganizationNamed(ctx, name); err != nil {
				return out, fmt.Errorf("finding or creating organization %q: %w", name, err)
			}
		}
		sum, err := EnsureClients(ctx, api, o, names)
		if err != nil {
			return out, err
		}
		if found != nil {
			found(sum)
		}
		out = append(out, sum)
	}
	return out, nil
}

// OrgSummary is a demo organization as found or made, with its clients.
type OrgSummary struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Clients []Client `json:"clients"`
	Created int      `json:"clientsCreated"`
}

// EnsureClients returns the clients named names in organization o,
// creating those that are missing, with the permission to add events.
func EnsureClients(ctx context.Context, api *client.Client, o wire.Organization, names []string) (OrgSummary, error) {
	orgSum := OrgSummary{ID: o.ID, Name: o.Name}
	have, err := api.Clients(ctx, o.ID)
	if err != nil {
		return orgSum, fmt.Errorf("listing the clients of organization %s: %w", o.ID, err)
	}
	byName := make(map[string]string, len(have))
	for _, cl := range have {
		byName[cl.Name] = cl.ID
	}
	for _, name := range names {
		id, ok := byName[name]
		if !ok {
			cl, err := api.CreateClient(ctx, o.ID, wire.CreateClientRequest{Name: name, Description: "Demo integration.", Permissions: []string{usage.PermEventAdd}})
			if err != nil {
				return orgSum, fmt.Errorf("creating client %q in organization %s: %w", name, o.ID, err)
			}
			id = cl.ID
			orgSum.Created++
		}
		orgSum.Clients = append(orgSum.Clients, Client{ID: id, Name: name})
	}
	return orgSum, nil
}

// Outcome adds up what the server answered to a seeding's batches.
type Outcome struct {
	Accepted   int                 `json:"accepted"`
	Duplicates int                 `json:"duplicates"`
	Rejected   int                 `json:"rejected"`
	Errors     []ingest.EventError `json:"errors"` // a sample of the rejections
}

// add counts res, keeping the first few rejections.
func (o *Outcome) add(res ingest.Result) {
	o.Accepted += res.Accepted
	o.Duplicates += res.Duplicates
	o.Rejected += res.Rejected
	for _, e := range res.Errors {
		if len(o.Errors) < 5 {
			o.Errors = append(o.Errors, e)
		}
	}
}

// SendEvents posts every event of g in gzip NDJSON batches of batch from
// workers concurrent requests, with client.Brief.
func SendEvents(ctx context.Context, api *client.Client, g *Generator, batch, workers int, prog Progress) (Outcome, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan []usage.Event, workers)
	go func() {
		defer close(jobs)
		for {
			buf := make([]usage.Event, batch)
			n := g.Next(buf)
			if n == 0 {
				return
			}
			select {
			case jobs <- buf[:n]:
			case <-ctx.Done():
				return
			}
		}
	}()
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out Outcome
	)
	for range workers {
		wg.Go(func() {
			for evs := range jobs {
				res, err := api.SendEvents(ctx, evs, client.Brief)
				if err != nil {
					cancel(err)
					return
				}
				mu.Lock()
				out.add(res)
				mu.Unlock()
				prog.Add(len(evs))
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return out, fmt.Errorf("sending events: %w", err)
	}
	return out, nil
}

// SendActivityOver returns an ActivitySender that posts gzip NDJSON over
// HTTP with client.Brief.
func SendActivityOver(api *client.Client) ActivitySender {
	return func(ctx context.Context, service usage.GUID, events []usage.Activity) (ingest.Result, error) {
		return api.SendActivity(ctx, service, events, client.Brief)
	}
}

// HTTPHierarchy makes a demo's hierarchy through a server's service-usage
// API.
type HTTPHierarchy struct{ API *client.Client }

var _ Hierarchy = HTTPHierarchy{}

// byName maps the name of each item keep accepts (all when nil) to its
// GUID.
func byName[T any](items []T, name func(*T) string, guid func(*T) servicestack.Guid, keep func(*T) bool) map[string]usage.GUID {
	out := make(map[string]usage.GUID, len(items))
	for i := range items {
		if keep == nil || keep(&items[i]) {
			out[name(&items[i])] = usage.GUID(guid(&items[i]))
		}
	}
	return out
}

// Partners lists every partner by name.
func (h HTTPHierarchy) Partners(ctx context.Context) (map[string]usage.GUID, error) {
	ps, err := h.API.Partners(ctx)
	return byName(ps, func(p *dto.Partner) string { return p.Name }, func(p *dto.Partner) servicestack.Guid { return p.PartnerGuid }, nil), err
}

// CreatePartner creates a partner.
func (h HTTPHierarchy) CreatePartner(ctx context.Context, name string) (usage.GUID, error) {
	p, err := h.API.CreatePartner(ctx, name)
	return usage.GUID(p.PartnerGuid), err
}

// Resellers lists a partner's resellers by name.
func (h HTTPHierarchy) Resellers(ctx context.Context, partner usage.GUID) (map[string]usage.GUID, error) {
	xs, err := h.API.Resellers(ctx, partner)
	return byName(xs, func(x *dto.Reseller) string { return x.Name }, func(x *dto.Reseller) servicestack.Guid { return x.ResellerGuid }, nil), err
}

// CreateReseller creates a reseller of partner.
func (h HTTPHierarchy) CreateReseller(ctx context.Context, partner usage.GUID, name string) (usage.GUID, error) {
	x, err := h.API.CreateReseller(ctx, partner, name)
	return usage.GUID(x.ResellerGuid), err
}

// Collections lists a partner's collections by name.
func (h HTTPHierarchy) Collections(ctx context.Context, partner usage.GUID) (map[string]usage.GUID, error) {
	cs, err := h.API.Collections(ctx)
	return byName(cs, func(c *dto.Collection) string { return c.Name }, func(c *dto.Collection) servicestack.Guid { return c.CollectionGuid },
		func(c *dto.Collection) bool { return usage.GUID(c.PartnerGuid) == partner }), err
}

// CreateCollection creates a collection; the server assigns its GUID.
func (h HTTPHierarchy) CreateCollection(ctx context.Context, c usage.Collection) (usage.GUID, error) {
	out, err := h.API.CreateCollection(ctx, dto.CreateCollectionRequest{Name: c.Name, SiteGuid: c.SiteGUID.String(), SiteName: c.SiteName, PartnerGuid: c.PartnerGUID.String()})
	return usage.GUID(out.CollectionGuid), err
}

// ServiceStatus reads a service's status; a 404 means there is none.
func (h HTTPHierarchy) ServiceStatus(ctx context.Context, guid usage.GUID) (usage.ServiceStatus, bool, error) {
	s, err := h.API.Service(ctx, guid)
	if usage.KindOf(err) == usage.KindNotFound && client.StatusOf(err) != 0 {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	st, err := usage.ParseServiceStatus(s.Status)
	return st, true, err
}

// CreateService creates s with the GUID it has.
func (h HTTPHierarchy) CreateService(ctx context.Context, s usage.Service) error {
	_, err := h.API.CreateService(ctx, ServiceRequest(&s))
	return err
}

// SetServiceStatus changes a service's status.
func (h HTTPHierarchy) SetServiceStatus(ctx context.Context, guid usage.GUID, st usage.ServiceStatus) error {
	_, err := h.API.SetServiceStatus(ctx, guid, st)
	return err
}

// CreateAPIKey creates a key and returns its secret.
func (h HTTPHierarchy) CreateAPIKey(ctx context.Context, name string, scope usage.Scope) (string, error) {
	k, err := h.API.CreateAPIKey(ctx, name, scope)
	return k.Key, err
}

// ServiceRequest is the body that creates s; zero GUIDs and dates are left
// empty.
func ServiceRequest(s *usage.Service) dto.CreateServiceRequest {
	date := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.DateOnly)
	}
	guid := func(g usage.GUID) string {
		if g.IsZero() {
			return ""
		}
		return g.String()
	}
	return dto.CreateServiceRequest{
		ServiceGuid: guid(s.GUID), Name: s.Name, Status: s.Status.String(), ServiceCode: s.ServiceCode,
		ReferenceId: s.ReferenceID, PrimaryDomain: s.PrimaryDomain, TrialEndDate: date(s.TrialEndDate),
		EffectiveDate: date(s.EffectiveDate), InitialTerm: s.InitialTerm, CollectionGuid: guid(s.CollectionGUID),
		ClientGuid: guid(s.ClientGUID), ResellerGuid: guid(s.ResellerGUID),
		Contact: dto.Contact(s.Contact), Company: dto.Company(s.Company),
	}
}

// SeedServices seeds the service-usage reports of a server over HTTP:
// the hierarchy of d, its activity in batches of batch from workers
// concurrent requests, and a new key of the first partner. started is
// called once the hierarchy is placed, before the activity is sent, and
// returns the progress to count it with.
func SeedServices(ctx context.Context, api *client.Client, d *ServiceDemo, batch, workers int, started func(*ServiceSummary) Progress) (*ServiceSummary, error) {
	pd, err := Place(ctx, HTTPHierarchy{api}, d)
	if err != nil {
		return nil, err
	}
	sum := NewServiceSummary(d, pd)
	if err := SendActivity(ctx, d, SendActivityOver(api), batch, workers, started(sum), sum); err != nil {
		return nil, err
	}
	// The secret of an earlier run's key cannot be shown again, so every
	// run makes a key of its own.
	k, err := api.CreateAPIKey(ctx, KeyName, usage.Scope{Kind: usage.ScopePartner, GUID: pd.Partners[0]})
	if err != nil {
		return nil, fmt.Errorf("creating the partner's API key: %w", err)
	}
	sum.APIKey = k.Key
	return sum, nil
}

// Remote is a seeding of a running server over HTTP, as usaged demo does
// it: organizations found or created with their clients, and their traffic
// of the Days whole days before End.
type Remote struct {
	API          *client.Client
	Seed         int64
	OrgIDs       []string // existing organizations to send traffic for, instead of Orgs demo ones
	Orgs         int
	Clients      int // integration clients of each organization
	UsersPerOrg  int
	Templates    int
	Days         int
	End          time.Time // the end of the traffic, a whole hour
	EventsPerDay int
	Batch        int // events per request
	Concurrency  int // requests in flight
	// Info is told of each organization, what is sent and how far it has
	// come.
	Info io.Writer
}

// Summary is what a remote seeding did, as usaged demo --format json
// prints it.
type Summary struct {
	Interval        string              `json:"interval"`
	Organizations   []OrgSummary        `json:"organizations"`
	Events          int                 `json:"events"`
	Accepted        int                 `json:"accepted"`
	Duplicates      int                 `json:"duplicates"`
	Rejected        int                 `json:"rejected"`
	Seconds         float64             `json:"seconds"`
	EventsPerSecond float64             `json:"eventsPerSecond"`
	Errors          []ingest.EventError `json:"errors"` // a sample of the rejections
	// ServiceUsage is what seeding the service-usage reports did; absent
	// without it.
	ServiceUsage *ServiceSummary `json:"serviceUsage,omitempty"`
}

// Start is the start of the traffic.
func (r *Remote) Start() time.Time { return r.End.AddDate(0, 0, -r.Days) }

// SeedEvents finds or creates the organizations and sends their traffic.
func (r *Remote) SeedEvents(ctx context.Context) (*Summary, error) {
	var sum Summary
	var err error
	sum.Organizations, err = Organizations(ctx, r.API, r.OrgIDs, r.Orgs, r.Clients, func(o OrgSummary) {
		fmt.Fprintf(r.Info, "organization %s %s: %d clients (%d created)\n", o.ID, quoteName(o.Name), len(o.Clients), o.Created)
	})
	if err != nil {
		return nil, err
	}
	var orgs []Org
	for _, o := range sum.Organizations {
		orgs = append(orgs, Org{ID: o.ID, Clients: o.Clients})
	}
	g, err := New(Config{
		Seed: r.Seed, Organizations: orgs, UsersPerOrg: r.UsersPerOrg, Templates: r.Templates,
		Start: r.Start(), End: r.End, EventsPerDay: r.EventsPerDay,
	})
	if err != nil {
		return nil, err
	}
	sum.Interval = usage.Interval{Start: r.Start(), End: r.End}.String()
	sum.Events = g.Total()
	fmt.Fprintf(r.Info, "sending %s events over %s in batches of %s, %d at a time\n", termout.Group(int64(sum.Events)), sum.Interval, termout.Group(int64(r.Batch)), r.Concurrency)

	began := time.Now()
	prog := termout.StartProgress(r.Info, "demo", g.Total())
	sent, err := SendEvents(ctx, r.API, g, r.Batch, r.Concurrency, prog)
	prog.Finish()
	if err != nil {
		return nil, err
	}
	sum.Accepted, sum.Duplicates, sum.Rejected, sum.Errors = sent.Accepted, sent.Duplicates, sent.Rejected, sent.Errors
	sum.Seconds = time.Since(began).Seconds()
	sum.EventsPerSecond = float64(sum.Events) / max(sum.Seconds, 1e-3)
	if sum.Errors == nil {
		sum.Errors = []ingest.EventError{}
	}
	return &sum, nil
}

// SeedServices seeds the service-usage reports over HTTP with cfg, over
// the seeding's days: the hierarchy, its activity and a key of the first
// partner.
func (r *Remote) SeedServices(ctx context.Context, cfg ServicesConfig) (*ServiceSummary, error) {
	cfg.Start, cfg.End = r.Start(), r.End
	d, err := NewServiceDemo(cfg)
	if err != nil {
		return nil, err
	}
	var prog *termout.Progress
	sum, err := SeedServices(ctx, r.API, d, r.Batch, r.Concurrency, func(sum *ServiceSummary) Progress {
		fmt.Fprintf(r.Info, "service usage: %s, %s (%d created); sending %s activity events\n",
			termout.Plural(len(sum.Partners), "partner"), termout.Plural(sum.Services, "service"), sum.Created, termout.Group(int64(sum.Events)))
		prog = termout.StartProgress(r.Info, "services", sum.Events)
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

// PrintServices shows how to read the service-usage demo s of the server
// at base with its key.
func PrintServices(w io.Writer, base string, s *ServiceSummary) {
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
`, termout.Plural(s.Services, "service"), termout.Plural(len(s.Partners), "partner"), termout.Group(int64(s.Events)), s.Interval,
		p.Name, p.GUID, termout.Plural(s.KeyServices, "service"), s.APIKey,
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
