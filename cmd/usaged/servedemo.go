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
	"github.com/usaged/usaged/demo"
	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/usage"
)

const (
	demoMarkerFile = "demo.json"
	demoOrgName    = "Demo Org"
	demoViewerName = "Demo viewer"
	demoDays       = 30
	demoClients    = 8
	demoSeed       = 1
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
}

// seedDemo creates the demo organization and its clients and seeds their
// traffic through the ingest pipeline, or reuses what an earlier start made.
func (c *cli) seedDemo(ctx context.Context, log *slog.Logger, cfg *serveConfig, authSvc *auth.Service, p *ingest.Pipeline) (*demoCredentials, error) {
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
		if d.Seeded {
			log.Info("reusing the demo organization", "organization", d.OrganizationID)
			return &d, nil
		}
		log.Info("resuming the demo seed", "organization", d.OrganizationID)
	case errors.Is(err, fs.ErrNotExist):
		orgs, err := authSvc.Organizations(ctx)
		if err != nil {
			return nil, err
		}
		if len(orgs) > 0 {
			return nil, fmt.Errorf("--demo needs a fresh data directory, but %s already holds %d organizations: start without --demo, or use another --data", cfg.data, len(orgs))
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
		return nil, err
	}
	fmt.Fprintf(c.stdout, "seeding %s events of demo traffic (%s to %s)\n", group(int64(g.Total())), start.Format(time.DateOnly), end.Format(time.DateOnly))
	prog := startProgress(c.stdout, "seeding", g.Total())
	const batch = 10_000
	buf := make([]usage.Event, batch)
	index := make([]int, batch)
	for i := range index {
		index[i] = i
	}
	var sum ingest.Result
	for n := g.Next(buf); n > 0; n = g.Next(buf) {
		if err := ctx.Err(); err != nil {
			prog.finish()
			return nil, fmt.Errorf("seeding interrupted; the next start with --demo resumes it: %w", err)
		}
		res, err := p.Ingest(ctx, &ingest.Batch{Events: buf[:n], Index: index[:n]}, ingest.Scope{})
		if err != nil {
			prog.finish()
			return nil, fmt.Errorf("seeding demo traffic: %w", err)
		}
		sum.Accepted += res.Accepted
		sum.Duplicates += res.Duplicates
		sum.Rejected += res.Rejected
		if res.Rejected > 0 && sum.Rejected == res.Rejected {
			log.Warn("demo events rejected", "count", res.Rejected, "first", res.Errors[0].Message)
		}
		prog.add(n)
	}
	prog.finish()
	log.Info("demo traffic seeded", "accepted", sum.Accepted, "duplicates", sum.Duplicates, "rejected", sum.Rejected)
	d.Seeded, d.Events, d.Start, d.End = true, sum.Accepted+sum.Duplicates, start, end
	if err := writeDemoMarker(path, &d); err != nil {
		return nil, err
	}
	return &d, nil
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
	return writeFileAtomic(path, append(b, '\n'))
}

// print shows how to query the demo organization.
func (d *demoCredentials) print(w io.Writer, base string) {
	iv := d.Start.Format(time.DateOnly) + "/" + d.End.Format(time.DateOnly)
	fmt.Fprintf(w, `
Demo organization %q (%s) holds %s events from %s.
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
		base, d.ClientID, d.ClientSecret,
		d.ClientID, d.ClientSecret, base,
		iv, base, base,
		base, d.ClientID, d.ClientSecret, iv)
}
