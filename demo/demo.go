// Package demo generates synthetic but realistic API usage: organizations
// whose named OAuth clients call a few hundred Genesys-style route templates
// for their users, with a daily and weekly rhythm, a mostly successful status
// mix, occasional platform incidents (5xx bursts) and a noisy client that gets
// throttled (429 bursts).
//
// Generation is deterministic: the same Config yields the same events, ids
// included. Everything about an organization's hour of traffic (its size, its
// events and their ids) is derived from the seed, the organization id and the
// absolute hour alone, so two runs whose intervals overlap produce identical
// events for the overlap and a store deduplicates a re-run to nothing new.
package demo

import (
	"errors"
	"fmt"
	"iter"
	"math"
	"sort"
	"time"

	"github.com/usaged/usaged/usage"
)

// Org is an organization to generate traffic for.
type Org struct {
	ID string
	// Clients are the OAuth clients whose calls are generated, busiest first.
	// When empty, Config.ClientsPerOrg clients are made up, named by
	// ClientNames and with ids derived from the seed.
	Clients []Client
}

// Client is an OAuth client that appears in generated events.
type Client struct {
	ID   string
	Name string
}

// Limits on a Config, to keep ids unique and memory bounded.
const (
	MaxEventsPerDay = 10_000_000 // per organization; keeps any hour below 2^24 events
	MaxClients      = 10_000     // per organization
	MaxUsers        = 1_000_000  // per organization
	MaxOrgs         = 100_000
)

// Config describes the traffic to generate.
type Config struct {
	Seed          int64
	Organizations []Org
	ClientsPerOrg int // clients made up for organizations that list none
	UsersPerOrg   int // distinct users per organization; 0 for client-only traffic
	Templates     int // distinct route templates, 1 to TemplateCount
	// Start and End bound the event times, [Start, End). Hours cut by either
	// bound get a proportional share of their traffic.
	Start, End time.Time
	// EventsPerDay is the average number of events per organization per day;
	// each organization's volume varies around it, by day and by hour.
	EventsPerDay int
}

// Validate reports every problem with the configuration.
func (c Config) Validate() error {
	var errs []error
	if len(c.Organizations) == 0 {
		errs = append(errs, errors.New("demo: at least one organization is required"))
	}
	if len(c.Organizations) > MaxOrgs {
		errs = append(errs, fmt.Errorf("demo: %d organizations is more than the limit of %d", len(c.Organizations), MaxOrgs))
	}
	seen := make(map[string]bool, len(c.Organizations))
	needClients := false
	for i, o := range c.Organizations {
		switch {
		case o.ID == "":
			errs = append(errs, fmt.Errorf("demo: organization %d has no id", i))
		case seen[o.ID]:
			errs = append(errs, fmt.Errorf("demo: organization %q is listed twice", o.ID))
		}
		seen[o.ID] = true
		if len(o.Clients) == 0 {
			needClients = true
		}
		if len(o.Clients) > MaxClients {
			errs = append(errs, fmt.Errorf("demo: organization %q has %d clients; the limit is %d", o.ID, len(o.Clients), MaxClients))
		}
		for j, cl := range o.Clients {
			if cl.ID == "" || cl.Name == "" {
				errs = append(errs, fmt.Errorf("demo: client %d of organization %q needs an id and a name", j, o.ID))
			}
		}
	}
	if needClients && (c.ClientsPerOrg < 1 || c.ClientsPerOrg > MaxClients) {
		errs = append(errs, fmt.Errorf("demo: ClientsPerOrg must be from 1 to %d, got %d", MaxClients, c.ClientsPerOrg))
	}
	if c.UsersPerOrg < 0 || c.UsersPerOrg > MaxUsers {
		errs = append(errs, fmt.Errorf("demo: UsersPerOrg must be from 0 to %d, got %d", MaxUsers, c.UsersPerOrg))
	}
	if c.Templates < 1 || c.Templates > TemplateCount {
		errs = append(errs, fmt.Errorf("demo: Templates must be from 1 to %d, got %d", TemplateCount, c.Templates))
	}
	if c.EventsPerDay < 1 || c.EventsPerDay > MaxEventsPerDay {
		errs = append(errs, fmt.Errorf("demo: EventsPerDay must be from 1 to %d, got %d", MaxEventsPerDay, c.EventsPerDay))
	}
	switch {
	case c.Start.IsZero() || c.End.IsZero():
		errs = append(errs, errors.New("demo: Start and End are required"))
	case !c.End.After(c.Start):
		errs = append(errs, fmt.Errorf("demo: End must be after Start: got %s/%s", c.Start.UTC().Format(time.RFC3339), c.End.UTC().Format(time.RFC3339)))
	case c.End.Sub(c.Start) > 5*366*24*time.Hour:
		errs = append(errs, fmt.Errorf("demo: Start to End spans %s; the limit is five years", c.End.Sub(c.Start)))
	}
	return errors.Join(errs...)
}

// Generator produces the events of a Config. Its description of the traffic
// is immutable, so All may be used from several goroutines at once; Next and
// Reset keep a cursor and must not be called concurrently.
type Generator struct {
	seed      uint64
	templates []template
	orgs      []orgState
	chunks    []chunk
	total     int
	cur       cursor
}

type orgState struct {
	id      string
	key     uint64 // derived from the seed and the id; keys everything about the organization
	clients []clientState
	users   []string
	cdfCl   []float64
	cdfUser []float64
}

type clientState struct {
	id, name, platform string
	userShare          float64
	templates          []int // indexes into Generator.templates, most used first
	cdf                []float64
}

// A chunk is one organization's events in one hour (or the part of it
// inside [Start, End)).
type chunk struct {
	org      int32
	count    int32
	flags    uint8
	hour     int64 // Unix hour number
	from, to int64 // Unix milliseconds, [from, to)
}

const (
	incident  uint8 = 1 << iota // a platform incident: many 5xx
	throttled                   // the noisy client is being rate limited: many 429
)

// New returns a Generator for cfg.
func New(cfg Config) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Generator{seed: uint64(cfg.Seed)}
	r := &rng{s: hash(g.seed, 0x7e3b1a7e)}
	cat := catalogue(r)
	g.templates = cat[:cfg.Templates]
	globalCDF := zipfCDF(len(g.templates), 1.0)
	for i := range g.templates {
		t := &g.templates[i]
		t.weights = normalizeCDF(t.weights)
	}
	for _, o := range cfg.Organizations {
		g.orgs = append(g.orgs, g.newOrg(o, cfg, globalCDF))
	}
	g.plan(cfg)
	return g, nil
}

func (g *Generator) newOrg(o Org, cfg Config, globalCDF []float64) orgState {
	st := orgState{id: o.ID, key: hash(g.seed, hashString(o.ID))}
	r := &rng{s: st.key}
	clients := o.Clients
	if len(clients) == 0 {
		for i, name := range ClientNames(cfg.ClientsPerOrg) {
			clients = append(clients, Client{ID: uuid(hash(st.key, 0xc1, uint64(i)), hash(st.key, 0xc2, uint64(i))), Name: name})
		}
	}
	for i, c := range clients {
		k := clientKindOf(i)
		cs := clientState{id: c.ID, name: c.Name, platform: k.platform, userShare: k.userShare}
		// Each client calls its own handful of routes, drawn from the
		// catalogue's popularity so that popular routes stay popular overall.
		want := min(len(g.templates), 6+r.intn(40))
		picked := make(map[int]bool, want)
		for range want * 3 {
			if len(cs.templates) == want {
				break
			}
			t := pick(globalCDF, r.float())
			if !picked[t] {
				picked[t] = true
				cs.templates = append(cs.templates, t)
			}
		}
		cs.cdf = zipfCDF(len(cs.templates), 1.1)
		st.clients = append(st.clients, cs)
	}
	st.cdfCl = zipfCDF(len(st.clients), 1.2)
	for i := range cfg.UsersPerOrg {
		st.users = append(st.users, uuid(hash(st.key, 0x05e1, uint64(i)), hash(st.key, 0x05e2, uint64(i))))
	}
	st.cdfUser = zipfCDF(len(st.users), 0.8)
	return st
}

// diurnal is the relative traffic of each UTC hour: quiet at night, peaking
// early afternoon; its mean is 1.
var diurnal = func() [24]float64 {
	var d [24]float64
	sum := 0.0
	for h := range d {
		x := float64(h) + 0.5 - 13
		d[h] = 0.12 + 1.6*math.Exp(-x*x/(2*3.6*3.6))
		sum += d[h]
	}
	for h := range d {
		d[h] *= 24 / sum
	}
	return d
}()

// weekly is the relative traffic of each weekday, Sunday first; its mean is 1.
var weekly = func() [7]float64 {
	w := [7]float64{0.35, 1.08, 1.12, 1.1, 1.08, 1.0, 0.45}
	sum := 0.0
	for _, v := range w {
		sum += v
	}
	for i := range w {
		w[i] *= 7 / sum
	}
	return w
}()

// plan sizes every chunk. The size of an organization's hour depends only on
// the seed, the organization and the hour, never on Start or End.
func (g *Generator) plan(cfg Config) {
	start, end := cfg.Start.UnixMilli(), cfg.End.UnixMilli()
	const hourMs = 3600_000
	first := floorDiv(start, hourMs)
	last := floorDiv(end-1, hourMs)
	perHour := float64(cfg.EventsPerDay) / 24
	for h := first; h <= last; h++ {
		from, to := max(h*hourMs, start), min((h+1)*hourMs, end)
		t := time.UnixMilli(h * hourMs).UTC()
		day := floorDiv(h, 24)
		hourOfDay := int(h - day*24)
		inc := g.incidentHours(day)
		for oi := range g.orgs {
			o := &g.orgs[oi]
			dayNoise := 0.85 + 0.3*unit(hash(o.key, 0xda7, uint64(day)))
			expected := perHour * diurnal[hourOfDay] * weekly[t.Weekday()] * orgScale(o.key) * dayNoise *
				(0.9 + 0.2*unit(hash(o.key, 0x40a, uint64(h))))
			var flags uint8
			if inc[0] <= hourOfDay && hourOfDay < inc[1] {
				flags |= incident
			}
			if th := g.throttleHours(o, day); len(o.clients) > noisyClient && th[0] <= hourOfDay && hourOfDay < th[1] {
				flags |= throttled
				expected *= 1.4 // the noisy client retries hard while throttled
			}
			expected *= float64(to-from) / hourMs
			n := int64(expected)
			if unit(hash(o.key, 0xc0, uint64(h))) < expected-float64(n) {
				n++
			}
			if n == 0 {
				continue
			}
			g.chunks = append(g.chunks, chunk{org: int32(oi), count: int32(n), flags: flags, hour: h, from: from, to: to})
			g.total += int(n)
		}
	}
}

// incidentHours returns the UTC hours [from, to) of the platform incident on
// a day, which hits every organization; most days have none.
func (g *Generator) incidentHours(day int64) [2]int {
	h := hash(g.seed, 0x1c1d, uint64(day))
	if unit(h) >= 0.2 {
		return [2]int{}
	}
	from := 7 + int(mix(h)%11)
	return [2]int{from, from + 1 + int(mix(h^1)%2)}
}

// throttleHours returns the hours [from, to) in which an organization's noisy
// client is rate limited on a day.
func (g *Generator) throttleHours(o *orgState, day int64) [2]int {
	h := hash(o.key, 0x429, uint64(day))
	if unit(h) >= 0.3 {
		return [2]int{}
	}
	from := 8 + int(mix(h)%9)
	return [2]int{from, from + 1 + int(mix(h^1)%3)}
}

// orgScale makes organizations differ in size around a mean of about 1.
func orgScale(key uint64) float64 {
	r := rng{s: key ^ 0x5ca1e}
	return math.Exp(0.45*r.norm() - 0.1)
}

// Total returns the number of events the generator produces.
func (g *Generator) Total() int { return g.total }

type cursor struct {
	chunk int
	j     int // events of the chunk already produced
	r     rng
}

// Next fills buf with the next events and returns how many it wrote; 0 means
// every event has been produced. Events come ordered by hour, then by
// organization; within an organization's hour their times are unordered.
func (g *Generator) Next(buf []usage.Event) int {
	n := 0
	for n < len(buf) && g.cur.chunk < len(g.chunks) {
		n += g.fill(&g.cur, buf[n:])
	}
	return n
}

// Reset rewinds Next to the first event.
func (g *Generator) Reset() { g.cur = cursor{} }

// All yields every event in the order Next produces them, independently of
// Next's cursor.
func (g *Generator) All() iter.Seq[usage.Event] {
	return func(yield func(usage.Event) bool) {
		var c cursor
		var buf [256]usage.Event
		for c.chunk < len(g.chunks) {
			n := g.fill(&c, buf[:])
			for i := range n {
				if !yield(buf[i]) {
					return
				}
			}
		}
	}
}

// fill writes events of the cursor's chunk into buf and advances the cursor.
func (g *Generator) fill(c *cursor, buf []usage.Event) int {
	ch := &g.chunks[c.chunk]
	o := &g.orgs[ch.org]
	if c.j == 0 {
		c.r = rng{s: hash(o.key, 0xe7, uint64(ch.hour))}
	}
	n := min(len(buf), int(ch.count)-c.j)
	for i := range n {
		g.event(&buf[i], ch, o, &c.r, c.j+i)
	}
	c.j += n
	if c.j == int(ch.count) {
		c.chunk++
		c.j = 0
	}
	return n
}

var otherPlatforms = [...]string{"PureCloud", "Api", ""}

// event writes the j-th event of chunk ch.
func (g *Generator) event(ev *usage.Event, ch *chunk, o *orgState, r *rng, j int) {
	ci := pick(o.cdfCl, r.float())
	burst := false
	if ch.flags&throttled != 0 && r.float() < 0.3 {
		ci, burst = noisyClient, true
	}
	cl := &o.clients[ci]
	t := &g.templates[cl.templates[pick(cl.cdf, r.float())]]
	method := t.methods[pick(t.weights, r.float())]
	user := ""
	if len(o.users) > 0 && r.float() < cl.userShare {
		user = o.users[pick(o.cdfUser, r.float())]
	}
	platform := cl.platform
	if r.float() < 0.06 {
		platform = otherPlatforms[r.intn(len(otherPlatforms))]
	}
	status := statusFor(r, method, ch.flags&incident != 0, burst)
	dur, req, resp := sizes(r, t, method, status)
	// The id packs the hour and the position in it, mixed by a bijection
	// keyed by the organization, so ids never repeat within an organization.
	x := mix((uint64(ch.hour)<<24 | uint64(j)) ^ o.key)
	*ev = usage.Event{
		ID:             uuid(mix(x^g.seed^0x1d), x),
		Time:           time.UnixMilli(ch.from + int64(r.intn(int(ch.to-ch.from)))).UTC(),
		OrganizationID: o.id,
		ClientID:       cl.id,
		ClientName:     cl.name,
		UserID:         user,
		TemplateURI:    t.uri,
		HTTPMethod:     method,
		Status:         status,
		Platform:       platform,
		DurationMs:     dur,
		RequestBytes:   req,
		ResponseBytes:  resp,
	}
}

// statusFor draws a status: mostly 2xx, some 3xx for reads, a few 4xx and
// rare 5xx; many 5xx during an incident, mostly 429 in a throttling burst.
func statusFor(r *rng, method string, inIncident, burst bool) int {
	if burst && r.float() < 0.85 {
		return 429
	}
	if inIncident && r.float() < 0.22 {
		return [...]int{503, 503, 502, 504, 500}[r.intn(5)]
	}
	u := r.float()
	switch {
	case u < 0.004:
		return [...]int{500, 500, 502, 503, 503, 504}[r.intn(6)]
	case u < 0.05:
		v := r.float()
		switch {
		case v < 0.28:
			return 400
		case v < 0.36:
			return 401
		case v < 0.50:
			return 403
		case v < 0.88:
			return 404
		case v < 0.93:
			if method != "GET" {
				return 409
			}
			return 404
		case v < 0.96:
			return 422
		default:
			return 429
		}
	case method == "GET" && u < 0.07:
		if r.float() < 0.8 {
			return 304
		}
		return 302
	}
	switch method {
	case "POST":
		if v := r.float(); v < 0.3 {
			return 201
		} else if v < 0.4 {
			return 202
		}
	case "DELETE":
		if r.float() < 0.8 {
			return 204
		}
	}
	return 200
}

// sizes draws the duration and body sizes of a call.
func sizes(r *rng, t *template, method string, status int) (durationMs, requestBytes, responseBytes int64) {
	base := 35.0
	switch {
	case t.query:
		base = 450
	case method != "GET":
		base = 90
	}
	d := base * math.Exp(0.6*r.norm())
	switch {
	case status == 504:
		d = 30_000 + float64(r.intn(30_000))
	case status == 429:
		d = 2 + float64(r.intn(8))
	case status >= 500:
		d *= 3
	}
	if method == "POST" || method == "PUT" || method == "PATCH" {
		rb := 220.0
		if t.query {
			rb = 650
		}
		requestBytes = int64(rb * math.Exp(0.8*r.norm()))
	}
	switch {
	case status == 204 || status == 304 || status == 302:
	case status >= 400:
		responseBytes = 150 + int64(r.intn(250))
	case t.query:
		responseBytes = int64(20_000 * math.Exp(r.norm()))
	case method == "GET":
		responseBytes = int64(1_800 * math.Exp(0.9*r.norm()))
	default:
		responseBytes = int64(600 * math.Exp(0.7*r.norm()))
	}
	return max(1, int64(d)), requestBytes, responseBytes
}

// zipfCDF returns the cumulative distribution of n ranks with weight 1/(k+1)^s.
func zipfCDF(n int, s float64) []float64 {
	w := make([]float64, n)
	for k := range w {
		w[k] = 1 / math.Pow(float64(k+1), s)
	}
	return normalizeCDF(w)
}

// normalizeCDF turns weights into a cumulative distribution ending at 1.
func normalizeCDF(w []float64) []float64 {
	cdf := make([]float64, len(w))
	sum := 0.0
	for i, v := range w {
		sum += v
		cdf[i] = sum
	}
	for i := range cdf {
		cdf[i] /= sum
	}
	return cdf
}

// pick returns the index the uniform u in [0, 1) falls on in cdf.
func pick(cdf []float64, u float64) int {
	return min(sort.SearchFloat64s(cdf, u), len(cdf)-1)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// rng is a SplitMix64 generator: tiny, fast and fully specified here, so the
// streams it yields cannot change under us.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	return mix(r.s)
}

// float returns a uniform float64 in [0, 1).
func (r *rng) float() float64 { return unit(r.next()) }

// intn returns a uniform int in [0, n) for 0 < n < 2^32.
func (r *rng) intn(n int) int { return int((r.next() >> 32) * uint64(n) >> 32) }

// norm returns a standard normal variate (Box–Muller).
func (r *rng) norm() float64 {
	u1 := 1 - r.float() // in (0, 1]: Log stays finite
	u2 := r.float()
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}

// mix is the SplitMix64 finalizer: a bijection on uint64 with good avalanche.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func hash(parts ...uint64) uint64 {
	h := uint64(0x243f6a8885a308d3)
	for _, p := range parts {
		h = mix(h^p) + 0x9e3779b97f4a7c15
	}
	return h
}

func hashString(s string) uint64 {
	h := uint64(0xcbf29ce484222325) // FNV-1a, then mixed
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 0x100000001b3
	}
	return mix(h)
}

func unit(x uint64) float64 { return float64(x>>11) / (1 << 53) }

const hexDigits = "0123456789abcdef"

// uuid formats 128 bits as a UUID-shaped string.
func uuid(hi, lo uint64) string {
	var b [36]byte
	pos := 0
	put := func(v uint64, nibbles int) {
		for i := nibbles - 1; i >= 0; i-- {
			if pos == 8 || pos == 13 || pos == 18 || pos == 23 {
				b[pos] = '-'
				pos++
			}
			b[pos] = hexDigits[(v>>(4*uint(i)))&0xf]
			pos++
		}
	}
	put(hi, 16)
	put(lo, 16)
	return string(b[:])
}
