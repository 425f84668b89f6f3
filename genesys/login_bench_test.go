package genesys_test

import (
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/genesys"
	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/query"
	"github.com/usaged/usaged/store/pebble"
)

// BenchmarkTokenUnderFlood measures a normal client's POST /oauth/token
// while floodAddrs other addresses send logins with made-up ids and wrong
// secrets as fast as they are answered: the latency a client that logs in
// again sees (it logged in once before the flood), and that of a client
// logging in for the first time. Secrets are hashed at bcrypt's default
// cost, as in production. Run with -benchtime=Nx: each iteration is one
// login of the normal client.
func BenchmarkTokenUnderFlood(b *testing.B) {
	for _, flood := range []int{0, 40} {
		b.Run(fmt.Sprintf("flood=%d", flood), func(b *testing.B) { benchTokenUnderFlood(b, flood) })
	}
}

func benchTokenUnderFlood(b *testing.B, floodAddrs int) {
	quiet := slog.New(slog.DiscardHandler)
	db, err := pebble.Open(pebble.Config{Dir: b.TempDir(), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	as, err := auth.New(b.Context(), auth.Config{Registry: db, AdminToken: adminToken,
		SigningKey: []byte(strings.Repeat("k", 32)), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	p, err := ingest.New(ingest.Config{Store: db, KnownOrganization: as.KnownOrganization, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	qs, err := query.New(b.Context(), query.Config{Events: db, Executions: db, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer qs.Close()
	s, err := genesys.New(genesys.Config{Auth: as, Ingest: p, Events: db, Queries: qs, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	org, err := as.CreateOrganization(b.Context(), "Bench")
	if err != nil {
		b.Fatal(err)
	}
	newClient := func() (string, string) {
		c, secret, err := as.CreateClient(b.Context(), org.ID, auth.ClientSpec{Name: "CRM"})
		if err != nil {
			b.Fatal(err)
		}
		return c.ID, secret
	}
	id, secret := newClient()
	// Clients logging in for the first time, one per iteration at most.
	var fresh [][2]string
	for range 20 {
		fid, fsecret := newClient()
		fresh = append(fresh, [2]string{fid, fsecret})
	}

	client := func(ip string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4}, Timeout: time.Minute}
	}
	login := func(hc *http.Client, id, secret string) int {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
		resp, err := hc.Post(srv.URL+"/oauth/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
		if err != nil {
			return 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	normal := client("127.0.0.2")
	if st := login(normal, id, secret); st != 200 {
		b.Fatalf("first login: %d", st)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var floodSent atomic.Int64
	for i := range floodAddrs {
		hc := client(fmt.Sprintf("127.0.1.%d", i+1))
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				login(hc, rand.Text(), "wrong")
				floodSent.Add(1)
			}
		})
	}
	if floodAddrs > 0 {
		time.Sleep(2 * time.Second) // let the flood fill the server
	}

	var again, first []time.Duration
	statuses := map[int]int{}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		t0 := time.Now()
		st := login(normal, id, secret)
		again = append(again, time.Since(t0))
		statuses[st]++
		if i < len(fresh) {
			t0 = time.Now()
			st = login(normal, fresh[i][0], fresh[i][1])
			first = append(first, time.Since(t0))
			statuses[1000+st]++
		}
		i++
		time.Sleep(50 * time.Millisecond) // a normal client, not a flood
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
	pct := func(ds []time.Duration, q float64) float64 {
		slices.Sort(ds)
		return float64(ds[min(len(ds)-1, int(q*float64(len(ds))))]) / 1e6
	}
	b.ReportMetric(pct(again, 0.5), "again-p50-ms")
	b.ReportMetric(pct(again, 0.9), "again-p90-ms")
	b.ReportMetric(pct(first, 0.5), "first-p50-ms")
	b.ReportMetric(pct(first, 0.9), "first-p90-ms")
	b.ReportMetric(float64(floodSent.Load()), "flood-requests")
	b.Logf("statuses (1000+: first logins): %v", statuses)
}
