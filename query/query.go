// Package query runs asynchronous query executions: a caller submits a
// usage.Execution, a bounded pool of workers answers it from the store, and
// its status and rows stay readable until it expires.
//
// Executions are durable: the record is stored before Submit returns and the
// rows are stored with the final record in one atomic write, so a restart
// loses neither. Executions a restart interrupted are queued again by New.
//
// One organization cannot starve or fill the service for the others: the
// workers serve the organizations' queues in turn (see schedule.go), and
// each organization has limits on its executions queued or running, on its
// stored executions and on the bytes of its stored results (see limits.go).
package query

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

// Defaults of Config.
const (
	DefaultTTL        = 24 * time.Hour
	DefaultQueueLimit = 1000
	// sweepEvery is how often expired executions are deleted. Reads refuse
	// an expired execution at once, so this only bounds the disk they hold.
	sweepEvery = time.Minute
)

// Config configures a Service.
type Config struct {
	Events     store.EventQuerier // answers the queries; required
	Executions store.Executions   // keeps executions and their rows; required
	// Workers is the number of executions answered at once; default
	// runtime.GOMAXPROCS(0).
	Workers int
	// QueueLimit bounds the executions waiting for a worker, across
	// organizations; Submit beyond it fails with usage.KindUnavailable.
	// Default DefaultQueueLimit.
	QueueLimit int
	// MaxPendingPerOrg bounds one organization's executions queued or
	// running; Submit beyond it fails with a *LimitError. 0 means
	// DefaultMaxPendingPerOrg; negative, no limit.
	MaxPendingPerOrg int
	// MaxExecutionsPerOrg bounds one organization's stored executions,
	// whatever their status, until they expire; Submit beyond it fails with
	// a *LimitError. 0 means DefaultMaxExecutionsPerOrg; negative, no limit.
	MaxExecutionsPerOrg int
	// MaxResultBytesPerOrg bounds the ResultBytes of one organization's
	// stored results until they expire. Submit fails with a *LimitError
	// once they reach it, and an execution whose rows would take them past
	// it fails: with usage.KindTooLarge if its rows alone are larger, else
	// with usage.KindUnavailable. 0 means DefaultMaxResultBytesPerOrg;
	// negative, no limit.
	MaxResultBytesPerOrg int64
	// TTL is how long an execution and its rows are kept after submission;
	// default DefaultTTL.
	TTL    time.Duration
	Now    func() time.Time // default time.Now
	Logger *slog.Logger     // default slog.Default()
	// Registerer receives the service's metrics (usaged_query_seconds);
	// nil: measured, not exported.
	Registerer prometheus.Registerer
}

// Validate reports every problem with the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Events == nil {
		errs = append(errs, errors.New("query: Events is required"))
	}
	if c.Executions == nil {
		errs = append(errs, errors.New("query: Executions is required"))
	}
	if c.Workers < 0 {
		errs = append(errs, errors.New("query: Workers must not be negative"))
	}
	if c.QueueLimit < 0 {
		errs = append(errs, errors.New("query: QueueLimit must not be negative"))
	}
	if c.TTL < 0 {
		errs = append(errs, errors.New("query: TTL must not be negative"))
	}
	return errors.Join(errs...)
}

// Service accepts executions and answers them in the background. It is safe
// for concurrent use.
type Service struct {
	cfg     Config
	log     *slog.Logger
	seconds prometheus.Histogram // the time of each store query

	ctx    context.Context // cancelled by Close: stops workers and running queries
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	cond   *sync.Cond           // signalled when queue grows or the service closes
	queue  queues               // ids waiting for a worker
	active map[string]*job      // queued or running executions, by id
	orgs   map[string]*orgUsage // what each organization holds against its limits
	recent recent               // the rows of the executions finished last
	closed bool
	// fullLogged is when a full queue was last logged: once a minute at
	// most, not once per refused submission.
	fullLogged time.Time
}

// job is the in-memory state of an execution that is not final yet. Its
// running status is kept here rather than stored: a restart queues it again
// anyway, and skipping that write keeps a fast query fast.
type job struct {
	org       string
	running   bool
	cancelled bool
	stop      context.CancelFunc // cancels the running query
	done      chan struct{}      // closed when the execution reaches a final status
}

// New returns a running Service. It queues again every stored execution
// that has not finished, oldest first, and starts the workers and the expiry
// sweep. Close stops them.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Workers == 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.QueueLimit == 0 {
		cfg.QueueLimit = DefaultQueueLimit
	}
	if cfg.MaxPendingPerOrg == 0 {
		cfg.MaxPendingPerOrg = DefaultMaxPendingPerOrg
	}
	if cfg.MaxExecutionsPerOrg == 0 {
		cfg.MaxExecutionsPerOrg = DefaultMaxExecutionsPerOrg
	}
	if cfg.MaxResultBytesPerOrg == 0 {
		cfg.MaxResultBytesPerOrg = DefaultMaxResultBytesPerOrg
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Service{cfg: cfg, log: cfg.Logger, active: make(map[string]*job), orgs: make(map[string]*orgUsage),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "usaged_query_seconds",
			Help:    "Time the store took to answer one usage query.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		})}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(s.seconds); err != nil {
			return nil, fmt.Errorf("query: registering metrics: %w", err)
		}
	}
	s.cond = sync.NewCond(&s.mu)
	s.ctx, s.cancel = context.WithCancel(context.Background())

	var pending []usage.Execution
	err := cfg.Executions.ExecutionsBy(ctx, func(e usage.Execution) bool {
		s.usageOf(e.OrganizationID).store(e.ID, e.Expires, e.ResultBytes)
		if !e.Status.Done() {
			pending = append(pending, e)
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(pending, func(a, b usage.Execution) int { return a.Created.Compare(b.Created) })
	for _, e := range pending {
		s.active[e.ID] = &job{org: e.OrganizationID, done: make(chan struct{})}
		s.usageOf(e.OrganizationID).pending++
		s.queue.push(e.OrganizationID, e.ID)
	}
	if len(pending) > 0 {
		s.log.Info("resuming unfinished query executions", "count", len(pending))
	}
	for range cfg.Workers {
		s.wg.Add(1)
		go s.work()
	}
	s.wg.Add(1)
	go s.sweep()
	return s, nil
}

// Query answers q at once from the store, with the store's contract of
// Events.Query: a synchronous query, which holds no execution and counts
// against no limit of the organization's.
func (s *Service) Query(ctx context.Context, q usage.Query) ([]usage.Row, error) {
	return s.query(ctx, q)
}

// query runs q on the store, timed.
func (s *Service) query(ctx context.Context, q usage.Query) ([]usage.Row, error) {
	start := time.Now()
	rows, err := s.cfg.Events.Query(ctx, q)
	s.seconds.Observe(time.Since(start).Seconds())
	return rows, err
}

// Close stops the workers and the sweep, cancelling running queries, and
// waits for them. Executions it interrupts stay queued in the store and are
// resumed by the next New. Calls after the first do nothing.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cond.Broadcast()
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// errClosed answers calls during shutdown.
var errClosed = usage.Errorf(usage.KindUnavailable, "", "the query service is shutting down")

// Submit stores e as a new queued execution and queues it. It sets e's ID,
// Status, Created and Expires and returns the stored record. e.Query must be
// normalized. When e's organization has reached one of its limits it fails
// with a *LimitError; when the queue is full, with usage.KindUnavailable.
func (s *Service) Submit(ctx context.Context, e usage.Execution) (usage.Execution, error) {
	if e.OrganizationID == "" || e.Query.OrganizationID != e.OrganizationID {
		return e, errors.New("query: an execution must count its own organization's events")
	}
	now := s.cfg.Now().UTC()
	e.ID = uuid.NewString()
	e.Status = usage.ExecutionQueued
	e.Error, e.RowCount, e.ResultBytes, e.Truncated = nil, 0, 0, false
	e.Created, e.Finished, e.Expires = now, time.Time{}, now.Add(s.cfg.TTL)
	org := e.OrganizationID

	// The execution counts against its organization's limits from here, so
	// that concurrent submissions cannot pass them together.
	s.mu.Lock()
	var err error
	switch {
	case s.closed:
		err = errClosed
	case s.queue.len() >= s.cfg.QueueLimit:
		err = usage.Errorf(usage.KindUnavailable, "", "%d query executions are waiting already; retry later", s.cfg.QueueLimit)
		if now.Sub(s.fullLogged) >= time.Minute {
			s.fullLogged = now
			s.log.Warn("the execution queue is full: new executions are refused with 503", "waiting", s.cfg.QueueLimit)
		}
	default:
		err = s.admit(org, now)
	}
	if err != nil {
		s.mu.Unlock()
		return e, err
	}
	u := s.usageOf(org)
	u.pending++
	u.store(e.ID, e.Expires, 0)
	s.mu.Unlock()

	if err := s.cfg.Executions.PutExecution(ctx, e); err != nil {
		s.mu.Lock()
		s.usageOf(org).pending--
		s.forget(org, e.ID)
		s.mu.Unlock()
		return e, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		// Stored but not queued: the next start resumes it.
		s.usageOf(org).pending--
		return e, nil
	}
	s.active[e.ID] = &job{org: org, done: make(chan struct{})}
	s.queue.push(org, e.ID)
	s.cond.Signal()
	return e, nil
}

// Scope is whose executions a caller may reach. Every method that reads or
// changes an execution takes the caller's and answers an execution outside
// it as one that does not exist (usage.KindNotFound), so that no face can
// show one organization's executions to another, and ids reveal nothing.
type Scope struct {
	OrganizationID string // the caller's organization
	// Operation is the API the caller uses: an execution started through
	// another is not the caller's, even in its organization.
	Operation string
	// ClientID is the OAuth client whose API the caller uses, where the API
	// is per client; empty for an organization's.
	ClientID string
}

// ScopeOf returns the scope e was started in, the only one that reaches it.
func ScopeOf(e usage.Execution) Scope {
	return Scope{OrganizationID: e.OrganizationID, Operation: e.Operation, ClientID: e.ClientID}
}

// Execution returns execution id of the caller's scope with its current
// status, or an error of kind usage.KindNotFound if it does not exist, has
// expired or is not the caller's.
func (s *Service) Execution(ctx context.Context, scope Scope, id string) (usage.Execution, error) {
	e, err := s.execution(ctx, id)
	if err == nil && ScopeOf(e) != scope {
		return usage.Execution{}, usage.ErrNotFound
	}
	return e, err
}

// execution returns execution id, whoever started it.
func (s *Service) execution(ctx context.Context, id string) (usage.Execution, error) {
	e, err := s.cfg.Executions.Execution(ctx, id)
	if err != nil {
		return e, err
	}
	if !e.Expires.After(s.cfg.Now()) {
		return usage.Execution{}, usage.ErrNotFound
	}
	if !e.Status.Done() {
		s.mu.Lock()
		if j := s.active[id]; j != nil && j.running {
			e.Status = usage.ExecutionRunning
		}
		s.mu.Unlock()
	}
	return e, nil
}

// Rows returns up to limit rows of a complete execution of the caller's
// scope, from offset. The rows may be shared with other callers: they must
// not be changed.
func (s *Service) Rows(ctx context.Context, scope Scope, id string, offset, limit int) ([]usage.Row, error) {
	if _, err := s.Execution(ctx, scope, id); err != nil {
		return nil, err
	}
	if offset >= 0 && limit >= 0 {
		if rows, ok := s.recent.get(id, offset, limit); ok {
			return rows, nil
		}
	}
	return s.cfg.Executions.ExecutionRows(ctx, id, offset, limit)
}

// Wait blocks until execution id of the caller's scope reaches a final
// status or ctx is done, and returns it as Execution does. Waiting on a
// final or unknown execution returns at once.
func (s *Service) Wait(ctx context.Context, scope Scope, id string) (usage.Execution, error) {
	if _, err := s.Execution(ctx, scope, id); err != nil {
		return usage.Execution{}, err
	}
	s.mu.Lock()
	j := s.active[id]
	s.mu.Unlock()
	if j != nil {
		select {
		case <-j.done:
		case <-ctx.Done():
		}
	}
	return s.Execution(context.WithoutCancel(ctx), scope, id)
}

// Cancel stops execution id of the caller's scope if it has not finished
// and records it as Cancelled; a final execution is returned unchanged.
func (s *Service) Cancel(ctx context.Context, scope Scope, id string) (usage.Execution, error) {
	e, err := s.Execution(ctx, scope, id)
	if err != nil || e.Status.Done() {
		return e, err
	}
	s.mu.Lock()
	j := s.active[id]
	if j == nil || j.cancelled {
		s.mu.Unlock()
		return s.execution(ctx, id)
	}
	j.cancelled = true
	if j.stop != nil {
		j.stop()
	}
	s.mu.Unlock()
	e.Status = usage.ExecutionCancelled
	e.Finished = s.cfg.Now().UTC()
	if err := s.cfg.Executions.PutExecution(ctx, e); err != nil {
		return e, err
	}
	s.finish(id, j)
	return e, nil
}

// finish forgets j and wakes its waiters, once.
func (s *Service) finish(id string, j *job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active[id] == j {
		delete(s.active, id)
		s.usageOf(j.org).pending--
		close(j.done)
	}
}

// work answers queued executions until the service closes.
func (s *Service) work() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		for s.queue.len() == 0 && !s.closed {
			s.cond.Wait()
		}
		if s.closed {
			s.mu.Unlock()
			return
		}
		id, _ := s.queue.pop()
		j := s.active[id]
		if j == nil || j.cancelled {
			s.mu.Unlock()
			continue
		}
		ctx, stop := context.WithCancel(s.ctx)
		j.running, j.stop = true, stop
		s.mu.Unlock()

		s.run(ctx, id, j)
		stop()
	}
}

// run answers one execution and stores its outcome, unless it was
// cancelled or the service is closing.
func (s *Service) run(ctx context.Context, id string, j *job) {
	e, err := s.cfg.Executions.Execution(ctx, id)
	if err != nil {
		if s.ctx.Err() == nil {
			s.log.Error("reading a queued query execution", "executionId", id, "err", err)
			s.finish(id, j)
		}
		return
	}
	rows, qerr := s.query(ctx, e.Query)
	s.mu.Lock()
	cancelled := j.cancelled
	s.mu.Unlock()
	if cancelled || s.ctx.Err() != nil {
		return // Cancel recorded it, or the next start resumes it
	}
	e.Finished = s.cfg.Now().UTC()
	if qerr != nil {
		e.Status = usage.ExecutionFailed
		e.Error = clientError(qerr)
		if usage.KindOf(qerr) == usage.KindInternal {
			s.log.Error("query execution failed", "executionId", id, "err", qerr)
		}
		rows = nil
	} else {
		rows = Arrange(rows, e.Sort, e.Limit, &e.Truncated)
		e.Status = usage.ExecutionComplete
		e.RowCount = len(rows)
		e.ResultBytes = ResultBytes(rows)
		s.mu.Lock()
		lerr := s.reserveResult(e.OrganizationID, id, e.Expires, e.ResultBytes, e.Finished)
		s.mu.Unlock()
		if lerr != nil {
			e.Status, e.Error = usage.ExecutionFailed, lerr
			e.RowCount, e.ResultBytes, e.Truncated, rows = 0, 0, false, nil
		}
	}
	if err := s.cfg.Executions.FinishExecution(context.WithoutCancel(ctx), e, rows); err != nil {
		// The record stays queued; the next start answers it again.
		s.log.Error("storing a query execution's result", "executionId", id, "err", err)
		s.mu.Lock()
		s.usageOf(e.OrganizationID).store(id, e.Expires, 0)
		s.mu.Unlock()
		return
	}
	if e.Status == usage.ExecutionComplete {
		s.recent.put(id, rows, e.ResultBytes)
	}
	s.finish(id, j)
}

// clientError is what the owner of a failed execution is told.
func clientError(err error) *usage.Error {
	var ue *usage.Error
	if errors.As(err, &ue) && ue.Kind != usage.KindInternal {
		return &usage.Error{Kind: ue.Kind, Field: ue.Field, Message: ue.Message}
	}
	return &usage.Error{Kind: usage.KindInternal, Message: "the query failed because of an internal error"}
}

// Arrange sorts rows by keys (ties keep their order) and keeps the first
// limit of them (0: all), setting *truncated when rows were dropped. Unknown
// fields sort as equal.
func Arrange(rows []usage.Row, keys []usage.SortKey, limit int, truncated *bool) []usage.Row {
	if len(keys) > 0 {
		slices.SortStableFunc(rows, func(a, b usage.Row) int {
			for _, k := range keys {
				c := compareField(&a, &b, k.Field)
				if k.Desc {
					c = -c
				}
				if c != 0 {
					return c
				}
			}
			return 0
		})
	}
	if limit > 0 && len(rows) > limit {
		rows = rows[:limit]
		*truncated = true
	}
	return rows
}

// compareField orders two rows by one sortable field.
func compareField(a, b *usage.Row, field string) int {
	switch field {
	case "Date":
		return a.Date.Compare(b.Date)
	case "ClientName":
		return cmp.Compare(a.ClientName, b.ClientName)
	}
	if d, err := usage.ParseDimension(field); err == nil {
		return cmp.Compare(a.Dim(d), b.Dim(d))
	}
	if m, err := usage.ParseMetric(field); err == nil {
		return cmp.Compare(a.Get(m), b.Get(m))
	}
	return 0
}

// sweep deletes expired executions every sweepEvery until the service closes.
func (s *Service) sweep() {
	defer s.wg.Done()
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		if err := s.Expire(s.ctx); err != nil && s.ctx.Err() == nil {
			s.log.Error("expiring query executions", "err", err)
		}
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Expire deletes every execution past its expiry time, with its rows.
func (s *Service) Expire(ctx context.Context) error {
	now := s.cfg.Now()
	var expired []usage.Execution
	err := s.cfg.Executions.ExecutionsBy(ctx, func(e usage.Execution) bool {
		if !e.Expires.After(now) {
			expired = append(expired, e)
		}
		return true
	})
	if err != nil {
		return err
	}
	for _, e := range expired {
		id := e.ID
		// An execution nobody can read any more need not finish.
		s.mu.Lock()
		j := s.active[id]
		if j != nil {
			j.cancelled = true
			if j.stop != nil {
				j.stop()
			}
		}
		s.mu.Unlock()
		if j != nil {
			s.finish(id, j)
		}
		if err := s.cfg.Executions.DeleteExecution(ctx, id); err != nil {
			return err
		}
		s.mu.Lock()
		s.forget(e.OrganizationID, id)
		s.mu.Unlock()
	}
	return nil
}
