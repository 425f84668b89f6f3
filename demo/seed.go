package demo

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
	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/internal/secretfile"
	"github.com/usaged/usaged/internal/termout"
	"github.com/usaged/usaged/tenancy"
	"github.com/usaged/usaged/usage"
)

// The demo a server seeds into its own components at start.
const (
	// MarkerFile, in the data directory, keeps what was seeded.
	MarkerFile = "demo.json"
	viewerName = "Demo viewer"
	localDays  = 30
	// LocalClients is the number of integrations whose traffic is seeded.
	LocalClients = 8
	localSeed    = 1

	// The service-usage demo: twelve services, enough for every status the
	// reports treat differently, each with a team of twenty.
	localPartners            = 2
	localResellersPerPartner = 2
	localServicesPerReseller = 3
	localUsersPerService     = 20
)

// Credentials is what a Local seeding created, kept in the data directory
// (mode 0600, next to the admin token) so that a restart reuses the
// organization and can show the viewer's credentials again.
type Credentials struct {
	OrganizationID   string    `json:"organizationId"`
	OrganizationName string    `json:"organizationName"`
	ClientID         string    `json:"clientId"`
	ClientSecret     string    `json:"clientSecret"`
	TrafficClients   []Client  `json:"trafficClients"`
	Seeded           bool      `json:"seeded"` // false while seeding, so an interrupted seed resumes
	Events           int       `json:"events"`
	Start            time.Time `json:"start"`
	End              time.Time `json:"end"`

	// The service-usage demo. Its window is chosen once and kept, so that
	// a resumed seed sends the same events again; ServiceUsage keeps the
	// partner's API key, to show it again on every start.
	ServicesStart  time.Time       `json:"servicesStart"`
	ServicesEnd    time.Time       `json:"servicesEnd"`
	ServicesSeeded bool            `json:"servicesSeeded"` // false while seeding, so an interrupted seed resumes
	ServiceUsage   *ServiceSummary `json:"serviceUsage,omitempty"`
}

// Local seeds the demo into a server's own components as it starts (usaged
// serve --demo): an organization with its clients and their API traffic,
// then partners, resellers and services with their activity, all through
// the ingest pipeline and the registries. What it created is kept in the
// data directory, so that a later start reuses it and an interrupted one
// resumes.
type Local struct {
	Dir          string // the data directory, which holds MarkerFile
	EventsPerDay int    // the average events per day of traffic to seed
	Stdout       io.Writer
	Logger       *slog.Logger
	Auth         *auth.Service
	Ingest       *ingest.Pipeline
	Registry     *tenancy.Registry
	// Events counts the organization's events for the banner.
	Events EventCounter
}

// EventCounter answers a query at once, as the query service's Query does.
type EventCounter interface {
	Query(ctx context.Context, q usage.Query) ([]usage.Row, error)
}

// Seed seeds the demo, or reuses what an earlier start made, and returns
// its credentials with the counts the store holds now.
func (l *Local) Seed(ctx context.Context) (*Credentials, error) {
	d, err := l.seed(ctx)
	if err != nil {
		return nil, err
	}
	if err := d.refreshCounts(ctx, l.Events, l.Registry); err != nil {
		l.Logger.Warn("the demo's banner shows the counts of its seed", "err", err)
	}
	return d, nil
}

// seed creates the demo organization and its clients and seeds their
// traffic through the ingest pipeline, then the service-usage demo through
// the registry and the pipeline, or reuses what an earlier start made.
func (l *Local) seed(ctx context.Context) (*Credentials, error) {
	log, authSvc, reg := l.Logger, l.Auth, l.Registry
	path := filepath.Join(l.Dir, MarkerFile)
	var d Credentials
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
			return nil, fmt.Errorf("--demo needs a fresh data directory, but %s already holds %d organizations and %d partners: start without --demo, or use another --data", l.Dir, len(orgs), n)
		}
		if d, err = createDemoOrg(ctx, authSvc); err != nil {
			return nil, err
		}
		if err := writeMarker(path, &d); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	if !d.Seeded {
		if err := l.seedTraffic(ctx, &d, path); err != nil {
			return nil, err
		}
	}
	if !d.ServicesSeeded {
		if err := l.seedServices(ctx, &d, path); err != nil {
			return nil, err
		}
	}
	return &d, nil
}

// seedTraffic seeds the demo organization's API traffic.
func (l *Local) seedTraffic(ctx context.Context, d *Credentials, path string) error {
	log, p := l.Logger, l.Ingest
	end := time.Now().UTC()
	// Stay inside the dedupe window, or the oldest events would be refused.
	start := end.Add(-min(localDays*24*time.Hour, p.DedupeWindow()-time.Hour))
	g, err := New(Config{
		Seed:          localSeed,
		Organizations: []Org{{ID: d.OrganizationID, Clients: d.TrafficClients}},
		UsersPerOrg:   60,
		Templates:     min(180, TemplateCount),
		Start:         start,
		End:           end,
		EventsPerDay:  l.EventsPerDay,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(l.Stdout, "seeding %s events of demo traffic (%s to %s)\n", termout.Group(int64(g.Total())), start.Format(time.DateOnly), end.Format(time.DateOnly))
	prog := termout.StartProgress(l.Stdout, "seeding", g.Total())
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
	return writeMarker(path, d)
}

// seedServices creates the service-usage demo's partners, resellers,
// Collections and services in the registry, a key of the first partner,
// and ingests each service's activity.
func (l *Local) seedServices(ctx context.Context, d *Credentials, path string) error {
	log, p, reg := l.Logger, l.Ingest, l.Registry
	if d.ServicesStart.IsZero() {
		d.ServicesEnd = time.Now().UTC().Truncate(time.Millisecond)
		// Stay inside the dedupe window, or the oldest events would be refused.
		d.ServicesStart = d.ServicesEnd.Add(-min(localDays*24*time.Hour, p.DedupeWindow()-time.Hour))
		if err := writeMarker(path, d); err != nil {
			return err
		}
	}
	sd, err := NewServiceDemo(ServicesConfig{
		Seed: localSeed, Partners: localPartners, ResellersPerPartner: localResellersPerPartner,
		ServicesPerReseller: localServicesPerReseller, UsersPerService: localUsersPerService,
		Start: d.ServicesStart, End: d.ServicesEnd,
	})
	if err != nil {
		return err
	}
	pd, err := Place(ctx, registryHierarchy{reg}, sd)
	if err != nil {
		return fmt.Errorf("creating the demo services: %w", err)
	}
	sum := NewServiceSummary(sd, pd)
	if prev := d.ServiceUsage; prev != nil {
		if _, ok := reg.Authenticate(prev.APIKey); ok {
			sum.APIKey = prev.APIKey
		}
	}
	if sum.APIKey == "" {
		if _, sum.APIKey, err = reg.CreateAPIKey(ctx, KeyName, usage.Scope{Kind: usage.ScopePartner, GUID: pd.Partners[0]}); err != nil {
			return fmt.Errorf("creating the demo partner's API key: %w", err)
		}
	}
	// Kept before the long part, so that a resumed seed shows the same key.
	d.ServiceUsage = sum
	if err := writeMarker(path, d); err != nil {
		return err
	}

	fmt.Fprintf(l.Stdout, "seeding %s activity events of %d demo services (%s to %s)\n", termout.Group(int64(sum.Events)), sum.Services,
		d.ServicesStart.Format(time.DateOnly), d.ServicesEnd.Format(time.DateOnly))
	const batch = 5000
	send := p.IngestActivity
	prog := termout.StartProgress(l.Stdout, "seeding", sum.Events)
	err = SendActivity(ctx, sd, send, batch, 2, prog, sum)
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
	return writeMarker(path, d)
}

// registryHierarchy makes a demo's hierarchy in the serving process's
// registry.
type registryHierarchy struct{ reg *tenancy.Registry }

var _ Hierarchy = registryHierarchy{}

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

func createDemoOrg(ctx context.Context, authSvc *auth.Service) (Credentials, error) {
	org, err := authSvc.CreateOrganization(ctx, OrgName)
	if err != nil {
		return Credentials{}, err
	}
	// The viewer's credentials are handed to any browser (GET /ui/session),
	// so it may read and add events but change nothing: not the limits.
	perms := []string{usage.PermOAuthClientView}
	for _, p := range usage.Permissions {
		if strings.HasPrefix(p, "usage:") && p != usage.PermLimitEdit {
			perms = append(perms, p)
		}
	}
	viewer, secret, err := authSvc.CreateClient(ctx, org.ID, auth.ClientSpec{
		Name:        viewerName,
		Description: "Reads the demo organization's usage.",
		Permissions: perms,
	})
	if err != nil {
		return Credentials{}, err
	}
	d := Credentials{OrganizationID: org.ID, OrganizationName: org.Name, ClientID: viewer.ID, ClientSecret: secret}
	// The integrations whose traffic is seeded are real clients, so that
	// their names and ids line up with the registry.
	for _, name := range ClientNames(LocalClients) {
		cl, _, err := authSvc.CreateClient(ctx, org.ID, auth.ClientSpec{
			Name:        name,
			Description: "Demo integration.",
			Permissions: []string{usage.PermEventAdd},
		})
		if err != nil {
			return Credentials{}, err
		}
		d.TrafficClients = append(d.TrafficClients, Client{ID: cl.ID, Name: cl.Name})
	}
	return d, nil
}

func writeMarker(path string, d *Credentials) error {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	return secretfile.WriteAtomic(path, append(b, '\n'))
}

// DashboardSession is what the dashboard signs in with in a demo: the
// viewer's credentials and the partner's key that the demo prints anyway.
func (d *Credentials) DashboardSession() *dashboard.Session {
	s := &dashboard.Session{OrganizationName: d.OrganizationName, ClientID: d.ClientID, ClientSecret: d.ClientSecret}
	if d.ServiceUsage != nil {
		s.APIKey = d.ServiceUsage.APIKey
	}
	return s
}

// Print shows how to query the demo organization at base; the service-usage
// demo, once seeded (ServicesSeeded), is for the caller to show.
func (d *Credentials) Print(w io.Writer, base string) {
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
`, d.OrganizationName, d.OrganizationID, termout.Group(int64(d.Events)), iv,
		base, base, d.ClientID, d.ClientSecret,
		d.ClientID, d.ClientSecret, base,
		iv, base, base,
		base, d.ClientID, d.ClientSecret, iv)
}

// refreshCounts sets the counts the banner shows to what the store and the
// registry hold now: on a restart, events and services added since the seed
// count too, and the numbers match what the printed requests answer.
func (d *Credentials) refreshCounts(ctx context.Context, events EventCounter, reg *tenancy.Registry) error {
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
