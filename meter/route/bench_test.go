package route_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/usaged/usaged/meter/route"
)

// genesysLike returns n templates shaped like a large REST API such as
// Genesys Cloud's — resources nested up to five deep under /api/v2,
// parameters at every depth, and literal siblings of parameters (users/me,
// users/search beside users/{userId}) — and the traffic to match against
// them: first one path per template, under it (paths[i] is a hit of
// templates[i], with UUIDs for ids), then a third as many misses (unknown
// resources, the wrong version, paths one segment too long or too short,
// scanners' probes), shuffled among the hits.
func genesysLike(n int) (templates, paths []string) {
	r := rand.New(rand.NewPCG(1, 2))
	areas := []string{"users", "groups", "routing", "analytics", "conversations", "outbound", "flows", "architect",
		"telephony", "quality", "recording", "workforcemanagement", "presence", "authorization", "notifications",
		"integrations", "knowledge", "journey", "externalcontacts", "scripts", "webchat", "speechandtextanalytics",
		"gamification", "learning", "billing", "organizations", "locations", "stations", "voicemail", "contentmanagement"}
	nouns := []string{"queues", "skills", "members", "wrapupcodes", "languages", "campaigns", "contactlists",
		"schedules", "evaluations", "calibrations", "policies", "divisions", "roles", "subscriptions", "channels",
		"documents", "sessions", "segments", "recordings", "participants", "attributes", "messages", "emails",
		"calls", "callbacks", "teams", "units", "agents", "activitycodes", "timeoffrequests", "edges", "sites"}
	actions := []string{"me", "search", "query", "bulk", "summary", "settings", "jobs", "details"}

	seen := map[string]bool{} // by shape, as the Matcher counts routes
	var hits []string
	for len(templates) < n {
		area := areas[r.IntN(len(areas))]
		t, p := "/api/v2/"+area, "/api/v2/"+area
		depth := 1 + r.IntN(5)
		for d := range depth {
			switch x := r.IntN(10); {
			case x < 6: // a resource's instance
				noun := area
				if d > 0 {
					noun = nouns[r.IntN(len(nouns))]
					t, p = t+"/"+noun, p+"/"+noun
				}
				t += fmt.Sprintf("/{%sId}", strings.TrimSuffix(noun, "s"))
				p += "/" + uuid(r)
			case x < 8: // a literal sibling of an instance
				a := actions[r.IntN(len(actions))]
				t, p = t+"/"+a, p+"/"+a
			default: // a nested collection
				noun := nouns[r.IntN(len(nouns))]
				t, p = t+"/"+noun, p+"/"+noun
			}
		}
		shape := shapeOf(t)
		if !seen[shape] {
			seen[shape] = true
			templates = append(templates, t)
			hits = append(hits, p)
		}
	}
	var misses []string
	for i := range n / 3 {
		h := hits[r.IntN(len(hits))]
		switch i % 6 {
		case 0:
			misses = append(misses, "/api/v2/nosuchthing/"+uuid(r))
		case 1:
			misses = append(misses, strings.Replace(h, "/api/v2/", "/api/v3/", 1))
		case 2:
			misses = append(misses, h+"/"+uuid(r)+"/"+uuid(r)+"/"+uuid(r)+"/"+uuid(r)+"/"+uuid(r)+"/"+uuid(r)+"/x")
		case 3:
			misses = append(misses, "/api/v2")
		case 4:
			misses = append(misses, "/wp-login.php")
		case 5:
			misses = append(misses, "/.env")
		}
	}
	traffic := append(misses, hits...)
	r.Shuffle(len(traffic), func(i, j int) { traffic[i], traffic[j] = traffic[j], traffic[i] })
	return templates, append(hits, traffic...)
}

func uuid(r *rand.Rand) string {
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", r.Uint32(), r.IntN(1<<16), r.IntN(1<<16), r.IntN(1<<16), r.Uint64()&(1<<48-1))
}

// shapeOf is a template with its parameter names dropped.
func shapeOf(t string) string {
	segs := strings.Split(strings.Trim(t, "/"), "/")
	for i, s := range segs {
		if isParam(s) {
			segs[i] = "{}"
		}
	}
	return strings.Join(segs, "/")
}

// BenchmarkMatch matches the mixed traffic of a 1,000-template table:
//
//	go test -run XXX -bench Match -cpu 1 ./meter/route
func BenchmarkMatch(b *testing.B) {
	templates, paths := genesysLike(1000)
	paths = paths[len(templates):] // the shuffled traffic
	m := mustMatcher(b, templates...)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.Match(paths[i])
		if i++; i == len(paths) {
			i = 0
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "matches/s")
}

// BenchmarkMatchSize shows how matching scales with the table: it should
// barely, as a match walks one path down the trie.
func BenchmarkMatchSize(b *testing.B) {
	for _, n := range []int{10, 100, 1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			templates, paths := genesysLike(n)
			paths = paths[len(templates):]
			m := mustMatcher(b, templates...)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				m.Match(paths[i])
				if i++; i == len(paths) {
					i = 0
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "matches/s")
		})
	}
}

// BenchmarkNew is the cost of compiling a table, paid once at start-up.
func BenchmarkNew(b *testing.B) {
	templates, _ := genesysLike(1000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := route.New(templates, route.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
