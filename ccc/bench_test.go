package ccc_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/usaged/usaged/ccc"
	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/store/pebble"
	"github.com/usaged/usaged/tenancy"
	"github.com/usaged/usaged/usage"
)

// BenchmarkServicesUsage measures GetServicesUsage over real HTTP: 10,000
// services of one partner, each with 30 days of activity (messages,
// features, user events and both gauges), pages of 100. Each iteration asks
// for a random page; p50 and p99 are reported beside ns/op.
//
//	go test -run XXX -bench ServicesUsage -benchtime 2000x ./ccc
func BenchmarkServicesUsage(b *testing.B) {
	const (
		services = 10_000
		days     = 30
		perDay   = 6 // events per service per day
		pageSize = 100
	)
	ctx := context.Background()
	db, reg, x := mustBenchRegistry(b)
	r := rand.New(rand.NewPCG(1, 2))
	now := benchNow
	start := now.AddDate(0, 0, -days)
	users := make([]usage.GUID, 20)
	for i := range users {
		users[i] = usage.NewGUID()
	}
	batch := make([]usage.Activity, 0, days*perDay)
	for i := range services {
		svc, err := reg.CreateService(ctx, usage.Service{
			Name: fmt.Sprintf("Service %05d", i), ResellerGUID: x.GUID, Status: usage.StatusCertifiedSecure,
			PrimaryDomain: fmt.Sprintf("s%05d.example.com", i), CreatedOn: start.Add(time.Duration(i) * time.Second),
		})
		if err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
		for d := range days {
			day := start.AddDate(0, 0, d)
			at := func() time.Time { return day.Add(time.Duration(r.IntN(86400)) * time.Second) }
			u := users[r.IntN(len(users))]
			id := func(k int) string { return fmt.Sprintf("%d-%d-%d", i, d, k) }
			batch = append(batch,
				usage.Activity{ID: id(0), Time: at(), Kind: usage.ActivityMessage, User: u, Attachments: int64(r.IntN(3)), AttachmentBytes: 1000},
				usage.Activity{ID: id(1), Time: at(), Kind: usage.ActivityMessage, User: u, Recipients: []usage.GUID{users[0]}},
				usage.Activity{ID: id(2), Time: at(), Kind: usage.ActivityFeature, User: u, Feature: usage.Feature(1 + r.IntN(usage.NumFeatures))},
				usage.Activity{ID: id(3), Time: at(), Kind: usage.ActivityUser, User: u, UserEvent: usage.UserLogin},
				usage.Activity{ID: id(4), Time: at(), Kind: usage.ActivityUsers, Users: usage.UserCounts{Total: 20, Pro: 15, Guest: 5}},
				usage.Activity{ID: id(5), Time: at(), Kind: usage.ActivityStorage, StorageBytes: int64(d) << 20},
			)
		}
		if _, err := db.AppendActivity(ctx, svc.GUID, batch, start.Add(-time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
	hs, key := mustBenchServer(b, db, reg, x.PartnerGUID)

	for _, period := range []struct{ name, query string }{
		{"Daily", "PeriodType=Daily&Period=" + now.AddDate(0, 0, -1).Format(time.DateOnly)},
		{"Monthly", "PeriodType=Monthly&Period=" + now.Format(time.DateOnly)},
	} {
		b.Run(period.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			for b.Loop() {
				page := 1 + r.IntN(services/pageSize)
				req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/services/usage?PageSize=%d&Page=%d&%s", hs.URL, pageSize, page, period.query), nil)
				req.Header.Set("Authorization", "Bearer "+key)
				t0 := time.Now()
				resp, err := hs.Client().Do(req)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat = append(lat, time.Since(t0))
				if resp.StatusCode != 200 || n < 1000 {
					b.Fatalf("page %d: status %d, %d bytes", page, resp.StatusCode, n)
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkServiceUsageHistory measures GetServiceUsageHistory over real
// HTTP: one service with 400 days of activity (messages, features, user
// events and both gauges), asked for its longest daily history (366 days)
// and for 12 months.
//
//	go test -run XXX -bench ServiceUsageHistory ./ccc
func BenchmarkServiceUsageHistory(b *testing.B) {
	const (
		days   = 400
		perDay = 6
	)
	ctx := context.Background()
	db, reg, x := mustBenchRegistry(b)
	now := benchNow
	start := now.AddDate(0, 0, -days)
	svc, err := reg.CreateService(ctx, usage.Service{
		Name: "History", ResellerGUID: x.GUID, Status: usage.StatusCertifiedSecure,
		PrimaryDomain: "history.example.com", CreatedOn: start,
	})
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	users := make([]usage.GUID, 20)
	for i := range users {
		users[i] = usage.NewGUID()
	}
	batch := make([]usage.Activity, 0, days*perDay)
	for d := range days {
		day := start.AddDate(0, 0, d)
		at := func() time.Time { return day.Add(time.Duration(r.IntN(86400)) * time.Second) }
		u := users[r.IntN(len(users))]
		id := func(k int) string { return fmt.Sprintf("%d-%d", d, k) }
		batch = append(batch,
			usage.Activity{ID: id(0), Time: at(), Kind: usage.ActivityMessage, User: u, Attachments: int64(r.IntN(3)), AttachmentBytes: 1000},
			usage.Activity{ID: id(1), Time: at(), Kind: usage.ActivityMessage, User: u, Recipients: []usage.GUID{users[0]}},
			usage.Activity{ID: id(2), Time: at(), Kind: usage.ActivityFeature, User: u, Feature: usage.Feature(1 + r.IntN(usage.NumFeatures))},
			usage.Activity{ID: id(3), Time: at(), Kind: usage.ActivityUser, User: u, UserEvent: usage.UserLogin},
			usage.Activity{ID: id(4), Time: at(), Kind: usage.ActivityUsers, Users: usage.UserCounts{Total: 20 + int64(d), Pro: 15, Guest: 5}},
			usage.Activity{ID: id(5), Time: at(), Kind: usage.ActivityStorage, StorageBytes: int64(d) << 20},
		)
	}
	if _, err := db.AppendActivity(ctx, svc.GUID, batch, start.Add(-time.Hour)); err != nil {
		b.Fatal(err)
	}
	hs, key := mustBenchServer(b, db, reg, x.PartnerGUID)

	for _, h := range []struct{ name, query string }{
		{"Daily366", "PeriodType=Daily&From=" + now.AddDate(0, 0, -365).Format(time.DateOnly)},
		{"Monthly12", "PeriodType=Monthly"},
	} {
		b.Run(h.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/services/%s/serviceusage/history?%s", hs.URL, svc.GUID, h.query), nil)
				req.Header.Set("Authorization", "Bearer "+key)
				resp, err := hs.Client().Do(req)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || n < 1000 {
					b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
				}
			}
		})
	}
}

// benchNow is the clock of the benchmarks.
var benchNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// mustBenchRegistry opens a store and a registry holding one partner and its
// reseller, which it returns.
func mustBenchRegistry(b *testing.B) (*pebble.DB, *tenancy.Registry, usage.Reseller) {
	b.Helper()
	ctx := context.Background()
	db, err := pebble.Open(pebble.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	reg, err := tenancy.New(ctx, tenancy.Config{Store: db, Now: func() time.Time { return benchNow }})
	if err != nil {
		b.Fatal(err)
	}
	p, err := reg.CreatePartner(ctx, "Bench Partner")
	if err != nil {
		b.Fatal(err)
	}
	x, err := reg.CreateReseller(ctx, p.GUID, "Bench Reseller")
	if err != nil {
		b.Fatal(err)
	}
	return db, reg, x
}

// mustBenchServer serves the CCC routes over db and reg without a rate
// limit, and returns the server and a key of partner.
func mustBenchServer(b *testing.B, db *pebble.DB, reg *tenancy.Registry, partner usage.GUID) (*httptest.Server, string) {
	b.Helper()
	now := func() time.Time { return benchNow }
	pipeline, err := ingest.New(ingest.Config{Store: db, Services: db, Now: now})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := ccc.New(ccc.Config{Registry: reg, Ingest: pipeline, Reports: db, Now: now, RateLimit: -1})
	if err != nil {
		b.Fatal(err)
	}
	_, key, err := reg.CreateAPIKey(context.Background(), "bench", usage.Scope{Kind: usage.ScopePartner, GUID: partner})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	srv.Register(mux)
	hs := httptest.NewServer(mux)
	b.Cleanup(hs.Close)
	return hs, key
}
