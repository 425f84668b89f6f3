package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/usaged/usaged/demo"
	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/usage"
)

// Wire shapes of the service-usage (CCC) API, as this client reads and
// writes them: GUIDs as strings, so that the server's spelling is kept.
type (
	partnerBody struct {
		PartnerGuid string `json:"partnerGuid"`
		Name        string `json:"name"`
		CreatedOn   string `json:"createdOn,omitempty"`
	}
	resellerBody struct {
		ResellerGuid string `json:"resellerGuid"`
		PartnerGuid  string `json:"partnerGuid"`
		Name         string `json:"name"`
		CreatedOn    string `json:"createdOn,omitempty"`
	}
	collectionBody struct {
		CollectionGuid string `json:"collectionGuid,omitempty"`
		Name           string `json:"name"`
		SiteGuid       string `json:"siteGuid,omitempty"`
		SiteName       string `json:"siteName,omitempty"`
		PartnerGuid    string `json:"partnerGuid"`
		CreatedOn      string `json:"createdOn,omitempty"`
	}
	contactBody struct {
		Name        string `json:"name,omitempty"`
		Email       string `json:"email,omitempty"`
		PhoneNumber string `json:"phoneNumber,omitempty"`
	}
	companyBody struct {
		Name          string `json:"name,omitempty"`
		Address       string `json:"address,omitempty"`
		City          string `json:"city,omitempty"`
		StateProvince string `json:"stateProvince,omitempty"`
		PostalCode    string `json:"postalCode,omitempty"`
		Country       string `json:"country,omitempty"`
		Website       string `json:"website,omitempty"`
	}
	// serviceBody is both the body of POST /api/services and the service
	// the server answers with.
	serviceBody struct {
		ServiceGuid    string      `json:"serviceGuid,omitempty"`
		Name           string      `json:"name"`
		Status         string      `json:"status,omitempty"`
		ServiceCode    string      `json:"serviceCode,omitempty"`
		ReferenceId    string      `json:"referenceId,omitempty"`
		PrimaryDomain  string      `json:"primaryDomain,omitempty"`
		TrialEndDate   string      `json:"trialEndDate,omitempty"`
		EffectiveDate  string      `json:"effectiveDate,omitempty"`
		InitialTerm    int         `json:"initialTerm,omitempty"`
		CollectionGuid string      `json:"collectionGuid,omitempty"`
		ClientGuid     string      `json:"clientGuid,omitempty"`
		PartnerGuid    string      `json:"partnerGuid,omitempty"`
		ResellerGuid   string      `json:"resellerGuid,omitempty"`
		Contact        contactBody `json:"contact"`
		Company        companyBody `json:"company"`
	}
	apiKeyBody struct {
		ID        string `json:"id"`
		Key       string `json:"key,omitempty"`
		Name      string `json:"name"`
		Scope     string `json:"scope"`
		ScopeGuid string `json:"scopeGuid"`
		CreatedOn string `json:"createdOn,omitempty"`
	}
)

// createPartner creates a partner (admin).
func (c *apiClient) createPartner(ctx context.Context, name string) (partnerBody, error) {
	var p partnerBody
	err := c.do(ctx, "POST", "/api/partners", map[string]string{"name": name}, &p)
	return p, err
}

// listPartners lists every partner (admin).
func (c *apiClient) listPartners(ctx context.Context) ([]partnerBody, error) {
	var ps []partnerBody
	err := c.do(ctx, "GET", "/api/partners", nil, &ps)
	return ps, err
}

// createReseller creates a reseller of a partner.
func (c *apiClient) createReseller(ctx context.Context, partner, name string) (resellerBody, error) {
	var x resellerBody
	err := c.do(ctx, "POST", "/api/partners/"+url.PathEscape(partner)+"/resellers", map[string]string{"name": name}, &x)
	return x, err
}

// listResellers lists the resellers of a partner.
func (c *apiClient) listResellers(ctx context.Context, partner string) ([]resellerBody, error) {
	var xs []resellerBody
	err := c.do(ctx, "GET", "/api/partners/"+url.PathEscape(partner)+"/resellers", nil, &xs)
	return xs, err
}

// createCollection creates a collection of a partner.
func (c *apiClient) createCollection(ctx context.Context, col collectionBody) (collectionBody, error) {
	var out collectionBody
	err := c.do(ctx, "POST", "/api/collections", col, &out)
	return out, err
}

// listCollections lists the collections the caller sees.
func (c *apiClient) listCollections(ctx context.Context) ([]collectionBody, error) {
	var cs []collectionBody
	err := c.do(ctx, "GET", "/api/collections", nil, &cs)
	return cs, err
}

// createService creates a service of a reseller.
func (c *apiClient) createService(ctx context.Context, s serviceBody) (serviceBody, error) {
	var out serviceBody
	err := c.do(ctx, "POST", "/api/services", s, &out)
	return out, err
}

// getService returns a service; a missing one is a 404 *apiError.
func (c *apiClient) getService(ctx context.Context, guid string) (serviceBody, error) {
	var out serviceBody
	err := c.do(ctx, "GET", "/api/services/"+url.PathEscape(guid), nil, &out)
	return out, err
}

// setServiceStatus changes a service's status.
func (c *apiClient) setServiceStatus(ctx context.Context, guid, status string) error {
	return c.do(ctx, "PUT", "/api/services/"+url.PathEscape(guid)+"/status", map[string]string{"status": status}, nil)
}

// createAPIKey creates a key of scope; the answer alone holds its secret.
func (c *apiClient) createAPIKey(ctx context.Context, name string, scope usage.Scope) (apiKeyBody, error) {
	var k apiKeyBody
	err := c.do(ctx, "POST", "/api/apikeys", map[string]string{"name": name, "scope": scope.Kind.String(), "scopeGuid": scope.GUID.String()}, &k)
	return k, err
}

// listAPIKeys lists every key, without secrets (admin).
func (c *apiClient) listAPIKeys(ctx context.Context) ([]apiKeyBody, error) {
	var ks []apiKeyBody
	err := c.do(ctx, "GET", "/api/apikeys", nil, &ks)
	return ks, err
}

// deleteAPIKey revokes the key whose id (digest) is id (admin).
func (c *apiClient) deleteAPIKey(ctx context.Context, id string) error {
	return c.do(ctx, "DELETE", "/api/apikeys/"+url.PathEscape(id), nil, nil)
}

// postActivity sends an NDJSON body of service activity events,
// gzip-compressed when gzipped is set.
func (c *apiClient) postActivity(ctx context.Context, service usage.GUID, body []byte, gzipped bool) (ingest.Result, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", c.base+"/api/services/"+service.String()+"/events", bytes.NewReader(body))
	if err != nil {
		return ingest.Result{}, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if gzipped {
		req.Header.Set("Content-Encoding", "gzip")
	}
	var res ingest.Result
	err = c.send(req, &res)
	return res, err
}

// guidFlag parses the GUID given to --name; empty is zero.
func guidFlag(name, v string) (usage.GUID, error) {
	if v == "" {
		return usage.GUID{}, nil
	}
	g, err := usage.ParseGUID(v)
	if err != nil {
		return g, usageError{err: fmt.Errorf("--%s %q is not a GUID: use 32 hex digits, optionally dashed as 8-4-4-4-12", name, v)}
	}
	return g, nil
}

// partnerCreateCommand is usaged partner create.
func (c *cli) partnerCreateCommand() *command {
	cmd := c.newCommand("partner create", "create a partner of the service-usage reports (admin)", "")
	remote := addRemoteFlags(cmd.fs, "admin token")
	name := cmd.fs.String("name", "", "name of the partner, required")
	format := formatFlag(cmd)
	cmd.run = func(ctx context.Context) error {
		if err := usage.CheckName("--name", *name); err != nil {
			return usageError{err: err}
		}
		api, err := remote.client(true, 1)
		if err != nil {
			return err
		}
		p, err := api.createPartner(ctx, *name)
		if err != nil {
			return err
		}
		if format.value == "json" {
			return writeJSON(c.stdout, p)
		}
		fmt.Fprintf(c.stdout, "created partner %q\n  guid  %s\n", p.Name, p.PartnerGuid)
		return nil
	}
	return cmd
}

// partnerListCommand is usaged partner list.
func (c *cli) partnerListCommand() *command {
	cmd := c.newCommand("partner list", "list the partners (admin)", "")
	remote := addRemoteFlags(cmd.fs, "admin token")
	format := formatFlag(cmd)
	cmd.run = func(ctx context.Context) error {
		api, err := remote.client(true, 1)
		if err != nil {
			return err
		}
		ps, err := api.listPartners(ctx)
		if err != nil {
			return err
		}
		if format.value == "json" {
			return writeJSON(c.stdout, ps)
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "GUID\tNAME\tCREATED\t")
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
	remote := addRemoteFlags(cmd.fs, "admin token")
	partner := cmd.fs.String("partner", "", "GUID of the partner, required")
	name := cmd.fs.String("name", "", "name of the reseller, required")
	format := formatFlag(cmd)
	cmd.run = func(ctx context.Context) error {
		if *partner == "" || strings.TrimSpace(*name) == "" {
			return usageError{err: errors.New("--partner and --name are required")}
		}
		p, err := guidFlag("partner", *partner)
		if err != nil {
			return err
		}
		api, err := remote.client(true, 1)
		if err != nil {
			return err
		}
		x, err := api.createReseller(ctx, p.String(), *name)
		if err != nil {
			return err
		}
		if format.value == "json" {
			return writeJSON(c.stdout, x)
		}
		fmt.Fprintf(c.stdout, "created reseller %q of partner %s\n  guid  %s\n", x.Name, x.PartnerGuid, x.ResellerGuid)
		return nil
	}
	return cmd
}

// resellerListCommand is usaged reseller list.
func (c *cli) resellerListCommand() *command {
	cmd := c.newCommand("reseller list", "list the resellers of a partner (admin)", "")
	remote := addRemoteFlags(cmd.fs, "admin token")
	partner := cmd.fs.String("partner", "", "GUID of the partner, required")
	format := formatFlag(cmd)
	cmd.run = func(ctx context.Context) error {
		if *partner == "" {
			return usageError{err: errors.New("--partner is required")}
		}
		p, err := guidFlag("partner", *partner)
		if err != nil {
			return err
		}
		api, err := remote.client(true, 1)
		if err != nil {
			return err
		}
		xs, err := api.listResellers(ctx, p.String())
		if err != nil {
			return err
		}
		if format.value == "json" {
			return writeJSON(c.stdout, xs)
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "GUID\tNAME\tCREATED\t")
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
	remote := addRemoteFlags(cmd.fs, "admin token")
	name := cmd.fs.String("name", "", "name of the key, required")
	partner := cmd.fs.String("partner", "", "scope the key to the partner with this `GUID`")
	reseller := cmd.fs.String("reseller", "", "scope the key to the reseller with this `GUID`")
	service := cmd.fs.String("service", "", "scope the key to the service with this `GUID`")
	format := formatFlag(cmd)
	cmd.run = func(ctx context.Context) error {
		if err := usage.CheckName("--name", *name); err != nil {
			return usageError{err: err}
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
			return usageError{err: fmt.Errorf("give exactly one of --partner, --reseller or --service, got %d", set)}
		}
		api, err := remote.client(true, 1)
		if err != nil {
			return err
		}
		k, err := api.createAPIKey(ctx, *name, scope)
		if err != nil {
			return err
		}
		if format.value == "json" {
			return writeJSON(c.stdout, k)
		}
		fmt.Fprintf(c.stdout, `created API key %q for %s %s
  id   %s
  key  %s

The key is shown only now; usaged keeps just a hash of it. Try it:
  %s
`, k.Name, k.Scope, k.ScopeGuid, k.ID, k.Key, curlExample(remote.server, k.Key, scope))
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
	remote := addRemoteFlags(cmd.fs, "admin token")
	format := formatFlag(cmd)
	cmd.run = func(ctx context.Context) error {
		api, err := remote.client(true, 1)
		if err != nil {
			return err
		}
		ks, err := api.listAPIKeys(ctx)
		if err != nil {
			return err
		}
		if format.value == "json" {
			return writeJSON(c.stdout, ks)
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSCOPE\tSCOPE GUID\tCREATED\t")
		for _, k := range ks {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", k.ID, k.Name, k.Scope, k.ScopeGuid, k.CreatedOn)
		}
		return tw.Flush()
	}
	return cmd
}

// apikeyDeleteCommand is usaged apikey delete.
func (c *cli) apikeyDeleteCommand() *command {
	cmd := c.newCommand("apikey delete", "revoke an API key at once (admin)", "")
	remote := addRemoteFlags(cmd.fs, "admin token")
	id := cmd.fs.String("id", "", "id of the key as apikey list shows it (64 hex digits), required")
	cmd.run = func(ctx context.Context) error {
		if *id == "" {
			return usageError{err: errors.New("--id is required")}
		}
		api, err := remote.client(true, 1)
		if err != nil {
			return err
		}
		if err := api.deleteAPIKey(ctx, *id); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "deleted API key %s\n", *id)
		return nil
	}
	return cmd
}

// serviceHierarchy is where a service-usage demo's hierarchy is made: the
// registry of the serving process, or a server over HTTP. Lookups are by
// name within the parent, so that making a demo again finds what an earlier
// run made instead of making it twice.
type serviceHierarchy interface {
	partners(ctx context.Context) (map[string]usage.GUID, error)
	createPartner(ctx context.Context, name string) (usage.GUID, error)
	resellers(ctx context.Context, partner usage.GUID) (map[string]usage.GUID, error)
	createReseller(ctx context.Context, partner usage.GUID, name string) (usage.GUID, error)
	collections(ctx context.Context, partner usage.GUID) (map[string]usage.GUID, error)
	createCollection(ctx context.Context, c usage.Collection) (usage.GUID, error)
	// serviceStatus returns the status of an existing service; false when
	// there is none.
	serviceStatus(ctx context.Context, guid usage.GUID) (usage.ServiceStatus, bool, error)
	createService(ctx context.Context, s usage.Service) error
	setServiceStatus(ctx context.Context, guid usage.GUID, st usage.ServiceStatus) error
}

// placedDemo is a demo's hierarchy as made: the GUIDs the registry assigned.
type placedDemo struct {
	partners []usage.GUID // in the demo's order
	created  int          // services created now rather than found
}

// initialStatus is the status a service is created in: the one it has now
// if it can start in it, else TrialActive, from which the demo moves it on
// the way its account went.
func initialStatus(st usage.ServiceStatus) usage.ServiceStatus {
	switch st {
	case usage.StatusProvisioning, usage.StatusTrialActive, usage.StatusDemoAccount, usage.StatusCertifiedSecure:
		return st
	}
	return usage.StatusTrialActive
}

// placeServiceDemo finds or makes every partner, reseller, collection and
// service of d in h, and gives each service it creates its planned status.
func placeServiceDemo(ctx context.Context, h serviceHierarchy, d *demo.ServiceDemo) (placedDemo, error) {
	var pd placedDemo
	type partnerGUIDs struct {
		resellers, collections []usage.GUID
	}
	byName, err := h.partners(ctx)
	if err != nil {
		return pd, fmt.Errorf("listing partners: %w", err)
	}
	var placed []partnerGUIDs
	for _, pp := range d.Partners() {
		pg, ok := byName[pp.Name]
		if !ok {
			if pg, err = h.createPartner(ctx, pp.Name); err != nil {
				return pd, fmt.Errorf("creating partner %q: %w", pp.Name, err)
			}
		}
		pd.partners = append(pd.partners, pg)
		var g partnerGUIDs
		have, err := h.resellers(ctx, pg)
		if err != nil {
			return pd, fmt.Errorf("listing the resellers of partner %s: %w", pg, err)
		}
		for _, name := range pp.Resellers {
			x, ok := have[name]
			if !ok {
				if x, err = h.createReseller(ctx, pg, name); err != nil {
					return pd, fmt.Errorf("creating reseller %q: %w", name, err)
				}
			}
			g.resellers = append(g.resellers, x)
		}
		cols, err := h.collections(ctx, pg)
		if err != nil {
			return pd, fmt.Errorf("listing the collections of partner %s: %w", pg, err)
		}
		for _, cp := range pp.Collections {
			cg, ok := cols[cp.Name]
			if !ok {
				if cg, err = h.createCollection(ctx, usage.Collection{Name: cp.Name, SiteName: cp.SiteName, SiteGUID: cp.SiteGUID, PartnerGUID: pg}); err != nil {
					return pd, fmt.Errorf("creating collection %q: %w", cp.Name, err)
				}
			}
			g.collections = append(g.collections, cg)
		}
		placed = append(placed, g)
	}
	for _, sp := range d.Services() {
		s := sp.Service
		s.PartnerGUID = pd.partners[sp.Partner]
		s.ResellerGUID = placed[sp.Partner].resellers[sp.Reseller]
		s.CollectionGUID = placed[sp.Partner].collections[sp.Collection]
		_, ok, err := h.serviceStatus(ctx, s.GUID)
		if err != nil {
			return pd, fmt.Errorf("looking up service %s: %w", s.GUID, err)
		}
		if !ok {
			want := s.Status
			s.Status = initialStatus(want)
			if err := h.createService(ctx, s); err != nil {
				return pd, fmt.Errorf("creating service %q: %w", s.Name, err)
			}
			pd.created++
			// Only a service made now is moved to its planned status: one
			// found already has the status its owner gave it since, which a
			// demo run must not silently undo.
			if s.Status != want {
				if err := h.setServiceStatus(ctx, s.GUID, want); err != nil {
					return pd, fmt.Errorf("setting the status of service %s: %w", s.GUID, err)
				}
			}
		}
	}
	return pd, nil
}

// httpHierarchy makes a demo's hierarchy through a server's HTTP API.
type httpHierarchy struct{ api *apiClient }

var _ serviceHierarchy = httpHierarchy{}

// parseGUIDs maps the name of each item keep accepts (all when nil) to its
// GUID, as the server spelled it.
func parseGUIDs[T any](items []T, name func(*T) string, guid func(*T) string, keep func(*T) bool) (map[string]usage.GUID, error) {
	out := make(map[string]usage.GUID, len(items))
	for i := range items {
		if keep != nil && !keep(&items[i]) {
			continue
		}
		g, err := usage.ParseGUID(guid(&items[i]))
		if err != nil {
			return nil, fmt.Errorf("the server answered a bad GUID: %w", err)
		}
		out[name(&items[i])] = g
	}
	return out, nil
}

// partners lists every partner by name.
func (h httpHierarchy) partners(ctx context.Context) (map[string]usage.GUID, error) {
	ps, err := h.api.listPartners(ctx)
	if err != nil {
		return nil, err
	}
	return parseGUIDs(ps, func(p *partnerBody) string { return p.Name }, func(p *partnerBody) string { return p.PartnerGuid }, nil)
}

// createPartner creates a partner.
func (h httpHierarchy) createPartner(ctx context.Context, name string) (usage.GUID, error) {
	p, err := h.api.createPartner(ctx, name)
	if err != nil {
		return usage.GUID{}, err
	}
	return usage.ParseGUID(p.PartnerGuid)
}

// resellers lists a partner's resellers by name.
func (h httpHierarchy) resellers(ctx context.Context, partner usage.GUID) (map[string]usage.GUID, error) {
	xs, err := h.api.listResellers(ctx, partner.String())
	if err != nil {
		return nil, err
	}
	return parseGUIDs(xs, func(x *resellerBody) string { return x.Name }, func(x *resellerBody) string { return x.ResellerGuid }, nil)
}

// createReseller creates a reseller of partner.
func (h httpHierarchy) createReseller(ctx context.Context, partner usage.GUID, name string) (usage.GUID, error) {
	x, err := h.api.createReseller(ctx, partner.String(), name)
	if err != nil {
		return usage.GUID{}, err
	}
	return usage.ParseGUID(x.ResellerGuid)
}

// collections lists a partner's collections by name.
func (h httpHierarchy) collections(ctx context.Context, partner usage.GUID) (map[string]usage.GUID, error) {
	cs, err := h.api.listCollections(ctx)
	if err != nil {
		return nil, err
	}
	return parseGUIDs(cs, func(c *collectionBody) string { return c.Name }, func(c *collectionBody) string { return c.CollectionGuid },
		func(c *collectionBody) bool {
			g, err := usage.ParseGUID(c.PartnerGuid)
			return err == nil && g == partner
		})
}

// createCollection creates a collection; the server assigns its GUID.
func (h httpHierarchy) createCollection(ctx context.Context, c usage.Collection) (usage.GUID, error) {
	out, err := h.api.createCollection(ctx, collectionBody{Name: c.Name, SiteGuid: c.SiteGUID.String(), SiteName: c.SiteName, PartnerGuid: c.PartnerGUID.String()})
	if err != nil {
		return usage.GUID{}, err
	}
	return usage.ParseGUID(out.CollectionGuid)
}

// serviceStatus reads a service's status; a 404 means there is none.
func (h httpHierarchy) serviceStatus(ctx context.Context, guid usage.GUID) (usage.ServiceStatus, bool, error) {
	s, err := h.api.getService(ctx, guid.String())
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	st, err := usage.ParseServiceStatus(s.Status)
	return st, true, err
}

// serviceRequest is the body that creates s.
func serviceRequest(s *usage.Service) serviceBody {
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
	return serviceBody{
		ServiceGuid: guid(s.GUID), Name: s.Name, Status: s.Status.String(), ServiceCode: s.ServiceCode,
		ReferenceId: s.ReferenceID, PrimaryDomain: s.PrimaryDomain, TrialEndDate: date(s.TrialEndDate),
		EffectiveDate: date(s.EffectiveDate), InitialTerm: s.InitialTerm, CollectionGuid: guid(s.CollectionGUID),
		ClientGuid: guid(s.ClientGUID), ResellerGuid: guid(s.ResellerGUID),
		Contact: contactBody(s.Contact), Company: companyBody(s.Company),
	}
}

// createService creates s with the GUID it has.
func (h httpHierarchy) createService(ctx context.Context, s usage.Service) error {
	_, err := h.api.createService(ctx, serviceRequest(&s))
	return err
}

// setServiceStatus sends PUT /api/services/{guid}/status.
func (h httpHierarchy) setServiceStatus(ctx context.Context, guid usage.GUID, st usage.ServiceStatus) error {
	return h.api.setServiceStatus(ctx, guid.String(), st.String())
}

// serviceDemoSummary is what seeding a service-usage demo did.
type serviceDemoSummary struct {
	Interval      string              `json:"interval"`
	Partners      []demoPartner       `json:"partners"`
	Services      int                 `json:"services"`
	Created       int                 `json:"servicesCreated"`
	Events        int                 `json:"events"`
	Accepted      int                 `json:"accepted"`
	Duplicates    int                 `json:"duplicates"`
	Rejected      int                 `json:"rejected"`
	Errors        []ingest.EventError `json:"errors"`         // a sample of the rejections
	APIKey        string              `json:"apiKey"`         // scoped to the first partner
	KeyServices   int                 `json:"apiKeyServices"` // the services the key sees
	SampleService string              `json:"sampleService"`  // one of them whose reports are available
}

// plural writes n things, in the singular for one.
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// demoKeyName names the API keys the demos create.
const demoKeyName = "Demo partner key"

// newServiceDemoSummary describes d as placed, before its activity is sent.
func newServiceDemoSummary(d *demo.ServiceDemo, pd placedDemo) *serviceDemoSummary {
	cfg := d.Config()
	s := &serviceDemoSummary{
		Interval: usage.Interval{Start: cfg.Start, End: cfg.End}.String(),
		Services: len(d.Services()), Created: pd.created, Events: countActivity(d),
		SampleService: sampleService(d, 0).String(), Errors: []ingest.EventError{},
	}
	for i, p := range d.Partners() {
		s.Partners = append(s.Partners, demoPartner{GUID: pd.partners[i].String(), Name: p.Name})
	}
	for _, sp := range d.Services() {
		if sp.Partner == 0 {
			s.KeyServices++
		}
	}
	return s
}

// demoPartner is a partner of a demo.
type demoPartner struct {
	GUID string `json:"partnerGuid"`
	Name string `json:"name"`
}

// activitySender records one batch of a service's activity.
type activitySender func(ctx context.Context, service usage.GUID, events []usage.Activity) (ingest.Result, error)

// sendServiceActivity sends every activity event of d's services in batches
// of batch, from workers services at a time, adding the outcomes to sum.
func sendServiceActivity(ctx context.Context, d *demo.ServiceDemo, send activitySender, batch, workers int, prog *progress, sum *serviceDemoSummary) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	go func() {
		defer close(next)
		for i := range d.Services() {
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			buf := make([]usage.Activity, 0, batch)
			flush := func(service usage.GUID) bool {
				if len(buf) == 0 {
					return true
				}
				res, err := send(ctx, service, buf)
				if err != nil {
					cancel(fmt.Errorf("service %s: %w", service, err))
					return false
				}
				mu.Lock()
				sum.Accepted += res.Accepted
				sum.Duplicates += res.Duplicates
				sum.Rejected += res.Rejected
				for _, e := range res.Errors {
					if len(sum.Errors) < 5 {
						sum.Errors = append(sum.Errors, e)
					}
				}
				mu.Unlock()
				prog.add(len(buf))
				buf = buf[:0]
				return true
			}
			for i := range next {
				g := d.Services()[i].Service.GUID
				for a := range d.Activity(i) {
					if buf = append(buf, a); len(buf) == batch && !flush(g) {
						return
					}
				}
				if !flush(g) {
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("sending service activity: %w", err)
	}
	return nil
}

// countActivity returns the number of activity events of d: generating
// them is much cheaper than sending them, so a progress bar may know its end.
func countActivity(d *demo.ServiceDemo) int {
	n := 0
	for i := range d.Services() {
		for range d.Activity(i) {
			n++
		}
	}
	return n
}

// sampleService returns a service of partner p whose reports are available,
// for the examples a demo prints.
func sampleService(d *demo.ServiceDemo, p int) usage.GUID {
	for _, sp := range d.Services() {
		if sp.Partner == p && sp.Service.Status.Reportable() {
			return sp.Service.GUID
		}
	}
	return d.Services()[0].Service.GUID
}

// postActivityGzip returns an activitySender that posts gzip NDJSON over
// HTTP, retrying when the server is overloaded or restarting.
func postActivityGzip(api *apiClient) activitySender {
	var pool sync.Pool
	return func(ctx context.Context, service usage.GUID, events []usage.Activity) (ingest.Result, error) {
		var body []byte
		if b, ok := pool.Get().(*[]byte); ok {
			body = (*b)[:0]
		}
		for i := range events {
			body = ingest.AppendActivityNDJSON(body, &events[i])
		}
		defer pool.Put(&body)
		var zbuf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&zbuf, gzip.BestSpeed)
		zw.Write(body)
		zw.Close()
		return withRetry(ctx, func() (ingest.Result, error) { return api.postActivity(ctx, service, zbuf.Bytes(), true) })
	}
}

// printServiceDemo shows how to read a service-usage demo with its key.
func printServiceDemo(w io.Writer, base string, s *serviceDemoSummary) {
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
