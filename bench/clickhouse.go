package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/usaged/usaged/ingest"
)

// ClickHouseReport is what Ingest measured of ClickHouse's own insert of the
// same bodies: INSERT … FORMAT JSONEachRow over HTTP into a plain MergeTree
// table, which neither deduplicates nor syncs to disk before it answers.
type ClickHouseReport struct {
	Server          string  `json:"server"` // without credentials
	Version         string  `json:"version"`
	Table           string  `json:"table"` // dropped at the end of the run
	Engine          string  `json:"engine"`
	Seconds         float64 `json:"seconds"`
	Batches         int     `json:"batches"`
	FailedBatches   int     `json:"failedBatches"`
	Events          int64   `json:"events"` // in the batches ClickHouse acknowledged
	Rows            uint64  `json:"rows"`   // counted in the table at the end
	EventsPerSecond float64 `json:"eventsPerSecond"`
	BatchP50Ms      float64 `json:"batchP50Ms"`
	BatchP99Ms      float64 `json:"batchP99Ms"`
	BatchMaxMs      float64 `json:"batchMaxMs"`
	// QueryCPUSeconds is the growth of system.events
	// OSCPUVirtualTimeMicroseconds over the ClickHouse rounds: the CPU of
	// the server's query threads, any other client's included, its
	// background merges not.
	QueryCPUSeconds float64 `json:"queryCpuSeconds"`
	// Ratio is usaged's events/s divided by ClickHouse's.
	Ratio      float64 `json:"ratio"`
	FirstError string  `json:"firstError,omitempty"`
}

// clickHouseEngine is the benchmark table's engine: a plain MergeTree, which
// neither deduplicates inserts nor syncs a new part to disk before it
// answers.
const clickHouseEngine = "MergeTree ORDER BY (organizationId, timestamp)"

// clickHouseColumns are the columns of the benchmark table, named as the
// NDJSON fields so that JSONEachRow fills each from its field; a field
// without a column fails the insert (input_format_skip_unknown_fields=0),
// and an omitted one is the column's zero, as usaged reads it. time is
// kept as the text sent, with its milliseconds, which DateTime would drop;
// timestamp, computed by ClickHouse from it, orders the table.
const clickHouseColumns = `id String,
	time String,
	timestamp DateTime MATERIALIZED parseDateTimeBestEffort(time),
	organizationId String,
	clientId String,
	clientName String,
	userId String,
	templateUri String,
	httpMethod String,
	status UInt16,
	platform String,
	durationMs Int64,
	requestBytes Int64,
	responseBytes Int64`

// clickHouse is a ClickHouse server's HTTP interface and the table a run
// inserts into.
type clickHouse struct {
	base      *url.URL // without credentials
	user      *url.Userinfo
	db, table string
	hc        *http.Client
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// newClickHouse returns the server at rawURL (http://[user[:password]@]host:port)
// and a fresh table name in database db ("default" when empty), for
// concurrency requests at a time.
func newClickHouse(rawURL, db string, concurrency int) (*clickHouse, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("the ClickHouse URL %q is not http[s]://[user[:password]@]host:port", rawURL)
	}
	if db == "" {
		db = "default"
	}
	if !identifier.MatchString(db) {
		return nil, fmt.Errorf("the ClickHouse database %q is not a plain identifier", db)
	}
	rnd := make([]byte, 4)
	rand.Read(rnd)
	c := &clickHouse{user: u.User, db: db, table: "usaged_bench_" + hex.EncodeToString(rnd)}
	u.User, u.Path, u.RawQuery, u.Fragment = nil, "", "", ""
	c.base = u
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = concurrency
	c.hc = &http.Client{Transport: tr, Timeout: 5 * time.Minute}
	return c, nil
}

// String is the server's URL without credentials.
func (c *clickHouse) String() string { return c.base.String() }

func (c *clickHouse) qualified() string { return c.db + "." + c.table }

func (c *clickHouse) createStatement() string {
	return "CREATE TABLE " + c.qualified() + " (\n\t" + clickHouseColumns + "\n) ENGINE = " + clickHouseEngine
}

// insertURL is where a JSONEachRow body is posted.
func (c *clickHouse) insertURL() string {
	q := url.Values{
		"query":                            {"INSERT INTO " + c.qualified() + " FORMAT JSONEachRow"},
		"input_format_skip_unknown_fields": {"0"},
	}
	return c.base.String() + "/?" + q.Encode()
}

// clickHouseError is a ClickHouse server's refusal.
type clickHouseError struct {
	status int
	text   string
}

func (e *clickHouseError) Error() string {
	return fmt.Sprintf("ClickHouse answered %d: %s", e.status, e.text)
}

// permanentClickHouse says whether a failed insert will fail again: a
// request ClickHouse refuses (4xx) rather than fails (5xx, e.g. too many
// parts) or does not answer.
func permanentClickHouse(err error) bool {
	var e *clickHouseError
	return errors.As(err, &e) && e.status < 500
}

// do posts body to url and returns the answer's body.
func (c *clickHouse) do(ctx context.Context, url string, body []byte, gzipped bool) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if c.user != nil {
		pw, _ := c.user.Password()
		req.SetBasicAuth(c.user.Username(), pw)
	}
	if gzipped {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &clickHouseError{status: resp.StatusCode, text: strings.TrimSpace(string(out))}
	}
	return out, nil
}

// query runs a statement and returns its answer, trimmed.
func (c *clickHouse) query(ctx context.Context, q string) (string, error) {
	out, err := c.do(ctx, c.base.String()+"/", []byte(q), false)
	return strings.TrimSpace(string(out)), err
}

// post returns a poster that inserts a body into the table.
func (c *clickHouse) post(gzipped bool) poster {
	u := c.insertURL()
	return func(ctx context.Context, body []byte, n int) (ingest.Result, error) {
		if _, err := c.do(ctx, u, body, gzipped); err != nil {
			return ingest.Result{}, err
		}
		return ingest.Result{Accepted: n}, nil
	}
}

func (c *clickHouse) create(ctx context.Context) error {
	if _, err := c.query(ctx, c.createStatement()); err != nil {
		return fmt.Errorf("creating the ClickHouse table %s at %s: %w", c.qualified(), c, err)
	}
	return nil
}

func (c *clickHouse) drop(ctx context.Context) error {
	_, err := c.query(ctx, "DROP TABLE IF EXISTS "+c.qualified())
	return err
}

func (c *clickHouse) count(ctx context.Context) (uint64, error) {
	s, err := c.query(ctx, "SELECT count() FROM "+c.qualified())
	if err != nil {
		return 0, fmt.Errorf("counting the rows of %s: %w", c.qualified(), err)
	}
	return strconv.ParseUint(s, 10, 64)
}

// cpu returns the CPU time of the server's query threads so far.
func (c *clickHouse) cpu(ctx context.Context) (time.Duration, error) {
	s, err := c.query(ctx, "SELECT value FROM system.events WHERE event = 'OSCPUVirtualTimeMicroseconds'")
	if err != nil {
		return 0, err
	}
	us, err := strconv.ParseInt(s, 10, 64)
	return time.Duration(us) * time.Microsecond, err
}

// ratio is a ÷ b, 0 when b is.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
