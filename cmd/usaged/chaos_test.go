package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/usaged/usaged/internal/apptest"
	"github.com/usaged/usaged/internal/clustertest"
)

// The chaos tests run usaged as a cluster on servers of their own (started
// by deploy/local-cluster.sh on addresses no other test uses, since they
// kill them), kill and pause its processes at every step of the ingest
// protocol while clients send overlapping batches with retries to random
// nodes, and compare every count with the clients' own oracle.

// testCluster is a cluster's servers, started for one test.
type testCluster struct {
	dir, host string
	env       map[string]string
}

// startTestCluster starts the servers on 127.0.0.(host+1…host+5), or skips
// (fails, with USAGED_REQUIRE_CLUSTER=1) when they are not installed.
func startTestCluster(t *testing.T, host int) *testCluster {
	t.Helper()
	for _, bin := range []string{"clickhouse-server", "redis-server", "java"} {
		if _, err := exec.LookPath(bin); err != nil {
			msg := bin + " is not installed (Debian: clickhouse-server, redis-server, zookeeper, postgresql)"
			if clustertest.Required() {
				t.Fatal(msg)
			}
			t.Skip("SKIPPED, " + t.Name() + " is NOT tested: " + msg + "; set USAGED_REQUIRE_CLUSTER=1 to make this a failure")
		}
	}
	dir, err := os.MkdirTemp("", "usaged-chaos-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755) // PostgreSQL runs as its own user, which must reach its directory
	c := &testCluster{dir: dir, host: strconv.Itoa(host), env: map[string]string{}}
	t.Cleanup(func() { // also what a failed start started
		if t.Failed() && os.Getenv("USAGED_KEEP_FAILED_CLUSTER") == "1" {
			t.Logf("the cluster's servers are left running in %s (USAGED_KEEP_FAILED_CLUSTER=1)", c.dir)
			return
		}
		c.script(t, "stop")
		os.RemoveAll(dir)
	})
	out := c.script(t, "start")
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "="); ok {
			c.env[k] = v
		}
	}
	return c
}

// script runs deploy/local-cluster.sh with args on the cluster's directory.
func (c *testCluster) script(t *testing.T, args ...string) string {
	t.Helper()
	args = append(args, c.dir)
	cmd := exec.Command("../../deploy/local-cluster.sh", args...)
	cmd.Env = append(os.Environ(), "USAGED_CLUSTER_HOST="+c.host)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("local-cluster.sh %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// chaosCluster is three usaged nodes on a testCluster.
type chaosCluster struct {
	t       *testing.T
	servers *testCluster
	token   string
	args    []string         // every node's flags
	perNode map[int][]string // flags of one node, after args
	mu      sync.Mutex
	nodes   []*apptest.Server
}

const chaosLease = 2 * time.Second

func newChaosCluster(t *testing.T, servers *testCluster, db string, extra ...string) *chaosCluster {
	c := &chaosCluster{t: t, servers: servers, token: "chaos-test-admin-token-0123456789", perNode: map[int][]string{}}
	key := filepath.Join(t.TempDir(), "signing-key")
	c.args = append([]string{
		"--store", servers.env["USAGED_CLICKHOUSE"][:strings.LastIndex(servers.env["USAGED_CLICKHOUSE"], "/")+1] + db,
		"--metadata", servers.env["USAGED_POSTGRES"],
		"--keeper", servers.env["USAGED_ZOOKEEPER"],
		"--claims", servers.env["USAGED_REDIS"],
		"--lease", chaosLease.String(),
		"--signing-key-file", key,
		"--admin-token", c.token,
		"--log-format", "json", "--log-level", "warn",
		"--ingest-rate-limit", "-1", "--rate-limit", "-1",
	}, extra...)
	c.nodes = make([]*apptest.Server, 3)
	for i := range c.nodes {
		c.start(i)
	}
	return c
}

// start (re)starts node i with the common flags and extra ones.
func (c *chaosCluster) start(i int, extra ...string) {
	c.t.Helper()
	s := apptest.Start(c.t, apptest.Options{
		Args: slices.Concat([]string{"--data", filepath.Join(c.servers.dir, "node"+strconv.Itoa(i))}, c.args, c.perNode[i], extra),
		Wait: time.Minute,
	})
	c.mu.Lock()
	c.nodes[i] = s
	c.mu.Unlock()
}

func (c *chaosCluster) node(i int) *apptest.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// chaosEvent is event i of the pool: its line and the group it counts in.
func chaosEvent(org string, base time.Time, i int) (line []byte, hour int64, client string) {
	client = "c" + strconv.Itoa(i%7)
	at := base.Add(-time.Duration(i%(6*60)) * time.Minute)
	line = fmt.Appendf(nil, `{"id":"ev-%d","time":%q,"organizationId":%q,"clientId":%q,"clientName":"Client %d","templateUri":"api/v2/items/{id}","httpMethod":"GET","status":%d}`+"\n",
		i, at.Format(time.RFC3339Nano), org, client, i%7, statusOf(i))
	return line, at.Truncate(time.Hour).Unix(), client
}

// chaosRun is the clients' side of a run: which events they sent and got
// acknowledged.
type chaosRun struct {
	org  string
	base time.Time
	pool int

	mu    sync.Mutex
	acked map[int]bool // events of acknowledged batches
	sent  int          // batches
	tries int          // requests, retries included
	odd   []string     // answers that did not account for every event
}

// client sends overlapping batches of the pool to random nodes until stop
// is closed, retrying each batch (on any node) until it is acknowledged.
func (r *chaosRun) client(c *chaosCluster, rng *rand.Rand, stop <-chan struct{}, hc *http.Client) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		start := rng.IntN(r.pool - 300)
		ids := make([]int, 0, 300)
		var body bytes.Buffer
		for i := start; i < start+300; i++ {
			if rng.IntN(4) == 0 {
				continue // batches overlap, but not exactly
			}
			line, _, _ := chaosEvent(r.org, r.base, i)
			body.Write(line)
			ids = append(ids, i)
		}
		for attempt := 0; ; attempt++ {
			n := c.node(rng.IntN(3))
			req, _ := http.NewRequest("POST", n.URL+"/api/v2/usage/events", bytes.NewReader(body.Bytes()))
			req.Header.Set("Authorization", "Bearer "+c.token)
			req.Header.Set("Content-Type", "application/x-ndjson")
			resp, err := hc.Do(req)
			r.mu.Lock()
			r.tries++
			r.mu.Unlock()
			if err == nil {
				var res ingestResult
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					if json.Unmarshal(body, &res) != nil || res.Accepted+res.Duplicates != len(ids) {
						r.mu.Lock()
						r.odd = append(r.odd, fmt.Sprintf("%d events answered %s", len(ids), body))
						r.mu.Unlock()
					}
					break
				}
			}
			time.Sleep(time.Duration(50+rng.IntN(250)) * time.Millisecond)
		}
		r.mu.Lock()
		r.sent++
		for _, i := range ids {
			r.acked[i] = true
		}
		r.mu.Unlock()
	}
}

// oracle counts the acknowledged events by (hour, client).
func (r *chaosRun) oracle() map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	want := map[string]int64{}
	for i := range r.acked {
		_, hour, client := chaosEvent(r.org, r.base, i)
		want[fmt.Sprintf("%d/%s", hour, client)]++
	}
	return want
}

// countsByAPI asks node base for the organization's requests by hour and
// client.
func countsByAPI(base, token, org string, from, to time.Time) (map[string]int64, error) {
	q := fmt.Sprintf(`{"organizationId":%q,"interval":"%s/%s","granularity":"Hour","groupBy":["OAuthClientId"]}`,
		org, from.Format(time.RFC3339), to.Format(time.RFC3339))
	code, body, err := post(base, token, "/api/v2/usage/aggregate", "application/json", []byte(q))
	if err != nil || code != 200 {
		return nil, fmt.Errorf("aggregate: %d %s %v", code, body, err)
	}
	var res struct {
		Results []struct {
			Date     time.Time
			ClientID string
			Requests int64
		}
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return nil, err
	}
	got := map[string]int64{}
	for _, r := range res.Results {
		got[fmt.Sprintf("%d/%s", r.Date.Unix(), r.ClientID)] += r.Requests
	}
	return got, nil
}

// countsOnReplica reads the counts of database db on one ClickHouse replica
// directly, over its HTTP interface.
func countsOnReplica(httpBase, db, org string) (map[string]int64, error) {
	q := fmt.Sprintf("SELECT toUnixTimestamp(hour), client_id, sum(requests) FROM %s.event_counts WHERE org_id = '%s' GROUP BY hour, client_id FORMAT TabSeparated", db, org)
	resp, err := http.Get(httpBase + "/?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("replica %s: %d %s", httpBase, resp.StatusCode, body)
	}
	got := map[string]int64{}
	for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			continue
		}
		n, _ := strconv.ParseInt(f[2], 10, 64)
		got[f[0]+"/"+f[1]] += n
	}
	return got, nil
}

// diff describes how got differs from want: events missing and doubled.
func diff(want, got map[string]int64) (missing, extra int64, detail []string) {
	keys := map[string]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	for k := range keys {
		switch d := got[k] - want[k]; {
		case d < 0:
			missing -= d
			detail = append(detail, fmt.Sprintf("%s: %d, want %d", k, got[k], want[k]))
		case d > 0:
			extra += d
			detail = append(detail, fmt.Sprintf("%s: %d, want %d", k, got[k], want[k]))
		}
	}
	slices.Sort(detail)
	return missing, extra, detail
}

// settle waits until every node and both replicas count what the oracle
// does, or returns the last difference after a minute (recovery of a batch
// whose owner died after its commit takes up to a lease and a sweep).
func (r *chaosRun) settle(c *chaosCluster, db string) (missing, extra int64, detail []string) {
	want := r.oracle()
	from, to := r.base.Add(-7*time.Hour).Truncate(time.Hour), r.base.Add(time.Hour).Truncate(time.Hour)
	deadline := time.Now().Add(time.Minute)
	for {
		missing, extra, detail = 0, 0, nil
		// compare adds to the differences what one node or replica counts.
		compare := func(where string, got map[string]int64, err error) {
			if err != nil {
				detail, missing = append(detail, fmt.Sprintf("%s: %v", where, err)), -1
				return
			}
			m, e, d := diff(want, got)
			missing, extra = max(missing, m), max(extra, e)
			for _, s := range d {
				detail = append(detail, where+" "+s)
			}
		}
		for i := range 3 {
			got, err := countsByAPI(c.node(i).URL, c.token, r.org, from, to)
			compare(fmt.Sprintf("node %d", i), got, err)
		}
		for _, h := range strings.Split(c.servers.env["USAGED_CLICKHOUSE_HTTP"], ",") {
			got, err := countsOnReplica(h, db, r.org)
			compare("replica "+h, got, err)
		}
		if (missing == 0 && extra == 0) || time.Now().After(deadline) {
			return missing, extra, detail
		}
		time.Sleep(time.Second)
	}
}

// runChaos runs clients against c while faults runs, then lets the
// clients finish their batches and returns the run.
func runChaos(t *testing.T, c *chaosCluster, faults func()) *chaosRun {
	code, body, err := post(c.node(0).URL, c.token, "/api/v2/admin/organizations", "application/json", []byte(`{"name":"chaos"}`))
	if err != nil || code != http.StatusCreated {
		t.Fatalf("create organization: %d %s %v", code, body, err)
	}
	var org struct{ ID string }
	json.Unmarshal(body, &org)
	r := &chaosRun{org: org.ID, base: time.Now().UTC(), pool: 30_000, acked: map[int]bool{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	hc := &http.Client{Timeout: 3 * chaosLease}
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.client(c, rand.New(rand.NewPCG(uint64(i), 42)), stop, hc)
		}()
	}
	faults()
	close(stop)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		t.Fatal("the clients' batches were not all acknowledged within 3 minutes of the last fault")
	}
	return r
}

// TestChaosExactlyOnce is the cluster's exactly-once test with real
// processes: three nodes, six clients sending overlapping batches with
// retries to random nodes, and every fault of the failure table in
// docs/scale-out.md in turn.
func TestChaosExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster of real processes and kills them")
	}
	servers := startTestCluster(t, 30)
	// Node 2 reaches Redis and ClickHouse replica 1 through links that
	// the test makes faulty.
	store := servers.env["USAGED_CLICKHOUSE"]
	hosts := strings.Split(strings.TrimSuffix(strings.TrimPrefix(store, "clickhouse://"), "/usaged"), ",")
	links := []*faultyLink{newFaultyLink(t, strings.TrimPrefix(servers.env["USAGED_REDIS"], "redis://")), newFaultyLink(t, hosts[0])}
	c := newChaosCluster(t, servers, "chaos")
	c.perNode[2] = []string{"--claims", "redis://" + links[0].addr(),
		"--store", "clickhouse://" + links[1].addr() + "," + hosts[1] + "/chaos"}
	c.node(2).Kill()
	c.start(2)
	pause := func(d time.Duration) { time.Sleep(d) }
	var log []string
	step := func(format string, args ...any) {
		log = append(log, fmt.Sprintf(format, args...))
		t.Logf(format, args...)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	r := runChaos(t, c, func() {
		pause(2 * time.Second)
		// A node dies after each step of the protocol: it runs with a
		// failpoint until a batch reaches the step and it exits.
		for _, fp := range []string{"after-claim", "after-journal", "after-commit", "after-counts", "after-published", "after-settle"} {
			i := rng.IntN(3)
			c.node(i).Kill()
			c.start(i, "--test-failpoint", fp)
			select {
			case <-c.node(i).Exited():
				step("node %d exited at failpoint %s", i, fp)
			case <-time.After(20 * time.Second):
				t.Errorf("node %d with --test-failpoint %s did not reach it in 20 s", i, fp)
				c.node(i).Kill()
			}
			c.start(i)
			pause(time.Second)
		}
		// SIGKILL at random moments.
		for range 3 {
			i := rng.IntN(3)
			pause(time.Duration(200+rng.IntN(1500)) * time.Millisecond)
			c.node(i).Kill()
			step("node %d killed", i)
			c.start(i)
		}
		// A zombie: paused longer than the lease, mid-batch, then resumed.
		for range 2 {
			i := rng.IntN(3)
			c.node(i).Cmd.Process.Signal(syscall.SIGSTOP)
			pause(2*chaosLease + time.Second)
			c.node(i).Cmd.Process.Signal(syscall.SIGCONT)
			step("node %d paused for %s, resumed", i, 2*chaosLease+time.Second)
			pause(time.Second)
		}
		// A ClickHouse replica is killed; with quorum 2 of 2, ingest
		// fails until it is back.
		servers.script(t, "kill", "clickhouse2")
		step("ClickHouse replica 2 killed")
		pause(3 * time.Second)
		servers.script(t, "start-one", "clickhouse2")
		step("ClickHouse replica 2 restarted")
		pause(2 * time.Second)
		// The claim store restarts (its log is fsynced on every write).
		servers.script(t, "kill", "redis")
		step("Redis killed")
		pause(time.Second)
		servers.script(t, "start-one", "redis")
		step("Redis restarted")
		pause(2 * time.Second)
		// Network faults between node 2 and Redis and ClickHouse replica
		// 1: slow, then cut off past the lease, then every connection
		// reset.
		for _, f := range []struct {
			mode int32
			what string
		}{{linkSlow, "slow (100–200 ms a chunk)"}, {linkCut, "cut off"}} {
			for _, l := range links {
				l.mode.Store(f.mode)
			}
			step("the links of node 2 to Redis and ClickHouse replica 1 are %s", f.what)
			pause(2*chaosLease + time.Second)
		}
		for _, l := range links {
			l.mode.Store(linkHealthy)
			l.reset()
		}
		step("the links of node 2 are healthy again, their connections reset")
		// A zombie that stalls after writing its journal, past its lease
		// (the negative control's fault, here with the keeper deciding).
		c.node(1).Kill()
		c.start(1, "--test-failpoint", "stall-after-journal")
		pause(4 * chaosLease)
		c.node(1).Kill()
		c.start(1)
		step("node 1 stalled after its journal for %s, then restarted", 4*chaosLease)
		pause(2 * time.Second)
	})
	missing, extra, detail := r.settle(c, "chaos")
	t.Logf("%d batches acknowledged in %d requests, %d distinct events", r.sent, r.tries, len(r.acked))
	if len(r.odd) > 0 {
		t.Errorf("%d acknowledgements did not account for every event, the first: %s", len(r.odd), r.odd[0])
	}
	if missing != 0 || extra != 0 {
		t.Fatalf("after the faults %v the counts differ from the oracle: %d events missing, %d counted twice:\n%s",
			log, missing, extra, strings.Join(first(detail, 40), "\n"))
	}
	// Every acknowledged event, sent again, is a duplicate on every node.
	var all bytes.Buffer
	for i := range r.acked {
		line, _, _ := chaosEvent(r.org, r.base, i)
		all.Write(line)
		if all.Len() > 4<<20 {
			break
		}
	}
	for i := range 3 {
		code, body, err := post(c.node(i).URL, c.token, "/api/v2/usage/events", "application/x-ndjson", all.Bytes())
		var res ingestResult
		json.Unmarshal(body, &res)
		if err != nil || code != 200 || res.Accepted != 0 {
			t.Fatalf("node %d: resending acknowledged events: %d %s %v", i, code, body, err)
		}
	}
}

// TestChaosNegativeControl runs the zombie fault with the unsafe claim
// takeover: expired claims are taken over without the keeper's decision.
// The oracle must catch the double counting that follows: if it did not,
// TestChaosExactlyOnce would prove nothing about the keeper's part.
func TestChaosNegativeControl(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster of real processes and kills them")
	}
	servers := startTestCluster(t, 40)
	c := newChaosCluster(t, servers, "chaosunsafe", "--test-unsafe-claims")
	r := runChaos(t, c, func() {
		// Node 0 stalls after writing its journal, past its lease: its
		// clients time out and retry elsewhere, where the claims are taken
		// over; then it resumes and commits.
		for range 3 {
			c.node(0).Kill()
			c.start(0, "--test-failpoint", "stall-after-journal")
			time.Sleep(4 * chaosLease)
		}
		c.node(0).Kill()
		c.start(0)
		time.Sleep(2 * time.Second)
	})
	_, extra, _ := r.settle(c, "chaosunsafe")
	if extra == 0 {
		t.Fatal("with claims taken over without the keeper, no event was counted twice: the oracle cannot tell an unsafe protocol from a safe one")
	}
	t.Logf("the unsafe takeover counted %d events twice, as expected", extra)
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

// faultyLink is a TCP proxy between a node and a server that can delay,
// cut off and reset the connections through it: the network faults
// between one node and ClickHouse or Redis. (tc netem would do this in the
// kernel; where it is missing, this does it in user space, on real
// connections.)
type faultyLink struct {
	ln     net.Listener
	target string
	mode   atomic.Int32 // linkHealthy, linkSlow, linkCut
	mu     sync.Mutex
	conns  []net.Conn
}

const (
	linkHealthy = iota
	linkSlow    // every chunk waits 100–200 ms each way
	linkCut     // nothing passes; connections hang, as behind a partition
)

func newFaultyLink(t *testing.T, target string) *faultyLink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &faultyLink{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); l.reset() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			l.mu.Lock()
			l.conns = append(l.conns, c, up)
			l.mu.Unlock()
			go l.pipe(c, up)
			go l.pipe(up, c)
		}
	}()
	return l
}

func (l *faultyLink) addr() string { return l.ln.Addr().String() }

func (l *faultyLink) pipe(from, to net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		for n > 0 && l.mode.Load() == linkCut {
			time.Sleep(50 * time.Millisecond)
		}
		if n > 0 && l.mode.Load() == linkSlow {
			time.Sleep(time.Duration(100+rand.IntN(100)) * time.Millisecond)
		}
		if n > 0 {
			if _, werr := to.Write(buf[:n]); werr != nil {
				from.Close()
				return
			}
		}
		if err != nil {
			to.Close()
			return
		}
	}
}

// reset closes every connection through the link, as a dropped route does.
func (l *faultyLink) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}
