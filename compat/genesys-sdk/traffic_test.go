package genesyssdk

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mypurecloud/platform-client-sdk-go/v152/platformclientv2"
)

// wireEvent is one event as POST /api/v2/usage/events takes it.
type wireEvent struct {
	ID             string `json:"id"`
	Time           string `json:"time"`
	OrganizationID string `json:"organizationId,omitempty"`
	ClientID       string `json:"clientId"`
	ClientName     string `json:"clientName"`
	TemplateURI    string `json:"templateUri"`
	HTTPMethod     string `json:"httpMethod"`
	Status         int    `json:"status"`
	UserID         string `json:"userId,omitempty"`
}

// event is an ingested event as the tests count it: its template without
// the leading slash the server drops, and its UTC day.
type event struct {
	day        string // 2006-01-02
	clientID   string
	clientName string
	template   string
	method     string
	status     int
}

// apiClient is an OAuth client that appears in the events.
type apiClient struct{ id, name string }

// traffic is generated API-request events and the expected answers to them.
type traffic struct {
	days   []string // the UTC days with events, oldest first
	wire   []wireEvent
	events []event // one per wire event, in the same order
}

// Dimension values of the generated traffic. Some templates carry the
// leading slash that the server drops; the tests always expect it gone.
var (
	templates = []string{
		"api/v2/users/{userId}",
		"/api/v2/users/{userId}/presences/{sourceId}",
		"api/v2/analytics/conversations/details/query",
		"/api/v2/routing/queues",
		"api/v2/routing/queues/{queueId}/members",
		"api/v2/conversations/calls/{conversationId}",
		"/api/v2/groups",
		"api/v2/usage/query",
	}
	methods  = []weighted[string]{{"GET", 40}, {"POST", 25}, {"PUT", 15}, {"PATCH", 10}, {"DELETE", 10}}
	statuses = []weighted[int]{
		{200, 40}, {201, 8}, {204, 6}, {100, 2}, {101, 1}, {301, 3}, {304, 4},
		{400, 5}, {401, 3}, {404, 6}, {429, 8}, {500, 4}, {502, 2}, {503, 3},
	}
)

type weighted[T any] struct {
	v T
	w int
}

func pick[T any](r *rand.Rand, choices []weighted[T]) T {
	total := 0
	for _, c := range choices {
		total += c.w
	}
	n := r.IntN(total)
	for _, c := range choices {
		if n < c.w {
			return c.v
		}
		n -= c.w
	}
	panic("unreachable")
}

// generate makes n events of clients spread over the 5 UTC days ending
// with lastDay, never later than latest. Ids are idPrefix and a sequence
// number; orgID is set on every event when not empty. The same seed gives
// the same events for the same days.
func generate(seed uint64, n int, lastDay time.Time, latest time.Time, clients []apiClient, idPrefix, orgID string) *traffic {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	tr := &traffic{}
	const numDays = 5
	starts := make([]time.Time, numDays)
	for i := range starts {
		starts[i] = lastDay.AddDate(0, 0, i-numDays+1)
		tr.days = append(tr.days, starts[i].Format(time.DateOnly))
	}
	for i := range n {
		d := r.IntN(numDays)
		span := min(24*time.Hour, latest.Sub(starts[d]))
		at := starts[d].Add(time.Duration(r.Int64N(int64(span))))
		c := clients[r.IntN(len(clients))]
		tmpl := templates[r.IntN(len(templates))]
		method := pick(r, methods)
		status := pick(r, statuses)
		w := wireEvent{
			ID:             fmt.Sprintf("%s-%05d", idPrefix, i),
			Time:           at.Format(time.RFC3339Nano),
			OrganizationID: orgID,
			ClientID:       c.id,
			ClientName:     c.name,
			TemplateURI:    tmpl,
			// Methods are accepted in any case and reported in upper case.
			HTTPMethod: method,
			Status:     status,
		}
		if r.IntN(4) == 0 {
			w.HTTPMethod = strings.ToLower(method)
		}
		if r.IntN(3) == 0 {
			w.UserID = fmt.Sprintf("user-%02d", r.IntN(20))
		}
		tr.wire = append(tr.wire, w)
		tr.events = append(tr.events, event{
			day:        starts[d].Format(time.DateOnly),
			clientID:   c.id,
			clientName: c.name,
			template:   strings.TrimPrefix(tmpl, "/"),
			method:     method,
			status:     status,
		})
	}
	return tr
}

// counts are the metrics of one result row.
type counts struct {
	Requests, Status200, Status300, Status400, Status500, Status429 int
}

func (c *counts) add(status int) {
	c.Requests++
	switch {
	case status >= 200 && status < 300:
		c.Status200++
	case status >= 300 && status < 400:
		c.Status300++
	case status >= 400 && status < 500:
		c.Status400++
		if status == 429 {
			c.Status429++
		}
	case status >= 500:
		c.Status500++
	}
}

func (c counts) zero() bool { return c == counts{} }

// tally counts the events that keep accepts, per key.
func tally[K comparable](events []event, keep func(event) bool, key func(event) K) map[K]counts {
	out := map[K]counts{}
	for _, e := range events {
		if keep != nil && !keep(e) {
			continue
		}
		k := key(e)
		c := out[k]
		c.add(e.status)
		out[k] = c
	}
	return out
}

// countsOf reads the metrics of a row; every one must be present, zeros
// included.
func countsOf(row platformclientv2.Apiusagerow) (counts, error) {
	var c counts
	var missing []string
	for _, m := range []struct {
		name string
		v    *int
		dst  *int
	}{
		{"requests", row.Requests, &c.Requests},
		{"status200", row.Status200, &c.Status200},
		{"status300", row.Status300, &c.Status300},
		{"status400", row.Status400, &c.Status400},
		{"status500", row.Status500, &c.Status500},
		{"status429", row.Status429, &c.Status429},
	} {
		if m.v == nil {
			missing = append(missing, m.name)
			continue
		}
		*m.dst = *m.v
	}
	if missing != nil {
		return c, fmt.Errorf("metrics %s missing", strings.Join(missing, ", "))
	}
	return c, nil
}

// rowSet collects result rows by key and the problems found in them: rows
// whose metrics are missing, keys seen twice, and whatever the caller
// reports. A broken convention usually breaks every row; the problems are
// reported once, when the rows are checked, at most 20 of them.
type rowSet[K comparable] struct {
	t        *testing.T
	what     string
	got      map[K]counts
	problems []string
}

func newRowSet[K comparable](t *testing.T, what string) *rowSet[K] {
	return &rowSet[K]{t: t, what: what, got: map[K]counts{}}
}

// problemf records a problem with the rows.
func (s *rowSet[K]) problemf(format string, args ...any) {
	s.problems = append(s.problems, fmt.Sprintf(format, args...))
}

func (s *rowSet[K]) add(k K, row platformclientv2.Apiusagerow) {
	c, err := countsOf(row)
	if err != nil {
		s.problemf("row %+v: %v", k, err)
	}
	if _, dup := s.got[k]; dup {
		s.problemf("row %+v appears twice", k)
		return
	}
	s.got[k] = c
}

// check reports the problems found and compares the collected rows with
// want: every key with the same counts, none missing, none extra.
func (s *rowSet[K]) check(want map[K]counts) {
	s.t.Helper()
	if len(s.problems) > 0 {
		s.t.Errorf("%s: %s", s.what, summarize(s.problems))
	}
	diffCounts(s.t, s.what, want, s.got)
}

// day returns the UTC day of a row's date, which must be set, parsed by
// the SDK (it knows only the layout 2006-01-02T15:04:05.999999Z) and at
// midnight.
func (s *rowSet[K]) day(row platformclientv2.Apiusagerow) string {
	switch {
	case row.Date == nil:
		s.problemf("row without a date: %s", rowString(row))
		return ""
	case row.Date.IsZero():
		s.problemf("row whose date the SDK could not parse: %s", rowString(row))
		return ""
	case !row.Date.Equal(row.Date.Truncate(24 * time.Hour)):
		s.problemf("row date %v is not the start of a UTC day: %s", row.Date, rowString(row))
	}
	return row.Date.UTC().Format(time.DateOnly)
}

// template checks the convention of template URIs: no leading slash.
func (s *rowSet[K]) template(tmpl string) {
	if strings.HasPrefix(tmpl, "/") {
		s.problemf("templateUri %q has a leading slash", tmpl)
	}
}

// notGrouped checks that the named dimensions of row k are empty.
func (s *rowSet[K]) notGrouped(k K, row platformclientv2.Apiusagerow, dims ...string) {
	values := map[string]*string{
		"clientId": row.ClientId, "templateUri": row.TemplateUri, "httpMethod": row.HttpMethod,
		"userId": row.UserId, "organizationId": row.OrganizationId,
	}
	for _, d := range dims {
		if v := str(values[d]); v != "" {
			s.problemf("row %+v: %s is %q, want it empty as it is not grouped by", k, d, v)
		}
	}
}

func rowString(row platformclientv2.Apiusagerow) string {
	return fmt.Sprintf("{clientId:%q clientName:%q templateUri:%q httpMethod:%q}",
		str(row.ClientId), str(row.ClientName), str(row.TemplateUri), str(row.HttpMethod))
}

// diffCounts reports every difference between want and got, at most 20 of
// them, in a stable order.
func diffCounts[K comparable](t *testing.T, what string, want, got map[K]counts) {
	t.Helper()
	var problems []string
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("missing row %+v, want %+v", k, w))
		case g != w:
			problems = append(problems, fmt.Sprintf("row %+v: got %+v, want %+v", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			problems = append(problems, fmt.Sprintf("unexpected row %+v: %+v", k, g))
		}
	}
	if len(problems) == 0 {
		return
	}
	slices.Sort(problems)
	t.Errorf("%s: %d rows expected, %d received; %s", what, len(want), len(got), summarize(problems))
}

// summarize lists at most 20 problems, one per line.
func summarize(problems []string) string {
	n := len(problems)
	if n > 20 {
		problems = append(problems[:20:20], fmt.Sprintf("… and %d more", n-20))
	}
	return fmt.Sprintf("%d problem(s):\n  %s", n, strings.Join(problems, "\n  "))
}
