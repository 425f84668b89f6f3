package demo

import (
	"context"
	"fmt"
	"sync"

	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/usage"
)

// Progress counts the units of a long job done; Add is safe for concurrent
// use.
type Progress interface {
	Add(n int)
}

// Hierarchy is where a service-usage demo's hierarchy is made: the
// registry of the serving process, or a server over HTTP. Lookups are by
// name within the parent, so that making a demo again finds what an earlier
// run made instead of making it twice.
type Hierarchy interface {
	Partners(ctx context.Context) (map[string]usage.GUID, error)
	CreatePartner(ctx context.Context, name string) (usage.GUID, error)
	Resellers(ctx context.Context, partner usage.GUID) (map[string]usage.GUID, error)
	CreateReseller(ctx context.Context, partner usage.GUID, name string) (usage.GUID, error)
	Collections(ctx context.Context, partner usage.GUID) (map[string]usage.GUID, error)
	CreateCollection(ctx context.Context, c usage.Collection) (usage.GUID, error)
	// ServiceStatus returns the status of an existing service; false when
	// there is none.
	ServiceStatus(ctx context.Context, guid usage.GUID) (usage.ServiceStatus, bool, error)
	CreateService(ctx context.Context, s usage.Service) error
	SetServiceStatus(ctx context.Context, guid usage.GUID, st usage.ServiceStatus) error
	CreateAPIKey(ctx context.Context, name string, scope usage.Scope) (secret string, err error)
}

// Placed is a demo's hierarchy as made: the GUIDs the registry assigned.
type Placed struct {
	Partners []usage.GUID // in the demo's order
	Created  int          // services created now rather than found
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

// Place finds or makes every partner, reseller, collection and
// service of d in h, and gives each service it creates its planned status.
func Place(ctx context.Context, h Hierarchy, d *ServiceDemo) (Placed, error) {
	var pd Placed
	type partnerGUIDs struct {
		resellers, collections []usage.GUID
	}
	byName, err := h.Partners(ctx)
	if err != nil {
		return pd, fmt.Errorf("listing partners: %w", err)
	}
	var placed []partnerGUIDs
	for _, pp := range d.Partners() {
		pg, ok := byName[pp.Name]
		if !ok {
			if pg, err = h.CreatePartner(ctx, pp.Name); err != nil {
				return pd, fmt.Errorf("creating partner %q: %w", pp.Name, err)
			}
		}
		pd.Partners = append(pd.Partners, pg)
		var g partnerGUIDs
		have, err := h.Resellers(ctx, pg)
		if err != nil {
			return pd, fmt.Errorf("listing the resellers of partner %s: %w", pg, err)
		}
		for _, name := range pp.Resellers {
			x, ok := have[name]
			if !ok {
				if x, err = h.CreateReseller(ctx, pg, name); err != nil {
					return pd, fmt.Errorf("creating reseller %q: %w", name, err)
				}
			}
			g.resellers = append(g.resellers, x)
		}
		cols, err := h.Collections(ctx, pg)
		if err != nil {
			return pd, fmt.Errorf("listing the collections of partner %s: %w", pg, err)
		}
		for _, cp := range pp.Collections {
			cg, ok := cols[cp.Name]
			if !ok {
				if cg, err = h.CreateCollection(ctx, usage.Collection{Name: cp.Name, SiteName: cp.SiteName, SiteGUID: cp.SiteGUID, PartnerGUID: pg}); err != nil {
					return pd, fmt.Errorf("creating collection %q: %w", cp.Name, err)
				}
			}
			g.collections = append(g.collections, cg)
		}
		placed = append(placed, g)
	}
	for _, sp := range d.Services() {
		s := sp.Service
		s.PartnerGUID = pd.Partners[sp.Partner]
		s.ResellerGUID = placed[sp.Partner].resellers[sp.Reseller]
		s.CollectionGUID = placed[sp.Partner].collections[sp.Collection]
		_, ok, err := h.ServiceStatus(ctx, s.GUID)
		if err != nil {
			return pd, fmt.Errorf("looking up service %s: %w", s.GUID, err)
		}
		if !ok {
			want := s.Status
			s.Status = initialStatus(want)
			if err := h.CreateService(ctx, s); err != nil {
				return pd, fmt.Errorf("creating service %q: %w", s.Name, err)
			}
			pd.Created++
			// Only a service made now is moved to its planned status: one
			// found already has the status its owner gave it since, which a
			// demo run must not silently undo.
			if s.Status != want {
				if err := h.SetServiceStatus(ctx, s.GUID, want); err != nil {
					return pd, fmt.Errorf("setting the status of service %s: %w", s.GUID, err)
				}
			}
		}
	}
	return pd, nil
}

// ServiceSummary is what seeding a service-usage demo did.
type ServiceSummary struct {
	Interval      string           `json:"interval"`
	Partners      []SummaryPartner `json:"partners"`
	Services      int              `json:"services"`
	Created       int              `json:"servicesCreated"`
	Events        int              `json:"events"`
	Outcome                        // what the server answered to the activity
	APIKey        string           `json:"apiKey"`         // scoped to the first partner
	KeyServices   int              `json:"apiKeyServices"` // the services the key sees
	SampleService string           `json:"sampleService"`  // one of them whose reports are available
}

// KeyName names the API keys the demos create.
const KeyName = "Demo partner key"

// NewServiceSummary describes d as placed, before its activity is sent.
func NewServiceSummary(d *ServiceDemo, pd Placed) *ServiceSummary {
	cfg := d.Config()
	s := &ServiceSummary{
		Interval: usage.Interval{Start: cfg.Start, End: cfg.End}.String(),
		Services: len(d.Services()), Created: pd.Created, Events: countActivity(d),
		SampleService: sampleService(d, 0).String(), Outcome: Outcome{Errors: []ingest.EventError{}},
	}
	for i, p := range d.Partners() {
		s.Partners = append(s.Partners, SummaryPartner{GUID: pd.Partners[i].String(), Name: p.Name})
	}
	for _, sp := range d.Services() {
		if sp.Partner == 0 {
			s.KeyServices++
		}
	}
	return s
}

// SummaryPartner is a partner of a demo.
type SummaryPartner struct {
	GUID string `json:"partnerGuid"`
	Name string `json:"name"`
}

// ActivitySender records one batch of a service's activity.
type ActivitySender func(ctx context.Context, service usage.GUID, events []usage.Activity) (ingest.Result, error)

// SendActivity sends every activity event of d's services in batches
// of batch, from workers services at a time, adding the outcomes to sum.
func SendActivity(ctx context.Context, d *ServiceDemo, send ActivitySender, batch, workers int, prog Progress, sum *ServiceSummary) error {
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
				sum.add(res)
				mu.Unlock()
				prog.Add(len(buf))
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
func countActivity(d *ServiceDemo) int {
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
func sampleService(d *ServiceDemo, p int) usage.GUID {
	for _, sp := range d.Services() {
		if sp.Partner == p && sp.Service.Status.Reportable() {
			return sp.Service.GUID
		}
	}
	return d.Services()[0].Service.GUID
}
