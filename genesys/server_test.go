package genesys_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/internal/fakeclock"
	"github.com/usaged/usaged/internal/servertest"
	"github.com/usaged/usaged/server"
	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/usage"
)

const adminToken = "admin-token-for-tests"

// testMaxBody is small so that the size limit is cheap to exceed.
const testMaxBody = 64 << 10

var start = time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)

// env is a running server over a fresh store.
type env struct {
	t       *testing.T
	url     string
	handler http.Handler // the server's mux, for tests that watch how it writes
	clk     *fakeclock.Clock
	auth    *auth.Service
	reg     prometheus.Gatherer
	db      store.Usage // the server's store, for tests that record events past ingest
}

// envTuning adjusts the configuration of a test server before it starts.
type envTuning = func(*server.Config)

// MustEnv starts usaged's server on 127.0.0.1 with its store in memory, as
// usaged serve builds it, configured as tune says.
func MustEnv(t *testing.T, tune ...envTuning) *env {
	t.Helper()
	return mustEnvAuth(t, nil, tune...)
}

// mustEnvAuth is MustEnv with the auth configuration adjusted by tuneAuth,
// if it is not nil.
func mustEnvAuth(t *testing.T, tuneAuth func(*auth.Config), tune ...envTuning) *env {
	t.Helper()
	clk := fakeclock.New(start)
	s := servertest.Start(t, append([]envTuning{servertest.Memory, func(c *server.Config) {
		c.Now = clk.Now
		c.Auth.AdminToken = adminToken
		c.Ingest.MaxBody = testMaxBody
		c.Hooks.Auth = tuneAuth
	}}, tune...)...)
	return &env{t: t, url: s.URL(), handler: s.Handler(), clk: clk, auth: s.Auth(), reg: s.Metrics(), db: s.Stores().Usage}
}

// reply is a response read whole.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// errorBody is the Genesys error shape as a client sees it.
type errorBody struct {
	Message           string            `json:"message"`
	Code              string            `json:"code"`
	Status            int               `json:"status"`
	ContextID         string            `json:"contextId"`
	MessageWithParams string            `json:"messageWithParams"`
	MessageParams     map[string]string `json:"messageParams"`
	Details           []struct {
		ErrorCode string `json:"errorCode"`
		FieldName string `json:"fieldName"`
	} `json:"details"`
	Errors []json.RawMessage `json:"errors"`
}

func (r reply) errorBody(t *testing.T) errorBody {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body %s: %v", r.body, err)
	}
	return e
}

// on returns e for the subtest t, whose failures its helpers then report.
func (e *env) on(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

// do sends a request; body may be a string, []byte or a value to encode as JSON.
func (e *env) do(method, path, token string, body any, header ...string) reply {
	e.t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, ct = strings.NewReader(b), "application/json"
	case []byte:
		rd, ct = bytes.NewReader(b), "application/json"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd, ct = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	r := reply{status: resp.StatusCode, header: resp.Header, body: b}
	if id := resp.Header.Get("ININ-Correlation-Id"); id == "" {
		e.t.Fatalf("%s %s: no ININ-Correlation-Id", method, path)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-cache, no-store, must-revalidate" {
		e.t.Fatalf("%s %s: Cache-Control %q", method, path, cc)
	}
	if resp.StatusCode >= 400 && strings.HasPrefix(path, "/api/") {
		eb := r.errorBody(e.t)
		if eb.ContextID != resp.Header.Get("ININ-Correlation-Id") || eb.Status != resp.StatusCode || eb.Details == nil || eb.Errors == nil {
			e.t.Fatalf("%s %s: error body %s does not match status %d and correlation id %s",
				method, path, b, resp.StatusCode, resp.Header.Get("ININ-Correlation-Id"))
		}
	}
	return r
}

// wantError fails unless r is an error with status, code and a message
// containing inMessage.
func wantError(t *testing.T, r reply, status int, code, inMessage string) errorBody {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	eb := r.errorBody(t)
	if eb.Code != code || !strings.Contains(eb.Message, inMessage) {
		t.Fatalf("error %s, want code %s with %q", r.body, code, inMessage)
	}
	return eb
}

func decode[T any](t *testing.T, r reply, status int) T {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	var v T
	if status == http.StatusNoContent {
		if len(r.body) != 0 {
			t.Fatalf("204 with a body: %s", r.body)
		}
		return v
	}
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	return v
}

type organization struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	DateCreated string `json:"dateCreated"`
}

type client struct {
	ID                         string   `json:"id"`
	Name                       string   `json:"name"`
	Description                string   `json:"description"`
	Secret                     string   `json:"secret"`
	Permissions                []string `json:"permissions"`
	AccessTokenValiditySeconds int64    `json:"accessTokenValiditySeconds"`
	OrganizationID             string   `json:"organizationId"`
	DateCreated                string   `json:"dateCreated"`
}

func (e *env) mustOrg(name string) organization {
	e.t.Helper()
	return decode[organization](e.t, e.do("POST", "/api/v2/admin/organizations", adminToken, map[string]string{"name": name}), 201)
}

func (e *env) mustClient(orgID string, validity int64, perms ...string) client {
	e.t.Helper()
	if perms == nil {
		perms = []string{}
	}
	return decode[client](e.t, e.do("POST", "/api/v2/admin/organizations/"+orgID+"/clients", adminToken,
		map[string]any{"name": "CRM", "permissions": perms, "accessTokenValiditySeconds": validity}), 201)
}

// tokenReply posts a token request, with Basic credentials when basic is set.
func (e *env) tokenReply(form url.Values, basicID, basicSecret string, contentType string) reply {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), "POST", e.url+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if basicID != "" {
		req.SetBasicAuth(basicID, basicSecret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

// mustToken returns an access token for c by the client-credentials grant.
func (e *env) mustToken(c client) string {
	e.t.Helper()
	r := e.tokenReply(url.Values{"grant_type": {"client_credentials"}}, c.ID, c.Secret, "application/x-www-form-urlencoded")
	return decode[tokenResponse](e.t, r, 200).AccessToken
}

// event returns a valid event as JSON for organization org (omitted when
// empty), with fields overridden by kv pairs; a nil value removes a field.
func event(id string, kv ...any) map[string]any {
	ev := map[string]any{
		"id": id, "time": "2026-06-15T10:30:00Z", "clientId": "c1", "clientName": "CRM",
		"templateUri": "api/v2/users/{userId}", "httpMethod": "GET", "status": 200,
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(ev, kv[i].(string))
		} else {
			ev[kv[i].(string)] = kv[i+1]
		}
	}
	return ev
}

type result struct {
	Accepted   int                 `json:"accepted"`
	Duplicates int                 `json:"duplicates"`
	Rejected   int                 `json:"rejected"`
	Errors     []ingest.EventError `json:"errors"`
}

type row struct {
	Date           *string `json:"date"`
	ClientID       *string `json:"clientId"`
	ClientName     *string `json:"clientName"`
	OrganizationID *string `json:"organizationId"`
	UserID         *string `json:"userId"`
	TemplateURI    *string `json:"templateUri"`
	HTTPMethod     *string `json:"httpMethod"`
	Platform       *string `json:"platform"`
	Requests       *int64  `json:"requests"`
	Status200      *int64  `json:"status200"`
	Status300      *int64  `json:"status300"`
	Status400      *int64  `json:"status400"`
	Status500      *int64  `json:"status500"`
	Status429      *int64  `json:"status429"`
}

type aggregate struct {
	Interval string `json:"interval"`
	Results  []row  `json:"results"`
}

func (e *env) aggregate(token string, req map[string]any) aggregate {
	e.t.Helper()
	return decode[aggregate](e.t, e.do("POST", "/api/v2/usage/aggregate", token, req), 200)
}

const day = "2026-06-15T00:00:00Z/2026-06-16T00:00:00Z"

func TestAuthMatrix(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	a, b := e.mustOrg("A"), e.mustOrg("B")
	all := e.mustClient(a.ID, 300, usage.PermEventAdd, usage.PermOrganizationView)
	allTok := e.mustToken(all)
	none := e.mustClient(a.ID, 0)
	noneTok := e.mustToken(none)
	gone := e.mustClient(a.ID, 0, usage.PermEventAdd, usage.PermOrganizationView)
	goneTok := e.mustToken(gone)
	decode[json.RawMessage](t, e.do("DELETE", "/api/v2/admin/organizations/"+a.ID+"/clients/"+gone.ID, adminToken, nil), 204)

	events := []any{event("e1")}
	agg := map[string]any{"interval": day}
	routes := []struct {
		path string
		body any
		perm string
	}{
		{"/api/v2/usage/events", events, usage.PermEventAdd},
		{"/api/v2/usage/aggregate", agg, usage.PermOrganizationView},
	}
	for _, rt := range routes {
		t.Run(rt.path, func(t *testing.T) {
			wantError(t, e.do("POST", rt.path, "", rt.body), 401, "authentication.required", "No authentication bearer token specified in authorization header.")
			wantError(t, e.do("POST", rt.path, "", rt.body, "Authorization", "Basic Zm9vOmJhcg=="), 401, "authentication.required", "Bearer")
			wantError(t, e.do("POST", rt.path, "garbage", rt.body), 401, "bad.credentials", "token is not valid")
			wantError(t, e.do("POST", rt.path, goneTok, rt.body), 401, "bad.credentials", "client of this token was deleted")
			eb := wantError(t, e.do("POST", rt.path, noneTok, rt.body), 403, "missing.any.permissions",
				"You must have at least one of the following permissions assigned: "+rt.perm)
			if eb.MessageParams["permissions"] != rt.perm {
				t.Fatalf("messageParams %v", eb.MessageParams)
			}
			if r := e.do("POST", rt.path, allTok, rt.body); r.status != 200 {
				t.Fatalf("allowed client: %d %s", r.status, r.body)
			}
			if r := e.do("POST", rt.path, adminToken, rt.body); rt.perm == usage.PermOrganizationView && r.status != 400 {
				t.Fatalf("admin without organizationId: %d %s", r.status, r.body)
			}
		})
	}

	// Another organization: not found, exactly as for one that does not exist.
	other := wantError(t, e.do("POST", "/api/v2/usage/aggregate", allTok, map[string]any{"organizationId": b.ID, "interval": day}), 404, "not.found", b.ID)
	missing := wantError(t, e.do("POST", "/api/v2/usage/aggregate", allTok, map[string]any{"organizationId": "nope", "interval": day}), 404, "not.found", "nope")
	if strings.ReplaceAll(other.Message, b.ID, "X") != strings.ReplaceAll(missing.Message, "nope", "X") {
		t.Fatalf("other organization %q and missing one %q are told apart", other.Message, missing.Message)
	}
	// For events, another organization is a per-event rejection.
	res := decode[result](t, e.do("POST", "/api/v2/usage/events", allTok, []any{event("x", "organizationId", b.ID)}), 200)
	if res.Rejected != 1 || res.Errors[0].Code != ingest.CodeForbiddenOrganization {
		t.Fatalf("event for another organization: %+v", res)
	}
	// Operator routes refuse client tokens.
	wantError(t, e.do("GET", "/api/v2/admin/organizations", allTok, nil), 403, "not.authorized", "admin token")

	e.clk.Advance(300 * time.Second)
	for _, rt := range routes {
		wantError(t, e.do("POST", rt.path, allTok, rt.body), 401, "bad.credentials", "token expired")
	}
}

func TestOAuthToken(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	o := e.mustOrg("A")
	c := e.mustClient(o.ID, 3600, usage.PermEventAdd)
	form := "application/x-www-form-urlencoded"
	grant := url.Values{"grant_type": {"client_credentials"}}

	tr := decode[tokenResponse](t, e.tokenReply(grant, c.ID, c.Secret, form), 200)
	if tr.TokenType != "bearer" || tr.ExpiresIn != 3600 || tr.AccessToken == "" {
		t.Fatalf("token response %+v", tr)
	}
	withCreds := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ID}, "client_secret": {c.Secret}}
	tr = decode[tokenResponse](t, e.tokenReply(withCreds, "", "", form+"; charset=utf-8"), 200)
	if _, err := e.auth.Authenticate(t.Context(), tr.AccessToken); err != nil {
		t.Fatal(err)
	}

	f := func(r reply, status int, code string, basicChallenge bool) {
		t.Helper()
		var oe struct {
			Error            string `json:"error"`
			ErrorDescription string `json:"error_description"`
			Description      string `json:"description"`
		}
		if r.status != status || json.Unmarshal(r.body, &oe) != nil || oe.Error != code || oe.ErrorDescription == "" || oe.Description != oe.ErrorDescription {
			t.Fatalf("got %d %s, want %d %s", r.status, r.body, status, code)
		}
		if got := r.header.Get("WWW-Authenticate") != ""; got != basicChallenge {
			t.Fatalf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
		}
	}
	f(e.tokenReply(grant, c.ID, c.Secret+"x", form), 401, "invalid_client", true)
	f(e.tokenReply(grant, "unknown", c.Secret, form), 401, "invalid_client", true)
	bad := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ID}, "client_secret": {"wrong"}}
	f(e.tokenReply(bad, "", "", form), 401, "invalid_client", false)
	f(e.tokenReply(url.Values{"grant_type": {"password"}}, c.ID, c.Secret, form), 400, "unsupported_grant_type", false)
	f(e.tokenReply(url.Values{}, c.ID, c.Secret, form), 400, "invalid_request", false)
	f(e.tokenReply(grant, c.ID, c.Secret, "application/json"), 400, "invalid_request", false)
	f(e.tokenReply(withCreds, c.ID, c.Secret, form), 400, "invalid_request", false)
}

func TestIngestOutcomes(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	a, b := e.mustOrg("A"), e.mustOrg("B")
	tok := e.mustToken(e.mustClient(a.ID, 0, usage.PermEventAdd))
	batch := []any{
		event("ok"),
		event("m", "clientId", nil),
		event("i", "status", 99),
		event("w", "time", start.Add(-40*24*time.Hour).Format(time.RFC3339)),
		event("f", "time", start.Add(time.Hour).Format(time.RFC3339)),
		event("o", "organizationId", b.ID),
		42,
		event("t", "httpMethod", "FETCH"),
	}
	res := decode[result](t, e.do("POST", "/api/v2/usage/events", tok, batch), 200)
	if res.Accepted != 1 || res.Rejected != 7 || len(res.Errors) != 7 {
		t.Fatalf("result %+v", res)
	}
	want := []struct {
		index       int
		code, field string
	}{
		{1, ingest.CodeMissingField, "clientId"},
		{2, ingest.CodeInvalidField, "status"},
		{3, ingest.CodeOutsideWindow, "time"},
		{4, ingest.CodeInFuture, "time"},
		{5, ingest.CodeForbiddenOrganization, "organizationId"},
		{6, ingest.CodeMalformed, "not a JSON object"},
		{7, ingest.CodeInvalidField, "httpMethod"},
	}
	for i, w := range want {
		got := res.Errors[i]
		if got.Index != w.index || got.Code != w.code || !strings.Contains(got.Message, w.field) {
			t.Errorf("error %d = %+v, want index %d code %s naming %s", i, got, w.index, w.code, w.field)
		}
	}

	// The admin must name the organization, and a known one.
	res = decode[result](t, e.do("POST", "/api/v2/usage/events", adminToken, []any{
		event("a1"), event("a2", "organizationId", "ghost"), event("a3", "organizationId", b.ID),
	}), 200)
	if res.Accepted != 1 || res.Rejected != 2 || res.Errors[0].Code != ingest.CodeMissingField ||
		!strings.Contains(res.Errors[0].Message, "organizationId") || !strings.Contains(res.Errors[1].Message, "ghost") {
		t.Fatalf("admin result %+v", res)
	}
}

// TestIngestUnknownField checks that a misnamed field rejects its event,
// naming the field meant, and that the corrected event is then accepted: were
// the field ignored, the event would be stored without it and the correction
// refused as a duplicate.
func TestIngestUnknownField(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	a := e.mustOrg("A")
	tok := e.mustToken(e.mustClient(a.ID, 0, usage.PermEventAdd, usage.PermOrganizationView))
	res := decode[result](t, e.do("POST", "/api/v2/usage/events", tok, []any{event("u1", "userID", "alice"), event("u2")}), 200)
	if res.Accepted != 1 || res.Rejected != 1 || len(res.Errors) != 1 {
		t.Fatalf("result %+v", res)
	}
	want := ingest.EventError{Index: 0, ID: "u1", Code: "unknown_field", Message: "userID is not a field of API request events: did you mean userId?"}
	if res.Errors[0] != want {
		t.Fatalf("error %+v, want %+v", res.Errors[0], want)
	}
	res = decode[result](t, e.do("POST", "/api/v2/usage/events", tok, []any{event("u1", "userId", "alice")}), 200)
	if res.Accepted != 1 || res.Duplicates != 0 || res.Rejected != 0 {
		t.Fatalf("corrected event: %+v", res)
	}
	if rows := e.aggregate(tok, map[string]any{"interval": day}).Results; len(rows) != 1 || *rows[0].Requests != 2 {
		t.Fatalf("rows %+v", rows)
	}
}

func TestBodyErrors(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	a := e.mustOrg("A")
	tok := e.mustToken(e.mustClient(a.ID, 0, usage.PermEventAdd, usage.PermOrganizationView))
	good, _ := json.Marshal(event("e1"))

	// A body that does not parse records nothing, not even its good part.
	wantError(t, e.do("POST", "/api/v2/usage/events", tok, "["+string(good)+",{"), 400, "bad.request", "not valid JSON")
	wantError(t, e.do("POST", "/api/v2/usage/events", tok, `{"nope":1}`), 400, "bad.request", "events")
	if rows := e.aggregate(tok, map[string]any{"interval": day}).Results; len(rows) != 0 {
		t.Fatalf("unparseable body recorded %v", rows)
	}

	big := "[" + strings.Repeat(string(good)+",", testMaxBody/len(good)) + string(good) + "]"
	wantError(t, e.do("POST", "/api/v2/usage/events", tok, big), 413, "request.entity.too.large", fmt.Sprint(testMaxBody))
	wantError(t, e.do("POST", "/api/v2/usage/events", tok, gzipped(t, big), "Content-Encoding", "gzip"), 413, "request.entity.too.large", "limit")
	// Empty gzip members inflate to nothing; the wire size is bounded too.
	empty := gzipped(t, "")
	members := bytes.Repeat(empty, testMaxBody/len(empty)+1)
	wantError(t, e.do("POST", "/api/v2/usage/events", tok, members, "Content-Encoding", "gzip"), 413, "request.entity.too.large", "limit")

	wantError(t, e.do("POST", "/api/v2/usage/events", tok, "[]", "Content-Type", "text/plain"), 415, "unsupported.media.type", "text/plain")
	wantError(t, e.do("POST", "/api/v2/usage/events", tok, "[]", "Content-Encoding", "br"), 415, "unsupported.media.type", "br")
	wantError(t, e.do("POST", "/api/v2/usage/events", tok, "[]", "Content-Encoding", "gzip"), 400, "bad.request", "gzip")
	wantError(t, e.do("POST", "/api/v2/usage/aggregate", tok, "{}", "Content-Type", "text/plain"), 415, "unsupported.media.type", "text/plain")
}

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestGzipNDJSON(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	a := e.mustOrg("A")
	tok := e.mustToken(e.mustClient(a.ID, 0, usage.PermEventAdd, usage.PermOrganizationView))
	var nd strings.Builder
	for i := range 50 {
		b, _ := json.Marshal(event(fmt.Sprint("n", i), "status", 200+i%4*100))
		nd.Write(b)
		nd.WriteByte('\n')
	}
	nd.WriteString("not json\n")
	res := decode[result](t, e.do("POST", "/api/v2/usage/events", tok, gzipped(t, nd.String()),
		"Content-Type", "application/x-ndjson", "Content-Encoding", "gzip"), 200)
	if res.Accepted != 50 || res.Rejected != 1 || res.Errors[0].Code != ingest.CodeMalformed || res.Errors[0].Index != 50 {
		t.Fatalf("result %+v", res)
	}
	rows := e.aggregate(tok, map[string]any{"interval": day}).Results
	if len(rows) != 1 || *rows[0].Requests != 50 || *rows[0].Status200 != 13 || *rows[0].Status500 != 12 {
		t.Fatalf("rows %+v", rows)
	}
}

func TestDuplicatesCountedOnce(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	a := e.mustOrg("A")
	tok := e.mustToken(e.mustClient(a.ID, 0, usage.PermEventAdd, usage.PermOrganizationView))

	type key struct{ hour, client string }
	want := map[key]usage.Counts{}
	seen := map[string]bool{}
	send := func(evs ...map[string]any) result {
		t.Helper()
		body := make([]any, len(evs))
		for i, ev := range evs {
			body[i] = ev
			if id := ev["id"].(string); !seen[id] {
				seen[id] = true
				tm, _ := time.Parse(time.RFC3339, ev["time"].(string))
				k := key{tm.Truncate(time.Hour).Format(time.RFC3339), ev["clientId"].(string)}
				c := want[k]
				c.Add(usage.CountsFor(ev["status"].(int)))
				want[k] = c
			}
		}
		return decode[result](t, e.do("POST", "/api/v2/usage/events", tok, body), 200)
	}
	r := send(
		event("d1", "status", 200),
		event("d2", "status", 429, "clientId", "c2", "time", "2026-06-15T09:10:00Z"),
		event("d1", "status", 500), // a repeat within the batch: the first occurrence counts
		event("d3", "status", 302),
		event("d2", "status", 200, "clientId", "c2", "time", "2026-06-15T09:10:00Z"),
	)
	if r.Accepted != 3 || r.Duplicates != 2 {
		t.Fatalf("first batch %+v", r)
	}
	r = send(
		event("d3", "status", 302), // a repeat of an earlier batch
		event("d4", "status", 503, "time", "2026-06-15T11:59:00Z"),
		event("d1", "status", 200),
	)
	if r.Accepted != 1 || r.Duplicates != 2 {
		t.Fatalf("second batch %+v", r)
	}

	agg := e.aggregate(tok, map[string]any{"interval": day, "granularity": "Hour", "groupBy": []string{"OAuthClientId"}})
	if agg.Interval != day {
		t.Fatalf("interval %q", agg.Interval)
	}
	if len(agg.Results) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(agg.Results), len(want), want)
	}
	for _, row := range agg.Results {
		k := key{*row.Date, *row.ClientID}
		w, ok := want[k]
		got := usage.Counts{Requests: *row.Requests, Status200: *row.Status200, Status300: *row.Status300,
			Status400: *row.Status400, Status500: *row.Status500, Status429: *row.Status429}
		if !ok || got != w {
			t.Errorf("row %v: counts %+v, want %+v", k, got, w)
		}
		if *row.ClientName != "CRM" || *row.OrganizationID != "" || *row.UserID != "" || *row.TemplateURI != "" || *row.Platform != "" {
			t.Errorf("row %v: dimensions not grouped by should be empty: %+v", k, row)
		}
	}
}

func TestAggregate(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	a := e.mustOrg("A")
	tok := e.mustToken(e.mustClient(a.ID, 0, usage.PermEventAdd, usage.PermOrganizationView))
	decode[result](t, e.do("POST", "/api/v2/usage/events", tok, []any{
		event("1", "status", 200, "httpMethod", "get", "platform", "PureCloud"),
		event("2", "status", 404, "httpMethod", "POST"),
		event("3", "status", 200, "httpMethod", "POST", "time", "2026-06-14T23:00:00Z"),
	}), 200)

	// Without granularity there is no date; metrics not asked for are zero.
	agg := e.aggregate(tok, map[string]any{"interval": "2026-06-15/2026-06-15", "groupBy": []string{"HttpMethod"}, "metrics": []string{"Requests", "Status400"}})
	if len(agg.Results) != 2 {
		t.Fatalf("rows %s", mustJSON(agg))
	}
	for _, r := range agg.Results {
		if r.Date != nil || r.Status200 == nil || *r.Status200 != 0 || *r.Requests != 1 {
			t.Fatalf("row %s", mustJSON(r))
		}
	}
	if *agg.Results[1].HTTPMethod != "POST" || *agg.Results[1].Status400 != 1 {
		t.Fatalf("rows %s", mustJSON(agg))
	}
	// The admin names the organization; filters apply.
	agg = e.aggregate(adminToken, map[string]any{"organizationId": a.ID, "interval": "2026-06-14T00:00:00Z/P2D", "granularity": "day",
		"filter": map[string]any{"httpMethods": []string{"post"}}})
	if len(agg.Results) != 2 || *agg.Results[0].Date != "2026-06-14T00:00:00Z" || *agg.Results[1].Date != "2026-06-15T00:00:00Z" {
		t.Fatalf("rows %s", mustJSON(agg))
	}

	f := func(body string, code, field, inMessage string) {
		t.Helper()
		eb := wantError(t, e.do("POST", "/api/v2/usage/aggregate", tok, body), 400, code, inMessage)
		if len(eb.Details) != 1 || eb.Details[0].FieldName != field {
			t.Fatalf("details %+v, want field %s", eb.Details, field)
		}
	}
	f(`{}`, "bad.request", "interval", "interval is required")
	f(`{"interval":"yesterday"}`, "invalid.date", "interval", "yesterday")
	f(`{"interval":"2026-02-01/2026-01-01"}`, "invalid.date", "interval", "end must be after start")
	f(`{"interval":"`+day+`","granularity":"Minute"}`, "invalid.value", "granularity", "Minute")
	f(`{"interval":"`+day+`","groupBy":["Color"]}`, "invalid.value", "groupBy", "Color")
	f(`{"interval":"`+day+`","metrics":["Status600"]}`, "invalid.value", "metrics", "Status600")
	f(`{"interval":"`+day+`","colour":"red"}`, "bad.request", "colour", "unknown field")
	f(`{"interval":"`+day+`","filter":{"hue":[]}}`, "bad.request", "hue", "unknown field")
	f(`{"interval":5}`, "bad.request", "interval", "interval must be of type string")
	f(`{"interval":"`+day+`"} {}`, "bad.request", "body", "more follows")
	f(`[]`, "bad.request", "body", "JSON object")
	f(``, "bad.request", "body", "required")
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestAdmin(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	a, b := e.mustOrg("A"), e.mustOrg("B")
	if a.ID == "" || a.Name != "A" || !strings.HasSuffix(a.DateCreated, "Z") {
		t.Fatalf("organization %+v", a)
	}
	orgs := decode[struct{ Entities []organization }](t, e.do("GET", "/api/v2/admin/organizations", adminToken, nil), 200)
	if len(orgs.Entities) != 2 {
		t.Fatalf("organizations %+v", orgs)
	}
	c := e.mustClient(a.ID, 0, usage.PermEventAdd)
	if c.Secret == "" || c.AccessTokenValiditySeconds != 86400 || c.OrganizationID != a.ID || len(c.Permissions) != 1 {
		t.Fatalf("client %+v", c)
	}
	list := e.do("GET", "/api/v2/admin/organizations/"+a.ID+"/clients", adminToken, nil)
	cs := decode[struct{ Entities []client }](t, list, 200)
	if len(cs.Entities) != 1 || cs.Entities[0].ID != c.ID || strings.Contains(string(list.body), "secret") {
		t.Fatalf("clients %s", list.body)
	}
	got := decode[client](t, e.do("GET", "/api/v2/admin/organizations/"+a.ID+"/clients/"+c.ID, adminToken, nil), 200)
	if got.ID != c.ID || got.Secret != "" {
		t.Fatalf("client %+v", got)
	}
	wantError(t, e.do("GET", "/api/v2/admin/organizations/"+b.ID+"/clients/"+c.ID, adminToken, nil), 404, "not.found", c.ID)
	wantError(t, e.do("DELETE", "/api/v2/admin/organizations/"+b.ID+"/clients/"+c.ID, adminToken, nil), 404, "not.found", c.ID)
	wantError(t, e.do("POST", "/api/v2/admin/organizations/nope/clients", adminToken, map[string]any{"name": "x"}), 404, "not.found", "nope")
	wantError(t, e.do("GET", "/api/v2/admin/organizations/nope", adminToken, nil), 404, "not.found", "nope")

	clients := "/api/v2/admin/organizations/" + a.ID + "/clients"
	eb := wantError(t, e.do("POST", clients, adminToken, map[string]any{"name": "x", "permissions": []string{"usage:all"}}), 400, "bad.request", `"usage:all" is not one of usage:event:add`)
	if eb.Details[0].FieldName != "permissions" {
		t.Fatalf("details %+v", eb.Details)
	}
	wantError(t, e.do("POST", clients, adminToken, map[string]any{"name": "x", "accessTokenValiditySeconds": 60}), 400, "bad.request", "accessTokenValiditySeconds")
	wantError(t, e.do("POST", clients, adminToken, map[string]any{"name": "x", "accessTokenValiditySeconds": int64(1) << 62}), 400, "bad.request", "accessTokenValiditySeconds")
	wantError(t, e.do("POST", clients, adminToken, map[string]any{"name": "x", "secret": "mine"}), 400, "bad.request", `unknown field "secret"`)
	wantError(t, e.do("POST", clients, adminToken, map[string]any{}), 400, "bad.request", "name is required")
	wantError(t, e.do("POST", "/api/v2/admin/organizations", adminToken, map[string]any{"name": ""}), 400, "bad.request", "name is required")

	decode[json.RawMessage](t, e.do("DELETE", clients+"/"+c.ID, adminToken, nil), 204)
	wantError(t, e.do("GET", clients+"/"+c.ID, adminToken, nil), 404, "not.found", c.ID)
}

func TestRoutingAndCorrelation(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	r := e.do("GET", "/api/v2/nothing/here", adminToken, nil)
	wantError(t, r, 404, "not.found", "/api/v2/nothing/here")
	r = e.do("DELETE", "/api/v2/usage/events", adminToken, nil)
	wantError(t, r, 405, "method.not.allowed", "POST, GET")
	if r.header.Get("Allow") != "POST, GET" {
		t.Fatalf("Allow %q", r.header.Get("Allow"))
	}
	// Every response gets a new correlation id; an error's contextId equals it (checked by do).
	a := e.do("GET", "/api/v2/admin/organizations", adminToken, nil)
	b := e.do("GET", "/api/v2/admin/organizations", adminToken, nil)
	if a.header.Get("ININ-Correlation-Id") == b.header.Get("ININ-Correlation-Id") {
		t.Fatal("correlation id reused")
	}
	tr := e.tokenReply(url.Values{}, "", "", "text/plain")
	if tr.header.Get("ININ-Correlation-Id") == "" || tr.header.Get("Cache-Control") != "no-cache, no-store, must-revalidate" {
		t.Fatalf("token endpoint headers %v", tr.header)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	a := e.mustOrg("A")
	tok := e.mustToken(e.mustClient(a.ID, 0, usage.PermEventAdd, usage.PermOrganizationView))
	decode[result](t, e.do("POST", "/api/v2/usage/events", tok, []any{event("1"), event("1"), event("2", "status", 0)}), 200)
	e.aggregate(tok, map[string]any{"interval": day})
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "," + l.GetName() + "=" + l.GetValue()
			}
			switch {
			case m.GetCounter() != nil:
				got[name] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				got[name] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	for name, want := range map[string]float64{
		"usaged_ingest_events_total,outcome=accepted":                                1,
		"usaged_ingest_events_total,outcome=duplicate":                               1,
		"usaged_ingest_events_total,outcome=rejected":                                1,
		"usaged_ingest_commit_seconds":                                               1,
		"usaged_query_seconds":                                                       1,
		"usaged_http_requests_total,code=200,route=POST /api/v2/usage/events":        1,
		"usaged_http_requests_total,code=201,route=POST /api/v2/admin/organizations": 1,
		"usaged_http_request_duration_seconds,route=POST /oauth/token":               1,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v (all: %v)", name, got[name], want, got)
		}
	}
}
