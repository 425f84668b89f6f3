package ccc

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/usaged/usaged/httpmw"
	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/ratelimit"
	"github.com/usaged/usaged/reports"
	"github.com/usaged/usaged/servicestack"
	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/tenancy"
	"github.com/usaged/usaged/usage"
)

// Config configures a Server.
type Config struct {
	Registry *tenancy.Registry // required
	Ingest   *ingest.Pipeline  // records activity events; required
	Reports  store.Reports     // answers the usage reports; required
	// Admin reports whether a bearer token is the operator's, who may see
	// and change everything. Nil: no admin.
	Admin   func(token string) bool
	MaxBody int64            // bound on an events body after decompression; default ingest.DefaultMaxBody
	Now     func() time.Time // the clock of "today" and "yesterday", and of rate limit windows; default time.Now
	Logger  *slog.Logger     // default slog.Default()
	// RateLimit is how many requests per minute one API key, or the admin,
	// may make on every operation but activity events. Requests without a
	// valid key count against their remote IP address instead. Windows are
	// fixed minutes of Now's clock. 0 means DefaultRateLimit; negative
	// means unlimited.
	RateLimit int
	// IngestRateLimit is the same for POST /api/services/{ServiceGuid}/events,
	// whose requests count only against this budget of their own: 0 means
	// DefaultIngestRateLimit; negative means unlimited.
	IngestRateLimit int
	// Stack is the middleware the routes run behind (correlation ids,
	// request metrics, rate limits, recovery, access log), shared with the
	// server's other faces. Nil: a stack of the face's own, whose metrics
	// are not exported.
	Stack *httpmw.Stack
}

// Validate reports every problem with the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Registry == nil {
		errs = append(errs, errors.New("ccc: Registry is required"))
	}
	if c.Ingest == nil {
		errs = append(errs, errors.New("ccc: Ingest is required"))
	}
	if c.Reports == nil {
		errs = append(errs, errors.New("ccc: Reports is required"))
	}
	if c.MaxBody < 0 {
		errs = append(errs, errors.New("ccc: MaxBody must not be negative"))
	}
	if c.RateLimit > ratelimit.MaxLimit {
		errs = append(errs, fmt.Errorf("ccc: RateLimit must be at most %d, got %d", ratelimit.MaxLimit, c.RateLimit))
	}
	if c.IngestRateLimit > ratelimit.MaxLimit {
		errs = append(errs, fmt.Errorf("ccc: IngestRateLimit must be at most %d, got %d", ratelimit.MaxLimit, c.IngestRateLimit))
	}
	return errors.Join(errs...)
}

// Server serves the CCC routes under /api (but not /api/v2, which is the
// Genesys face's). It is safe for concurrent use.
type Server struct {
	cfg  Config
	log  *slog.Logger
	reg  *tenancy.Registry
	rep  *reports.Service
	face httpmw.Face
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = ingest.DefaultMaxBody
	}
	if cfg.Stack == nil {
		var err error
		if cfg.Stack, err = httpmw.New(httpmw.Config{Logger: cfg.Logger}); err != nil {
			return nil, fmt.Errorf("ccc: %w", err)
		}
	}
	s := &Server{cfg: cfg, log: cfg.Logger, reg: cfg.Registry}
	var err error
	if s.rep, err = reports.New(reports.Config{Usage: cfg.Reports, Now: cfg.Now}); err != nil {
		return nil, fmt.Errorf("ccc: %w", err)
	}
	budgets, err := httpmw.NewBudgets(httpmw.BudgetsConfig{
		Limits: httpmw.Limits{API: cfg.RateLimit, Ingest: cfg.IngestRateLimit, Token: -1},
		Now:    cfg.Now,
		Refuse: s.refuse,
	})
	if err != nil {
		return nil, fmt.Errorf("ccc: %w", err)
	}
	s.face = httpmw.Face{
		Budgets: budgets,
		Key:     s.rateKey,
		Error: func(w http.ResponseWriter, r *http.Request, err error) {
			servicestack.RespondError(w, r, httpmw.RouteOf(r.Context()).Name, err, s.log)
		},
	}
	return s, nil
}

// Register adds the routes to mux. Routes are matched after a format suffix
// (.json, .csv, .xml) is taken off the path; literal segments win over
// {ServiceGuid}, as in ServiceStack.
func (s *Server) Register(mux *http.ServeMux) {
	inner := http.NewServeMux()
	route := func(pattern, op string, h handler) {
		rt := httpmw.Route{Pattern: pattern, Name: op, Class: httpmw.ClassAPI}
		if op == ingestOp {
			rt.Class = httpmw.ClassIngest
		}
		inner.Handle(pattern, s.cfg.Stack.Wrap(&s.face, rt, s.op(op, h)))
	}

	route("GET /api/services/{ServiceGuid}/serviceusage", "GetServiceUsage", s.getServiceUsage)
	route("GET /api/services/{ServiceGuid}/serviceusage/history", "GetServiceUsageHistory", s.getServiceUsageHistory)
	route("GET /api/services/usage", "GetServicesUsage", s.getServicesUsage)
	route("GET /api/resellers/{ResellerGuid}/serviceusagelist", "GetResellerServiceUsage", s.getResellerServiceUsage)
	route("GET /api/services/{ServiceGuid}/users/usage", "GetServiceUsersUsage", s.getServiceUsersUsage)
	route("GET /api/services/{ServiceGuid}/users/{UserGuid}/usage", "GetServiceUserUsage", s.getServiceUserUsage)

	route("GET /api/services", "SearchServices", s.searchServices)
	route("POST /api/services", "CreateService", s.createService)
	route("GET /api/services/{ServiceGuid}", "GetService", s.getService)
	route("PUT /api/services/{ServiceGuid}/status", "UpdateServiceStatus", s.updateServiceStatus)
	route("GET /api/collections", "GetCollections", s.getCollections)
	route("POST /api/collections", "CreateCollection", s.createCollection)
	route("GET /api/collections/{CollectionGuid}", "GetCollection", s.getCollection)
	route("GET /api/partners/{PartnerGuid}/resellers", "GetResellers", s.getResellers)
	route("POST /api/partners/{PartnerGuid}/resellers", "CreateReseller", s.createReseller)
	route("GET /api/partners", "GetPartners", s.getPartners)
	route("POST /api/partners", "CreatePartner", s.createPartner)
	route("GET /api/apikeys", "GetApiKeys", s.getAPIKeys)
	route("POST /api/apikeys", "CreateApiKey", s.createAPIKey)
	route("DELETE /api/apikeys/{Id}", "DeleteApiKey", s.deleteAPIKey)

	route("POST /api/services/{ServiceGuid}/events", "PostServiceEvents", s.postEvents)

	// Anything else under the CCC prefixes is a ServiceStack-shaped 404.
	notFound := s.cfg.Stack.Wrap(&s.face, httpmw.Route{Pattern: "unmatched", Name: "NotFound", Class: httpmw.ClassAPI, Unlisted: true},
		s.op("NotFound", func(*http.Request, *caller) (int, any, error) {
			return 0, nil, usage.Errorf(usage.KindNotFound, "", "no such route")
		}))
	inner.Handle("/api/", notFound)
	// ServiceStack's literal routes win over {ServiceGuid}; these are
	// operations usaged does not offer, so they are missing routes rather
	// than unparseable GUIDs.
	for _, m := range []string{"GET", "POST", "PUT", "DELETE"} {
		inner.Handle(m+" /api/services/status", notFound)
		inner.Handle(m+" /api/services/users", notFound)
	}
	h := servicestack.WithSuffixes(inner)
	for _, prefix := range topLevel {
		mux.Handle(prefix, h)
		mux.Handle(prefix+"/", h)
	}
	// A top-level route with a format suffix (/api/services.csv) is under
	// none of these prefixes; one pattern for every path of one segment
	// under /api catches it.
	mux.Handle("/api/{segment}", suffixedTopLevel(mux, h))
}

// topLevel are the paths under which every route of the CCC face lies.
var topLevel = []string{"/api/services", "/api/collections", "/api/partners", "/api/resellers", "/api/apikeys"}

// suffixedTopLevel serves with h a path that is one of topLevel with an
// extension (/api/partners.xml, /api/services.jsv), and any other path of
// one segment under /api as mux would without the pattern it is registered
// for: a redirect to the path with a slash where that is a subtree of mux
// (/api/v2 → /api/v2/), else the plain 404.
func suffixedTopLevel(mux *http.ServeMux, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if base, _, ok := strings.Cut(r.URL.Path, "."); ok && slices.Contains(topLevel, base) {
			h.ServeHTTP(w, r)
			return
		}
		u := &url.URL{Path: r.URL.Path + "/", RawQuery: r.URL.RawQuery}
		if _, pattern := mux.Handler(&http.Request{Method: r.Method, Host: r.Host, URL: u}); strings.HasSuffix(pattern, " "+u.Path) || pattern == u.Path {
			http.Redirect(w, r, u.String(), http.StatusMovedPermanently)
			return
		}
		http.NotFound(w, r)
	})
}

// caller is who made a request: the operator, or the holder of a scoped key.
type caller struct {
	admin  bool
	scope  usage.Scope
	digest [32]byte // of the caller's API key; zero for the admin
}

// handler answers one operation with a status (0 means 200) and a response
// DTO, or an error.
type handler func(r *http.Request, c *caller) (int, any, error)

var errNotAuthenticated = &usage.Error{Kind: usage.KindUnauthorized, Message: "Not Authenticated"}

// op wraps h, which runs behind the stack (its rate limit and recovery):
// it authenticates the bearer key, unless the rate limit did already, and
// writes the answer or the error in the negotiated format.
func (s *Server) op(name string, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, done := authenticated(r)
		if !done {
			a.c, a.err = s.authenticate(r)
		}
		c, err := a.c, a.err
		// Before authentication: a format the request cannot get is a
		// mistake in the request itself, whoever sends it.
		if ferr := servicestack.FormatError(r); ferr != nil {
			servicestack.RespondError(w, r, name, ferr, s.log)
			return
		}
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="usaged"`)
			servicestack.RespondError(w, r, name, err, s.log)
			return
		}
		status, v, err := h(r, c)
		if err != nil {
			servicestack.RespondError(w, r, name, err, s.log)
			return
		}
		if status == 0 {
			status = http.StatusOK
		}
		if status == http.StatusNoContent {
			w.WriteHeader(status)
			return
		}
		servicestack.Respond(w, r, name, status, v)
	})
}

func (s *Server) authenticate(r *http.Request) (*caller, error) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return nil, errNotAuthenticated
	}
	token = strings.TrimSpace(token)
	if s.cfg.Admin != nil && s.cfg.Admin(token) {
		return &caller{admin: true}, nil
	}
	k, ok := s.reg.Authenticate(token)
	if !ok {
		return nil, errNotAuthenticated
	}
	return &caller{scope: k.Scope, digest: k.Digest}, nil
}

// service returns the service named by the ServiceGuid parameter, if the
// caller may see it; a service outside the caller's scope is not found, so
// that keys cannot probe which services exist.
func (s *Server) service(p *servicestack.Params, c *caller) (usage.Service, error) {
	g := p.GUID("ServiceGuid")
	if err := p.Err(); err != nil {
		return usage.Service{}, err
	}
	return s.as(c).Service(g)
}

func (s *Server) collectionName(g usage.GUID) string {
	if g.IsZero() {
		return ""
	}
	c, _ := s.reg.Collection(g)
	return c.Name
}
