package usage

import "time"

// MaxEventIDLen is the longest event id accepted, in bytes.
const MaxEventIDLen = 128

// MaxTemplateLen is the longest route template, in bytes, an event may
// carry; whatever produces templates (the metering proxy's route tables)
// refuses longer ones where they can still be fixed.
const MaxTemplateLen = 1024

// Event is one API request made by an OAuth client of an organization. Its ID is
// the idempotency key: an event is counted once per organization however often
// it is sent within the dedupe window.
type Event struct {
	ID             string
	Time           time.Time
	OrganizationID string
	ClientID       string
	ClientName     string
	UserID         string // empty when the request acted for no user
	TemplateURI    string // the route template, without a leading slash
	HTTPMethod     string // upper case
	Status         int    // HTTP status, 100–599
	Platform       string // optional free-form origin, e.g. "PureCloud"

	// Optional measurements, 0 when absent: kept with the raw event and
	// summed into the group's Measures (see Measures.AddEvent, which takes
	// a 0 ms duration for none).
	DurationMs    int64
	RequestBytes  int64
	ResponseBytes int64
}

// The largest measurements an event may carry: a day, and a tebibyte. They
// bound what one event adds to a group's sums, and no API request comes
// near them; ingest refuses larger ones.
const (
	MaxDurationMs = 24 * 60 * 60 * 1000
	MaxBytes      = 1 << 40
)

// ClampMeasures brings e's measurements within 0 and their maximums. The
// metering proxy, middleware and log import measure requests that may run
// longer than a day (a stream held open), and such a request is still one
// request to count.
func (e *Event) ClampMeasures() {
	e.DurationMs = min(max(e.DurationMs, 0), MaxDurationMs)
	e.RequestBytes = min(max(e.RequestBytes, 0), MaxBytes)
	e.ResponseBytes = min(max(e.ResponseBytes, 0), MaxBytes)
}

// Counts are the metrics kept for a group of events.
type Counts struct {
	Requests  int64 // every event, 1xx included
	Status200 int64 // 2xx
	Status300 int64 // 3xx
	Status400 int64 // 4xx, 429 included
	Status500 int64 // 5xx
	Status429 int64 // 429 only, a subset of Status400
}

// CountsFor returns the counts one event with the given status contributes.
func CountsFor(status int) Counts {
	c := Counts{Requests: 1}
	switch {
	case status >= 200 && status < 300:
		c.Status200 = 1
	case status >= 300 && status < 400:
		c.Status300 = 1
	case status >= 400 && status < 500:
		c.Status400 = 1
		if status == 429 {
			c.Status429 = 1
		}
	case status >= 500 && status < 600:
		c.Status500 = 1
	}
	return c
}

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.Requests += o.Requests
	c.Status200 += o.Status200
	c.Status300 += o.Status300
	c.Status400 += o.Status400
	c.Status500 += o.Status500
	c.Status429 += o.Status429
}

// IsZero reports whether no event was counted.
func (c Counts) IsZero() bool { return c == Counts{} }

// Get returns the value of metric m.
func (c Counts) Get(m Metric) int64 {
	switch m {
	case MetricRequests:
		return c.Requests
	case MetricStatus200:
		return c.Status200
	case MetricStatus300:
		return c.Status300
	case MetricStatus400:
		return c.Status400
	case MetricStatus500:
		return c.Status500
	case MetricStatus429:
		return c.Status429
	}
	return 0
}

// Outcome is what became of one event offered to a store.
type Outcome uint8

const (
	Accepted  Outcome = iota // recorded and counted
	Duplicate                // its id was already recorded for its organization within the window
)
