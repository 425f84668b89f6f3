// Package genesys is the Genesys Cloud-compatible HTTP face of usaged: the
// OAuth client-credentials token endpoint under /oauth and the API under
// /api/v2, with Genesys' error body, correlation header and permission
// names. usaged's own operations (admin, event ingest, synchronous
// aggregates) live under /api/v2 too and follow the same conventions.
//
// Each area has its own file. Handlers return a value or an error and one
// wrapper writes either; errors map to statuses through one table, kindStatus.
package genesys

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/httpmw"
	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/query"
	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

// Header names of the Genesys conventions.
const (
	HeaderCorrelationID = httpmw.HeaderCorrelationID
	cacheControl        = "no-cache, no-store, must-revalidate"
)

// maxJSONBody bounds the small JSON bodies of admin and query requests.
const maxJSONBody = 1 << 20

// Config configures a Server.
type Config struct {
	Auth   *auth.Service    // required
	Ingest *ingest.Pipeline // required
	// Events answers aggregate queries; required. When it is also a
	// store.EventLister, GET /api/v2/usage/events lists the accepted events
	// it keeps; otherwise that route answers 501.
	Events store.EventQuerier
	// Queries runs the asynchronous usage queries and jobs; required.
	Queries *query.Service
	// Limits keeps the organizations' usage limits, whose status Queries
	// counts. Nil: the limits routes answer 501.
	Limits store.Limits
	// LimitWatch, when set, evaluates the limits as events commit: it is
	// told of every limit created, changed or deleted here.
	LimitWatch LimitWatch
	// LimitFeed, when set, serves the limits stream that enforcement
	// follows (GET /api/v2/usage/limits/stream); nil: that route answers
	// 501.
	LimitFeed LimitFeed
	// MaxLimitsPerOrg bounds the usage limits of one organization: a
	// create beyond it answers 409. 0 means DefaultMaxLimitsPerOrg.
	MaxLimitsPerOrg int
	// SubmitWait is how long a POST that starts an execution waits for it
	// to finish before answering, so that the caller's first poll usually
	// finds it complete. The answer is 202 either way. Default 250 ms;
	// negative: do not wait.
	SubmitWait time.Duration
	Logger     *slog.Logger     // default slog.Default()
	Now        func() time.Time // the clock of relative intervals and of rate limit windows; default time.Now
	// MaxBody bounds an event request body after decompression; default
	// ingest.DefaultMaxBody.
	MaxBody int64
	// Stack is the middleware the routes run behind (correlation ids,
	// request metrics, rate limits, recovery, access log), shared with the
	// server's other faces. Nil: a stack of the face's own, whose metrics
	// are not exported.
	Stack *httpmw.Stack
	// RateLimit is how many requests per minute one principal may make on
	// every route but event ingest and the token endpoint: one OAuth client,
	// whichever of its tokens it uses, or the admin. Requests without a
	// valid bearer token count against their remote IP address instead.
	// Windows are fixed minutes of Now's clock. 0 means DefaultRateLimit;
	// negative means unlimited, and then those responses carry no
	// inin-ratelimit headers.
	RateLimit int
	// IngestRateLimit is the same for POST /api/v2/usage/events, whose
	// requests count only against this budget of its own: 0 means
	// DefaultIngestRateLimit; negative means unlimited.
	IngestRateLimit int
	// TokenRateLimit is the same for POST /oauth/token, per remote IP
	// address, in a budget of its own, so that requests with bad tokens
	// elsewhere cannot lock logins out: 0 means DefaultTokenRateLimit;
	// negative means unlimited. Failed logins are limited by Auth besides.
	TokenRateLimit int
	// Webhooks keeps the webhook endpoints of organizations and their
	// delivery logs, and WebhookSender sends their replays and tests; with
	// either nil the webhook routes answer 501.
	Webhooks      store.Webhooks
	WebhookSender WebhookSender
}

// Validate reports every problem with the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Auth == nil {
		errs = append(errs, errors.New("genesys: Auth is required"))
	}
	if c.Ingest == nil {
		errs = append(errs, errors.New("genesys: Ingest is required"))
	}
	if c.Events == nil {
		errs = append(errs, errors.New("genesys: Events is required"))
	}
	if c.Queries == nil {
		errs = append(errs, errors.New("genesys: Queries is required"))
	}
	if c.MaxBody < 0 {
		errs = append(errs, errors.New("genesys: MaxBody must not be negative"))
	}
	if c.MaxLimitsPerOrg < 0 {
		errs = append(errs, errors.New("genesys: MaxLimitsPerOrg must not be negative"))
	}
	if c.RateLimit > MaxRateLimit {
		errs = append(errs, fmt.Errorf("genesys: RateLimit must be at most %d, got %d", MaxRateLimit, c.RateLimit))
	}
	if c.IngestRateLimit > MaxRateLimit {
		errs = append(errs, fmt.Errorf("genesys: IngestRateLimit must be at most %d, got %d", MaxRateLimit, c.IngestRateLimit))
	}
	if c.TokenRateLimit > MaxRateLimit {
		errs = append(errs, fmt.Errorf("genesys: TokenRateLimit must be at most %d, got %d", MaxRateLimit, c.TokenRateLimit))
	}
	return errors.Join(errs...)
}

// Server serves the /api/v2 and /oauth routes. It is safe for concurrent use.
type Server struct {
	cfg  Config
	log  *slog.Logger
	face httpmw.Face
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = ingest.DefaultMaxBody
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxLimitsPerOrg == 0 {
		cfg.MaxLimitsPerOrg = DefaultMaxLimitsPerOrg
	}
	if cfg.SubmitWait == 0 {
		cfg.SubmitWait = 250 * time.Millisecond
	}
	if cfg.Stack == nil {
		var err error
		if cfg.Stack, err = httpmw.New(httpmw.Config{Logger: cfg.Logger}); err != nil {
			return nil, fmt.Errorf("genesys: %w", err)
		}
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	budgets, err := httpmw.NewBudgets(httpmw.BudgetsConfig{
		Limits:  httpmw.Limits{API: cfg.RateLimit, Ingest: cfg.IngestRateLimit, Token: cfg.TokenRateLimit},
		Now:     cfg.Now,
		Headers: rateHeaders,
		Refuse:  s.refuse,
	})
	if err != nil {
		return nil, fmt.Errorf("genesys: %w", err)
	}
	s.face = httpmw.Face{
		Budgets: budgets,
		Key:     s.rateKey,
		Error:   s.writeError,
		Header:  http.Header{"Cache-Control": {cacheControl}},
	}
	return s, nil
}

// Register adds the server's routes to mux: POST /oauth/token, usaged's
// admin routes under /api/v2/admin, event ingest and listing and the synchronous
// aggregate (events.go, aggregate.go), Genesys' OAuth client management
// (clients.go), the seven Genesys usage operations (usage.go), the usage
// aggregates jobs (jobs.go) and the usage limits (usagelimits.go). Each area's register function lists its routes.
//
// Any other path under /api/v2/ answers 404, and a known path with another
// method 405, in the Genesys error shape.
func (s *Server) Register(mux *http.ServeMux) {
	r := &router{s: s, mux: mux, methods: make(map[string][]string)}
	r.handle("POST /oauth/token", http.HandlerFunc(s.token))
	s.registerAdmin(r)
	s.registerClients(r)
	s.registerEvents(r)
	s.registerAggregate(r)
	s.registerUsage(r)
	s.registerJobs(r)
	s.registerTokens(r)
	s.registerWebhooks(r)
	s.registerLimits(r)
	s.registerLimitStream(r)
	r.finish()
}

// router registers routes on a mux and remembers each path's methods, so
// that a wrong method is answered in the Genesys shape instead of the mux's
// plain text.
type router struct {
	s       *Server
	mux     *http.ServeMux
	methods map[string][]string // path pattern → methods
	paths   []string            // in registration order, for a stable mux setup
}

// handle registers h for pattern, "METHOD /path", behind the stack.
func (r *router) handle(pattern string, h http.Handler) {
	method, path, _ := strings.Cut(pattern, " ")
	if _, ok := r.methods[path]; !ok {
		r.paths = append(r.paths, path)
	}
	r.methods[path] = append(r.methods[path], method)
	r.mux.Handle(pattern, r.s.route(httpmw.Route{Pattern: pattern, Class: classOf(pattern)}, h))
}

// unmatched is the route of the answers to paths and methods no route
// takes: one metrics series for all of them.
var unmatched = httpmw.Route{Pattern: "unmatched", Class: httpmw.ClassAPI, Unlisted: true}

// route returns h behind the stack as route rt of this face.
func (s *Server) route(rt httpmw.Route, h http.Handler) http.Handler {
	return s.cfg.Stack.Wrap(&s.face, rt, h)
}

// api registers an API handler for pattern.
func (r *router) api(pattern string, h handlerFunc) { r.handle(pattern, r.s.wrap(h)) }

func (r *router) finish() {
	for _, path := range r.paths {
		allow := strings.Join(r.methods[path], ", ")
		err := &apiError{
			err:    usage.Errorf(usage.KindInvalid, "", "HTTP method is not allowed here; allowed: %s", allow),
			code:   codeMethodNotAllowed,
			status: http.StatusMethodNotAllowed,
		}
		r.mux.Handle(path, r.s.route(unmatched, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set("Allow", allow)
			r.s.writeError(w, req, err)
		})))
	}
	r.mux.Handle("/api/v2/", r.s.route(unmatched, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.s.writeError(w, req, usage.Errorf(usage.KindNotFound, "", "No resource found for %s %s.", req.Method, req.URL.Path))
	})))
}

type ctxKey int

// correlationID returns the id the stack gave the request.
func correlationID(ctx context.Context) string { return httpmw.CorrelationID(ctx) }

// response is what a handler answers on success.
type response struct {
	status int // default 200
	body   any // nil: no body
}

func ok(body any) response      { return response{status: http.StatusOK, body: body} }
func created(body any) response { return response{status: http.StatusCreated, body: body} }

var noContent = response{status: http.StatusNoContent}

// handlerFunc is an API handler: it gets the authenticated principal and
// returns a response or an error, and never writes itself.
type handlerFunc func(r *http.Request, p *auth.Principal) (response, error)

// wrap authenticates the request, unless its rate limit did already, calls h
// and writes its response or error.
func (s *Server) wrap(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, done := authenticated(r)
		if !done {
			a.p, a.err = s.authenticate(r)
		}
		p, err := a.p, a.err
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		res, err := h(r, p)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.writeJSON(w, r, res.status, res.body)
	})
}

// authenticate returns the principal of the request's bearer token.
func (s *Server) authenticate(r *http.Request) (*auth.Principal, error) {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	if h == "" {
		return nil, errNoToken
	}
	scheme, tok, _ := strings.Cut(h, " ")
	tok = strings.TrimSpace(tok)
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return nil, withCode(usage.Errorf(usage.KindUnauthorized, "", "Authorization header must be \"Bearer <token>\"."), codeAuthenticationRequired)
	}
	return s.cfg.Auth.Authenticate(r.Context(), tok)
}

// requireAny fails unless p holds at least one of perms.
func requireAny(p *auth.Principal, perms ...string) error {
	if p.HasAny(perms...) {
		return nil
	}
	return missingPermissions(perms...)
}

// streamer is a response body encoded as it is written, for answers too
// large to build whole in memory. An error it returns is the connection's:
// the status has been sent.
type streamer interface {
	stream(w io.Writer) error
}

func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, body any) {
	if body == nil {
		w.WriteHeader(status)
		return
	}
	if st, ok := body.(streamer); ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if err := st.stream(w); err != nil {
			s.log.Debug("response cut off", "contextId", correlationID(r.Context()), "method", r.Method, "path", r.URL.Path, "err", err)
		}
		return
	}
	b, err := json.Marshal(body)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("encoding response: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// writeError writes err as a Genesys ErrorBody. Internal and unavailable
// errors are logged with the context id; the client sees only a generic
// message and that id.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	id := correlationID(r.Context())
	body, internal := errorResponse(err, id)
	switch {
	case internal && usage.KindOf(err) == usage.KindUnavailable:
		// The store's failure, its reserve and the query queue are logged
		// where they arise, once; a line per refused request would grow the
		// log by the request rate while they last.
		s.log.Debug("request refused: unavailable", "contextId", id, "method", r.Method, "path", r.URL.Path, "status", body.Status, "err", err)
	case internal:
		s.log.Error("request failed", "contextId", id, "method", r.Method, "path", r.URL.Path, "status", body.Status, "err", err)
	default:
		s.log.Debug("request refused", "contextId", id, "method", r.Method, "path", r.URL.Path, "status", body.Status, "err", err)
	}
	b, _ := json.Marshal(body) // plain strings and ints: cannot fail
	w.Header().Set("Content-Type", "application/json")
	setRetryAfter(w.Header(), err)
	w.WriteHeader(body.Status)
	w.Write(b)
}

// decodeJSON decodes a request body of at most maxJSONBody bytes into v,
// strictly: unknown fields, trailing data and wrong types are errors naming
// the field.
func decodeJSON(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && mt != "text/json") {
			return usage.Errorf(usage.KindUnsupported, "Content-Type", "Content-Type %q is not supported: use application/json", ct)
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxJSONBody+1))
	if err != nil {
		return usage.Errorf(usage.KindInvalid, "body", "body could not be read: %v", err)
	}
	if len(body) > maxJSONBody {
		return usage.Errorf(usage.KindTooLarge, "body", "body is larger than the limit of %d bytes", maxJSONBody)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return usage.Errorf(usage.KindInvalid, "body", "a JSON body is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return usage.Errorf(usage.KindInvalid, "body", "body must hold a single JSON object, but more follows it")
	}
	return nil
}

// jsonError turns an encoding/json error into one naming the field.
func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return usage.Errorf(usage.KindInvalid, "body", "body must be a JSON object, not a JSON %s", te.Value)
		}
		return usage.Errorf(usage.KindInvalid, field, "%s must be of type %s, not a JSON %s", field, jsonType(te.Type.Kind().String()), te.Value)
	case errors.As(err, &se):
		return usage.Errorf(usage.KindInvalid, "body", "body is not valid JSON: %v", err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return usage.Errorf(usage.KindInvalid, "body", "body is truncated JSON")
	}
	// encoding/json reports unknown fields with no error type of their own,
	// so its message is the only way to recover the field name.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return usage.Errorf(usage.KindInvalid, name, "unknown field %q", name)
	}
	return usage.Errorf(usage.KindInvalid, "body", "body is not valid: %v", err)
}

// jsonType names a Go kind as its JSON type.
func jsonType(kind string) string {
	switch {
	case kind == "string":
		return "string"
	case kind == "slice" || kind == "array":
		return "array"
	case kind == "struct" || kind == "map":
		return "object"
	case kind == "bool":
		return "boolean"
	case strings.HasPrefix(kind, "int") || strings.HasPrefix(kind, "uint") || strings.HasPrefix(kind, "float"):
		return "number"
	}
	return kind
}

// formatTime formats t as Genesys does: UTC with a literal Z.
func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }
