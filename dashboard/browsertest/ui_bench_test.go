package browsertest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// BenchmarkDashboardFirstChart measures page load to first chart: a fresh
// browser profile (no cache, no session) opens usaged serve --demo's
// dashboard, which signs in as the demo viewer, queries 30 days of demo
// traffic and draws. The time is the "usaged:first-chart" performance mark,
// counted from the start of navigation. Views: the default (7 days by
// day), 30 days by day, and 30 days by hour stacked by route template (the
// heaviest: 720 buckets of up to 180 templates).
//
//	cd dashboard/browsertest && go test -run XXX -bench DashboardFirstChart -benchtime 20x
func BenchmarkDashboardFirstChart(b *testing.B) {
	br := newBrowser(b)
	srv := startServe(b, b.TempDir(), "dashboard-bench-admin-token-0123", "--demo")
	for _, v := range []struct{ name, path string }{
		{"7d", "/"},
		{"30d", "/?range=30d"},
		{"30d-hourly-by-template", "/?range=30d&granularity=Hour&groupBy=template"},
	} {
		b.Run(v.name, func(b *testing.B) {
			var ms []float64
			for b.Loop() {
				// A new browser context per load: an empty cache and sessionStorage.
				tab, cancel := chromedp.NewContext(br.ctx, chromedp.WithNewBrowserContext())
				ctx, cancelT := context.WithTimeout(tab, time.Minute)
				if err := chromedp.Do(ctx, chromedp.Navigate(srv.base+v.path)); err != nil {
					b.Fatal(err)
				}
				at, err := chromedp.Run(ctx, chromedp.Poll[float64](`(performance.getEntriesByName("usaged:first-chart")[0] || {}).startTime`,
					chromedp.WithPollingInterval(5*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
				if err != nil {
					b.Fatal(err)
				}
				ms = append(ms, at)
				cancelT()
				cancel()
			}
			slices.Sort(ms)
			b.ReportMetric(ms[len(ms)/2], "ms-first-chart-p50")
			b.ReportMetric(ms[len(ms)-1], "ms-first-chart-max")
		})
	}
}
