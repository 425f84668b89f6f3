package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/dashboard"
	"github.com/usaged/usaged/demo"
	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/internal/secretfile"
	"github.com/usaged/usaged/server"
	"github.com/usaged/usaged/tenancy"
	"github.com/usaged/usaged/usage"
)

const (
	demoMarkerFile = "demo.json"
	demoOrgName    = demo.OrgName
	demoViewerName = "Demo viewer"
	demoDays       = 30
	demoClients    = 8
	demoSeed       = 1

	// The service-usage demo: twelve services, enough for every status the
	// reports treat differently, each with a team of twenty.
	demoPartners            = 2
	demoResellersPerPartner = 2
	demoServicesPerReseller = 3
	demoUsersPerService     = 20
)

// demoCredentials is what serve --demo created, kept in the data directory
// (mode 0600, next to the admin token) so that a restart reuses the
// organization and can show the viewer's credentials again.
type demoCredentials struct {
	OrganizationID   string        `json:"organizationId"`
	OrganizationName string        `json:"organizationName"`
	ClientID         string        `json:"clientId"`
	ClientSecret     string        `json:"clientSecret"`
	TrafficClients   []demo.Client `json:"trafficClients"`
	Seeded           bool          `json:"seeded"` // false while seeding, so an interrupted seed resumes
	Events           int           `json:"events"`
	Start            time.Time     `json:"start"`
	End              time.Time     `json:"end"`

	// The service-usage demo. Its window is chosen once and kept, so that
	// a resumed seed sends the same events again; ServiceUsage keeps the
	// partner's API key, to show it again on every start.
	ServicesStart  time.Time            `json:"servicesStart"`
	ServicesEnd    time.Time            `json:"servicesEnd"`
	ServicesSeeded bool                 `json:"servicesSeeded"` // false while seeding, so an interrupted seed resumes
	ServiceUsage   *demo.ServiceSummary `json:"serviceUsage,omitempty"`
}

// seedDemo seeds the demo through s's components, or reuses what an earlier
// start made, and returns what serve shows of it: the dashboard's session
// and the banner, with the counts the store holds now.
func (c *cli) seedDemo(ctx context.Context, s *server.Server, cfg *serveConfig) (server.Demo, error) {
	d, err := c.seedDemoData(ctx, s.Logger(), cfg, s.Auth(), s.Ingest(), s.Registry())
	if err != nil {
		return server.Demo{}, err
	}
	if err := d.refreshCounts(ctx, s.Queries(), s.Registry()); err != nil {
		s.Logger().Warn("the demo's banner shows the counts of its seed", "err", err)
	}
	return server.Demo{Session: d.dashboardSession(), Banner: d.print}, nil
}

// seedDemoData creates the demo organization and its clients and seeds
// their traffic through the ingest pipeline, then the service-usage demo
// through the registry and the pipeline, or reuses what an earlier start
// made.
func (c *cli) seedDemoData(ctx context.Context, log *slog.Logger, cfg *serveConfig, authSvc *auth.Service, p *ingest.Pipeline, reg *tenancy.Registry) (*demoCredentials, error) {
	path := filepath.Join(cfg.data, demoMarkerFile)
	var d demoCredentials
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, fmt.Errorf("%s is damaged (%v): delete the data directory to seed afresh", path, err)
		}
		if !authSvc.KnownOrganization(d.OrganizationID) {
			return nil, fmt.Errorf("%s names organization %s, which the store does not hold: delete the data directory to seed afresh", path, d.OrganizationID)
		}
		if d.Seeded && d.ServicesSeeded {
			log.Info("reusing the demo organization and services", "organization", d.OrganizationID)
			return &d, nil
		}
		log.Info("resuming the demo seed", "organization", d.OrganizationID)
	case errors.Is(err, fs.ErrNotExist):
		orgs, err := authSvc.Organizations(ctx)
		if err != nil {
			return nil, err
		}
		if n := len(reg.Partners()); len(orgs) > 0 || n > 0 {
			return nil, fmt.Errorf("--demo needs a fresh data directory, but %s already holds %d organizations and %d partners: start without --demo, or use another --data", cfg.data, len(orgs), n)
		}
		if d, err = createDemoOrg(ctx, authSvc); err != nil {
			return nil, err
		}
		if err := writeDemoMarker(path, &d); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	if !d.Seeded {
		if err := c.seedTraffic(ctx, log, cfg, p, &d, path); err != nil {
			return nil, err
		}
	}
	if !d.ServicesSeeded {
		if err := c.seedServices(ctx, log, p, reg, &d, path); err != nil {
			return nil, err
		}
	}
	return &d, nil
}

// seedTraffic seeds the demo organization's API traffic.
func (c *cli) seedTraffic(ctx context.Context, log *slog.Logger, cfg *serveConfig, p *ingest.Pipeline, d *demoCredentials, path string) error {
	end := time.Now().UTC()
	// Stay inside the dedupe window, or the oldest events would be refused.
	start := end.Add(-min(demoDays*24*time.Hour, p.DedupeWindow()-time.Hour))
	g, err := demo.New(demo.Config{
		Seed:          demoSeed,
		Organizations: []demo.Org{{ID: d.OrganizationID, Clients: d.TrafficClients}},
		UsersPerOrg:   60,
		Templates:     min(180, demo.TemplateCount),
		Start:         start,
		End:           end,
		EventsPerDay:  cfg.demoEventsPerDay,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "seeding %s events of demo traffic (%s to %s)\n", group(int64(g.Total())), start.Format(time.DateOnly), end.Format(time.DateOnly))
	prog := startProgress(c.stdout, "seeding", g.Total())
	const batch = 10_000
	buf := make([]usage.Event, batch)
	var sum ingest.Result
	for n := g.Next(buf); n > 0; n = g.Next(buf) {
		if err := ctx.Err(); err != nil {
			prog.Finish()
			return fmt.Errorf("seeding interrupted; the next start with --demo resumes it: %w", err)
		}
		res, err := p.Ingest(ctx, buf[:n], ingest.Scope{})
		if err != nil {
			prog.Finish()
			return fmt.Errorf("seeding demo traffic: %w", err)
		}
		sum.Accepted += res.Accepted
		sum.Duplicates += res.Duplicates
		sum.Rejected += res.Rejected
		if res.Rejected > 0 && sum.Rejected == res.Rejected {
			log.Warn("demo events rejected", "count", res.Rejected, "first", res.Errors[0].Message)
		}
		prog.Add(n)
	}
	prog.Finish()
	log.Info("demo traffic seeded", "accepted", sum.Accepted, "duplicates", sum.Duplicates, "rejected", sum.Rejected)
	d.Seeded, d.Events, d.Start, d.End = true, sum.Accepted+sum.Duplicates, start, end
	return writeDemoMarker(path, d)
}

// seedServices creates the service-usage demo's partners, resellers,
// Collections and services in the registry, a key of the first partner,
// and ingests each service's activity.
func (c *cli) seedServices(ctx context.Context, log *slog.Logger, p *ingest.Pipeline, reg *tenancy.Registry, d *demoCredentials, path string) error {
	if d.ServicesStart.IsZero() {
		d.ServicesEnd = time.Now().UTC().Truncate(time.Millisecond)
		// Stay inside the dedupe window, or the oldest events would be refused.
		d.ServicesStart = d.ServicesEnd.Add(-min(demoDays*24*time.Hour, p.DedupeWindow()-time.Hour))
		if err := writeDemoMarker(path, d); err != nil {
			return err
		}
	}
	sd, err := demo.NewServiceDemo(demo.ServicesConfig{
		Seed: demoSeed, Partners: demoPartners, ResellersPerPartner: demoResellersPerPartner,
		ServicesPerReseller: demoServicesPerReseller, UsersPerService: demoUsersPerService,
		Start: d.ServicesStart, End: d.ServicesEnd,
	})
	if err != nil {
		return err
	}
	pd, err := demo.Place(ctx, registryHierarchy{reg}, sd)
	if err != nil {
		return fmt.Errorf("creating the demo services: %w", err)
	}
	sum := demo.NewServiceSummary(sd, pd)
	if prev := d.ServiceUsage; prev != nil {
		if _, ok := reg.Authenticate(prev.APIKey); ok {
			sum.APIKey = prev.APIKey
		}
	}
	if sum.APIKey == "" {
		if _, sum.APIKey, err = reg.CreateAPIKey(ctx, demo.KeyName, usage.Scope{Kind: usage.ScopePartner, GUID: pd.Partners[0]}); err != nil {
			return fmt.Errorf("creating the demo partner's API key: %w", err)
		}
	}
	// Kept before the long part, so that a resumed seed shows the same key.
	d.ServiceUsage = sum
	if err := writeDemoMarker(path, d); err != nil {
		return err
	}

	fmt.Fprintf(c.stdout, "seeding %s activity events of %d demo services (%s to %s)\n", group(int64(sum.Events)), sum.Services,
		d.ServicesStart.Format(time.DateOnly), d.ServicesEnd.Format(time.DateOnly))
	const batch = 5000
	send := p.IngestActivity
	prog := startProgress(c.stdout, "seeding", sum.Events)
	err = demo.SendActivity(ctx, sd, send, batch, 2, prog, sum)
	prog.Finish()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("seeding interrupted; the next start with --demo resumes it: %w", err)
		}
		return fmt.Errorf("seeding demo service activity: %w", err)
	}
	if sum.Rejected > 0 {
		log.Warn("demo service activity rejected", "count", sum.Rejected, "first", sum.Errors[0].Message)
	}
	log.Info("demo service activity seeded", "accepted", sum.Accepted, "duplicates", sum.Duplicates, "rejected", sum.Rejected)
	d.ServicesSeeded = true
	return writeDemoMarker(path, d)
}

// registryHierarchy makes a demo's hierarchy in the serving process's
// registry.
type registryHierarchy struct{ reg *tenancy.Registry }

var _ demo.Hierarchy = registryHierarchy{}

// Partners lists every partner by name.
func (h registryHierarchy) Partners(context.Context) (map[string]usage.GUID, error) {
	m := map[string]usage.GUID{}
	for _, p := range h.reg.Partners() {
		m[p.Name] = p.GUID
	}
	return m, nil
}

// CreatePartner creates a partner.
func (h registryHierarchy) CreatePartner(ctx context.Context, name string) (usage.GUID, error) {
	p, err := h.reg.CreatePartner(ctx, name)
	return p.GUID, err
}

// Resellers lists a partner's resellers by name.
func (h registryHierarchy) Resellers(_ context.Context, partner usage.GUID) (map[string]usage.GUID, error) {
	m := map[string]usage.GUID{}
	for _, x := range h.reg.Resellers(partner) {
		m[x.Name] = x.GUID
	}
	return m, nil
}

// CreateReseller creates a reseller of partner.
func (h registryHierarchy) CreateReseller(ctx context.Context, partner usage.GUID, name string) (usage.GUID, error) {
	x, err := h.reg.CreateReseller(ctx, partner, name)
	return x.GUID, err
}

// Collections lists a partner's collections by name.
func (h registryHierarchy) Collections(_ context.Context, partner usage.GUID) (map[string]usage.GUID, error) {
	m := map[string]usage.GUID{}
	for _, c := range h.reg.Collections(func(c *usage.Collection) bool { return c.PartnerGUID == partner }) {
		m[c.Name] = c.GUID
	}
	return m, nil
}

// CreateCollection creates c, keeping its site GUID.
func (h registryHierarchy) CreateCollection(ctx context.Context, c usage.Collection) (usage.GUID, error) {
	c, err := h.reg.CreateCollection(ctx, c)
	return c.GUID, err
}

// ServiceStatus reads a service's status from the registry.
func (h registryHierarchy) ServiceStatus(_ context.Context, guid usage.GUID) (usage.ServiceStatus, bool, error) {
	s, ok := h.reg.Service(guid)
	return s.Status, ok, nil
}

// CreateService creates s with its GUID and creation time.
func (h registryHierarchy) CreateService(ctx context.Context, s usage.Service) error {
	_, err := h.reg.CreateService(ctx, s)
	return err
}

// SetServiceStatus changes a service's status.
func (h registryHierarchy) SetServiceStatus(ctx context.Context, guid usage.GUID, st usage.ServiceStatus) error {
	_, err := h.reg.SetServiceStatus(ctx, guid, st)
	return err
}

// CreateAPIKey creates a key and returns its secret.
func (h registryHierarchy) CreateAPIKey(ctx context.Context, name string, scope usage.Scope) (string, error) {
	_, secret, err := h.reg.CreateAPIKey(ctx, name, scope)
	return secret, err
}

func createDemoOrg(ctx context.Context, authSvc *auth.Service) (demoCredentials, error) {
	org, err := authSvc.CreateOrganization(ctx, demoOrgName)
	if err != nil {
		return demoCredentials{}, err
	}
	perms := []string{usage.PermOAuthClientView}
	for _, p := range usage.Permissions {
		if strings.HasPrefix(p, "usage:") {
			perms = append(perms, p)
		}
	}
	viewer, secret, err := authSvc.CreateClient(ctx, org.ID, auth.ClientSpec{
		Name:        demoViewerName,
		Description: "Reads the demo organization's usage.",
		Permissions: perms,
	})
	if err != nil {
		return demoCredentials{}, err
	}
	d := demoCredentials{OrganizationID: org.ID, OrganizationName: org.Name, ClientID: viewer.ID, ClientSecret: secret}
	// The integrations whose traffic is seeded are real clients, so that
	// their names and ids line up with the registry.
	for _, name := range demo.ClientNames(demoClients) {
		cl, _, err := authSvc.CreateClient(ctx, org.ID, auth.ClientSpec{
			Name:        name,
			Description: "Demo integration.",
			Permissions: []string{usage.PermEventAdd},
		})
		if err != nil {
			return demoCredentials{}, err
		}
		d.TrafficClients = append(d.TrafficClients, demo.Client{ID: cl.ID, Name: cl.Name})
	}
	return d, nil
}

func writeDemoMarker(path string, d *demoCredentials) error {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	return secretfile.WriteAtomic(path, append(b, '\n'))
}

// dashboardSession is what the dashboard signs in with in a demo: the
// viewer's credentials and the partner's key that the demo prints anyway.
func (d *demoCredentials) dashboardSession() *dashboard.Session {
	s := &dashboard.Session{OrganizationName: d.OrganizationName, ClientID: d.ClientID, ClientSecret: d.ClientSecret}
	if d.ServiceUsage != nil {
		s.APIKey = d.ServiceUsage.APIKey
	}
	return s
}

// print shows how to query the demo organization and, once seeded, the
// demo services.
func (d *demoCredentials) print(w io.Writer, base string) {
	iv := d.Start.Format(time.DateOnly) + "/" + d.End.Format(time.DateOnly)
	fmt.Fprintf(w, `
Demo organization %q (%s) holds %s events from %s.
  Dashboard      %s/ (signed in as the demo viewer)
  URL            %s
  client id      %s
  client secret  %s

Try it:
  TOKEN=$(curl -s -u '%s:%s' -d grant_type=client_credentials %s/oauth/token | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
  RESULTS=$(curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"interval":"%s","granularity":"Day","groupBy":["OAuthClientId"]}' %s/api/v2/usage/query \
    | sed -E 's/.*"resultsUri":"([^"]+)".*/\1/')
  curl -s -H "Authorization: Bearer $TOKEN" %s$RESULTS

or:
  usaged query --server %s --client-id %s --client-secret '%s' --interval %s --group-by OAuthClientId
`, d.OrganizationName, d.OrganizationID, group(int64(d.Events)), iv,
		base, base, d.ClientID, d.ClientSecret,
		d.ClientID, d.ClientSecret, base,
		iv, base, base,
		base, d.ClientID, d.ClientSecret, iv)
	if d.ServiceUsage != nil && d.ServicesSeeded {
		printServiceDemo(w, base, d.ServiceUsage)
	}
}

// eventCounter is the part of the store that counts an organization's
// events.
type eventCounter interface {
	Query(ctx context.Context, q usage.Query) ([]usage.Row, error)
}

// refreshCounts sets the counts the banner shows to what the store and the
// registry hold now: on a restart, events and services added since the seed
// count too, and the numbers match what the printed requests answer.
func (d *demoCredentials) refreshCounts(ctx context.Context, events eventCounter, reg *tenancy.Registry) error {
	// The banner's interval is whole days, its end day included.
	iv := usage.Interval{Start: d.Start.UTC().Truncate(24 * time.Hour), End: d.End.UTC().Truncate(24*time.Hour).AddDate(0, 0, 1)}
	q, err := usage.Query{OrganizationID: d.OrganizationID, Interval: iv}.Normalize()
	if err != nil {
		return err
	}
	rows, err := events.Query(ctx, q)
	if err != nil {
		return fmt.Errorf("counting the demo organization's events: %w", err)
	}
	var n int64
	for _, r := range rows {
		n += r.Requests
	}
	d.Events = int(n)
	if s := d.ServiceUsage; s != nil && len(s.Partners) > 0 {
		partners := make(map[string]bool, len(s.Partners))
		for _, p := range s.Partners {
			partners[p.GUID] = true
		}
		s.Services, s.KeyServices = 0, 0
		reg.Services(func(svc *usage.Service) bool {
			if g := svc.PartnerGUID.String(); partners[g] {
				s.Services++
				if g == s.Partners[0].GUID {
					s.KeyServices++
				}
			}
			return true
		})
	}
	return nil
}
