package meter_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usaged/usaged/meter"
	"github.com/usaged/usaged/meter/attrib"
	"github.com/usaged/usaged/meter/route"
	"github.com/usaged/usaged/meter/spool"
)

// BenchmarkProxyOverhead measures, in one run, the same requests sent to an
// upstream directly and through the metering proxy (route matching over
// 1,000 templates, attribution by trusted headers, the real durable spool
// with its fsyncs); it reports the p50 each way, the p50 added, and the
// request rate through the proxy as a share of the direct one and of the
// same hop through a bare httputil.ReverseProxy (what metering itself costs).
//
//	go test -run XXX -bench ProxyOverhead -benchtime 1x ./meter
//
// Two upstreams: "trivial" answers at once (the proxy then costs as much CPU
// as the upstream and the client together, which bounds the rate share on a
// small machine), "1ms" waits a millisecond as an API waiting on its
// database would.
func BenchmarkProxyOverhead(b *testing.B) {
	for _, up := range []struct {
		name string
		wait time.Duration
	}{{"trivial", 0}, {"1ms", time.Millisecond}} {
		b.Run(up.name, func(b *testing.B) {
			for b.Loop() {
				runOverhead(b, up.wait)
			}
		})
	}
}

func runOverhead(b *testing.B, wait time.Duration) {
	body := []byte(`{"id":"8f1c2b3a","name":"Ann","presence":"Available"}`)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if wait > 0 {
			time.Sleep(wait)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	defer upstream.Close()

	templates := make([]string, 1000)
	for i := range templates {
		templates[i] = fmt.Sprintf("/api/v2/r%03d/{id}/presences/{sourceId}", i)
	}
	m, err := route.New(templates, route.Options{})
	if err != nil {
		b.Fatal(err)
	}
	who, err := attrib.NewHeaders(attrib.HeaderConfig{Organization: "X-Org", Client: "X-Client"})
	if err != nil {
		b.Fatal(err)
	}
	sp, err := spool.Open(spool.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer sp.Close()
	mt, err := meter.New(meter.Config{Templates: meter.Paths(m), Attributor: who, Sink: sp, Platform: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer mt.Close()
	u, _ := url.Parse(upstream.URL)
	h, err := meter.NewProxy(mt, meter.ProxyConfig{Upstream: u})
	if err != nil {
		b.Fatal(err)
	}
	proxy := httptest.NewServer(h)
	defer proxy.Close()
	// The same hop without metering: what a reverse proxy costs by itself.
	plain := httptest.NewServer(httputil.NewSingleHostReverseProxy(u))
	defer plain.Close()
	plain.Config.Handler.(*httputil.ReverseProxy).Transport = &http.Transport{MaxIdleConnsPerHost: 1024, MaxIdleConns: 1024}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxIdleConns: 256}}
	get := func(base string, i int) time.Duration {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/v2/r%03d/%d/presences/purecloud", base, i%1000, i), nil)
		req.Header.Set("X-Org", "org-1")
		req.Header.Set("X-Client", "client-1")
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
		return time.Since(t0)
	}

	// Latency: one request at a time, alternating, so that both see the
	// same machine state.
	const n = 4000
	var direct, proxied []time.Duration
	for i := range n {
		direct = append(direct, get(upstream.URL, i))
		proxied = append(proxied, get(proxy.URL, i))
	}
	slices.Sort(direct)
	slices.Sort(proxied)
	p50d, p50p := direct[n/2], proxied[n/2]

	// Rate: 16 clients for a second each way, twice, alternating.
	rate := func(base string) float64 {
		var count atomic.Int64
		stop := time.Now().Add(time.Second)
		var wg sync.WaitGroup
		for w := range 16 {
			wg.Go(func() {
				for i := w; time.Now().Before(stop); i += 16 {
					get(base, i)
					count.Add(1)
				}
			})
		}
		wg.Wait()
		return float64(count.Load())
	}
	var rd, rp, rplain float64
	for range 2 {
		rd += rate(upstream.URL)
		rp += rate(proxy.URL)
		rplain += rate(plain.URL)
	}
	if err := sp.Flush(); err != nil {
		b.Fatal(err)
	}
	if st := sp.Stats(); st.Dropped > 0 {
		b.Fatalf("the spool dropped %d events", st.Dropped)
	}
	b.ReportMetric(float64(p50d.Microseconds()), "direct-p50-µs")
	b.ReportMetric(float64(p50p.Microseconds()), "proxied-p50-µs")
	b.ReportMetric(float64((p50p - p50d).Microseconds()), "added-p50-µs")
	b.ReportMetric(rd/2, "direct-req/s")
	b.ReportMetric(rp/2, "proxied-req/s")
	b.ReportMetric(100*rp/rd, "rate-%")
	b.ReportMetric(100*rp/rplain, "rate-of-plain-proxy-%")
}
