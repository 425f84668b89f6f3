package ccc_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usaged/usaged/internal/fakeclock"
	"github.com/usaged/usaged/internal/servertest"
	"github.com/usaged/usaged/server"
	"github.com/usaged/usaged/tenancy"
)

// The tests of this package drive the CCC face over real HTTP on 127.0.0.1,
// against a real Pebble store, as a client of the API would: they know the
// wire format of the reference, not the types of the package.

const adminToken = "ccc-admin-token-for-tests"

// epoch is where the controlled clock stands once the tests' hierarchy is
// built and their activity posted: "today" is 2026-03-10, "yesterday"
// 2026-03-09.
var epoch = time.Date(2026, 3, 10, 15, 4, 5, 0, time.UTC)

// dedupeWindow covers the tests' ~40 days of activity, so that none of it is
// refused as too old (the default window is 35 days).
const dedupeWindow = 90 * 24 * time.Hour

// env is a running CCC server over a fresh store.
type env struct {
	url    string
	clk    *fakeclock.Clock
	client *http.Client
}

// MustEnv starts usaged's server on 127.0.0.1 with its store in memory, as
// usaged serve builds it, its clock at epoch, the admin token
// adminToken, its configuration adjusted by tune. Rate limits are off unless
// tune sets them: the tests make hundreds of requests within one minute of
// the clock.
func MustEnv(t *testing.T, tune ...func(*server.Config)) *env {
	t.Helper()
	clk := fakeclock.New(epoch)
	s := servertest.Start(t, append([]func(*server.Config){servertest.Memory, func(c *server.Config) {
		c.Now = clk.Now
		c.Auth.AdminToken = adminToken
		c.Ingest.DedupeWindow = dedupeWindow
		c.Limits.RateLimit, c.Limits.IngestRateLimit = -1, -1
	}}, tune...)...)
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	return &env{url: s.URL(), clk: clk, client: client}
}

// request is what send sends; only method and path are required.
type request struct {
	method, path, key string
	header            http.Header
	body              []byte
}

// send makes one request, with key as its bearer key unless it is empty.
func (e *env) send(t *testing.T, rq request) (int, http.Header, []byte) {
	t.Helper()
	if rq.method == "" {
		rq.method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(t.Context(), rq.method, e.url+rq.path, bytes.NewReader(rq.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range rq.header {
		req.Header[k] = vs
	}
	if rq.key != "" {
		req.Header.Set("Authorization", "Bearer "+rq.key)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

// get makes a GET request with key.
func (e *env) get(t *testing.T, path, key string) (int, http.Header, []byte) {
	t.Helper()
	return e.send(t, request{path: path, key: key})
}

// getJSON GETs path with key, requires 200 JSON and decodes it strictly into
// v: a property v does not know is an error, so that what the server sends
// is pinned to the reference's field list.
func (e *env) getJSON(t *testing.T, path, key string, v any) {
	t.Helper()
	status, h, body := e.get(t, path, key)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, status, body)
	}
	decodeJSON(t, h, body, v)
}

// postJSON sends v as JSON with method, requires 200 and decodes the answer
// into out (if not nil).
func (e *env) postJSON(t *testing.T, method, path, key string, v, out any) {
	t.Helper()
	in, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	status, h, body := e.send(t, request{method: method, path: path, key: key, body: in,
		header: http.Header{"Content-Type": {"application/json"}}})
	if status != http.StatusOK {
		t.Fatalf("%s %s %s: %d %s", method, path, in, status, body)
	}
	if out != nil {
		decodeJSON(t, h, body, out)
	}
}

var (
	wireGuid = regexp.MustCompile(`^[0-9a-f]{32}$`)
	wireTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,7})?Z$`)
)

// decodeJSON checks that a response is JSON as the reference writes it —
// its content type, Guids as 32 lowercase hex digits, dates as ISO-8601 UTC
// — and decodes it strictly into v.
func decodeJSON(t *testing.T, h http.Header, body []byte, v any) {
	t.Helper()
	if ct := h.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type %q, want application/json; charset=utf-8", ct)
	}
	var raw any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("not JSON: %v: %s", err, body)
	}
	checkWireValues(t, "", raw)
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decoding %T: %v: %s", v, err, body)
	}
}

// timeProps are the properties that hold dates.
var timeProps = map[string]bool{
	"createdOn": true, "trialEndDate": true, "effectiveDate": true, "period": true, "registeredOn": true,
	"lastLogin": true, "lastMsgSent": true, "lastMsgRetrieved": true, "lastActivity": true,
}

// checkWireValues walks a decoded JSON value and checks every Guid and date
// property's form.
func checkWireValues(t *testing.T, key string, v any) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			checkWireValues(t, k, x)
		}
	case []any:
		for _, x := range v {
			checkWireValues(t, key, x)
		}
	case string:
		switch {
		case strings.HasSuffix(key, "Guid") && !wireGuid.MatchString(v):
			t.Errorf("%s %q is not 32 lowercase hex digits", key, v)
		case timeProps[key] && !wireTime.MatchString(v):
			t.Errorf("%s %q is not ISO-8601 UTC", key, v)
		}
	}
}

// responseStatus is ServiceStack's error body, as the reference shows it.
type responseStatus struct {
	ErrorCode string       `json:"errorCode"`
	Message   string       `json:"message,omitempty"`
	Errors    []fieldError `json:"errors,omitempty"`
}

type fieldError struct {
	ErrorCode string `json:"errorCode"`
	FieldName string `json:"fieldName"`
	Message   string `json:"message"`
}

// errorBody is the response DTO of a failed operation.
type errorBody struct {
	ResponseStatus responseStatus `json:"responseStatus"`
}

// wantError checks that a response is the JSON error want with HTTP status.
func wantError(t *testing.T, what string, status int, h http.Header, body []byte, wantStatus int, want responseStatus) {
	t.Helper()
	if status != wantStatus {
		t.Errorf("%s: status %d, want %d: %s", what, status, wantStatus, body)
		return
	}
	var got errorBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Errorf("%s: error body %s: %v", what, body, err)
		return
	}
	// "errors" is always an array, [] when no field is at fault, as
	// ServiceStack's CreateResponseStatus sets it; want leaves it nil then.
	var raw struct {
		ResponseStatus struct {
			Errors json.RawMessage `json:"errors"`
		} `json:"responseStatus"`
	}
	if json.Unmarshal(body, &raw) != nil || !bytes.HasPrefix(raw.ResponseStatus.Errors, []byte("[")) {
		t.Errorf("%s: responseStatus.errors is not an array: %s", what, body)
	}
	if len(got.ResponseStatus.Errors) == 0 {
		got.ResponseStatus.Errors = nil
	}
	if !reflect.DeepEqual(got.ResponseStatus, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got.ResponseStatus, want)
	}
	if ct := h.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("%s: Content-Type %q", what, ct)
	}
}

// notFound is the answer for a service the caller may not see.
func notFound(service string) responseStatus {
	return responseStatus{ErrorCode: "NotFound", Message: "Service " + service + " not found"}
}

// bindFailure is ServiceStack's answer for a parameter that cannot be bound.
func bindFailure(op, field, value string) responseStatus {
	return responseStatus{ErrorCode: "SerializationException", Message: "Unable to bind to request '" + op + "'",
		Errors: []fieldError{{ErrorCode: "SerializationException", FieldName: field,
			Message: "'" + value + "' is an Invalid value for '" + field + "'"}}}
}

// bindFailureHint is bindFailure whose message goes on to say what the
// parameter takes.
func bindFailureHint(op, field, value, hint string) responseStatus {
	rs := bindFailure(op, field, value)
	rs.Errors[0].Message += ": " + hint
	return rs
}

// What the query parameters take, as their bind failures say it.
const (
	dateHint       = "use yyyy-MM-dd, ISO-8601 such as 2026-03-04T05:06:07Z, or /Date(ms)/, from 0001-01-01 to 9999-12-31"
	periodTypeHint = "use one of Daily, Monthly"
)

// rangeFailure is FluentValidation's answer for a number out of its range.
func rangeFailure(code, field, message string) responseStatus {
	return responseStatus{ErrorCode: code, Message: message, Errors: []fieldError{{ErrorCode: code, FieldName: field, Message: message}}}
}

// The registry as the API answers it.

type partnerDTO struct {
	PartnerGuid string `json:"partnerGuid"`
	Name        string `json:"name"`
	CreatedOn   string `json:"createdOn"`
}

type resellerDTO struct {
	ResellerGuid string `json:"resellerGuid"`
	PartnerGuid  string `json:"partnerGuid"`
	Name         string `json:"name"`
	CreatedOn    string `json:"createdOn"`
}

type collectionDTO struct {
	CollectionGuid string `json:"collectionGuid"`
	Name           string `json:"name"`
	SiteGuid       string `json:"siteGuid"`
	SiteName       string `json:"siteName,omitempty"`
	PartnerGuid    string `json:"partnerGuid"`
	CreatedOn      string `json:"createdOn"`
}

type contactDTO struct {
	Name        string `json:"name,omitempty"`
	Email       string `json:"email,omitempty"`
	PhoneNumber string `json:"phoneNumber,omitempty"`
}

type companyDTO struct {
	Name          string `json:"name,omitempty"`
	Address       string `json:"address,omitempty"`
	City          string `json:"city,omitempty"`
	StateProvince string `json:"stateProvince,omitempty"`
	PostalCode    string `json:"postalCode,omitempty"`
	Country       string `json:"country,omitempty"`
	Website       string `json:"website,omitempty"`
}

// serviceHeader is how every service and service-usage response starts.
type serviceHeader struct {
	ServiceGuid    string      `json:"serviceGuid"`
	Name           string      `json:"name"`
	Status         string      `json:"status"`
	ServiceCode    string      `json:"serviceCode,omitempty"`
	ReferenceId    string      `json:"referenceId,omitempty"`
	PrimaryDomain  string      `json:"primaryDomain,omitempty"`
	CreatedOn      string      `json:"createdOn"`
	TrialEndDate   string      `json:"trialEndDate"`
	EffectiveDate  string      `json:"effectiveDate"`
	InitialTerm    int         `json:"initialTerm"`
	CollectionGuid string      `json:"collectionGuid"`
	CollectionName string      `json:"collectionName,omitempty"`
	ClientGuid     string      `json:"clientGuid"`
	Contact        *contactDTO `json:"contact,omitempty"`
	Company        *companyDTO `json:"company,omitempty"`
}

type serviceDTO struct {
	serviceHeader
	PartnerGuid  string `json:"partnerGuid"`
	ResellerGuid string `json:"resellerGuid"`
}

type apiKeyDTO struct {
	Id        string `json:"id"`
	Key       string `json:"key"`
	Name      string `json:"name"`
	Scope     string `json:"scope"`
	ScopeGuid string `json:"scopeGuid"`
	CreatedOn string `json:"createdOn"`
}

// page is the envelope of the paged lists.
type page[T any] struct {
	PageSize    int `json:"pageSize"`
	TotalPages  int `json:"totalPages"`
	TotalItems  int `json:"totalItems"`
	CurrentPage int `json:"currentPage"`
	Results     []T `json:"results"`
}

// Building the hierarchy through the API, as the operator.

func (e *env) createPartner(t *testing.T, name string) partnerDTO {
	t.Helper()
	var p partnerDTO
	e.postJSON(t, "POST", "/api/partners", adminToken, map[string]string{"name": name}, &p)
	return p
}

func (e *env) createReseller(t *testing.T, partner, name string) resellerDTO {
	t.Helper()
	var x resellerDTO
	e.postJSON(t, "POST", "/api/partners/"+partner+"/resellers", adminToken, map[string]string{"name": name}, &x)
	return x
}

func (e *env) createCollection(t *testing.T, partner, name string) collectionDTO {
	t.Helper()
	var c collectionDTO
	e.postJSON(t, "POST", "/api/collections", adminToken, map[string]string{"name": name, "partnerGuid": partner, "siteName": name + " site"}, &c)
	return c
}

// createService creates a service from a CreateService body.
func (e *env) createService(t *testing.T, body map[string]any) serviceDTO {
	t.Helper()
	var s serviceDTO
	e.postJSON(t, "POST", "/api/services", adminToken, body, &s)
	return s
}

// createKey returns a new API key for scope (partner, reseller or service).
func (e *env) createKey(t *testing.T, scope, guid string) string {
	t.Helper()
	var k apiKeyDTO
	e.postJSON(t, "POST", "/api/apikeys", adminToken, map[string]string{"name": scope + " key", "scope": scope, "scopeGuid": guid}, &k)
	if !strings.HasPrefix(k.Key, tenancy.KeyPrefix) {
		t.Fatalf("key %q", k.Key)
	}
	return k.Key
}

// eventsResult is the answer of POST /api/services/{g}/events.
type eventsResult struct {
	Accepted   int          `json:"accepted"`
	Duplicates int          `json:"duplicates"`
	Rejected   int          `json:"rejected"`
	Errors     []eventError `json:"errors"`
	// ErrorsOmitted counts the rejected events beyond those listed.
	ErrorsOmitted int `json:"errorsOmitted"`
}

type eventError struct {
	Index   int    `json:"index"`
	ID      string `json:"id"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// postEvents posts an events body as contentType, gzipped if asked.
func (e *env) postEvents(t *testing.T, service, key, contentType string, body []byte, gz bool) (int, http.Header, []byte) {
	t.Helper()
	h := http.Header{"Content-Type": {contentType}}
	if gz {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write(body)
		w.Close()
		body = b.Bytes()
		h.Set("Content-Encoding", "gzip")
	}
	return e.send(t, request{method: "POST", path: "/api/services/" + service + "/events", key: key, header: h, body: body})
}

// hierarchy is a small registry for the tests that need no activity: one
// partner with one reseller and two services, and a second partner with
// one reseller and one service, with a key at every level.
type hierarchy struct {
	partner, otherPartner       partnerDTO
	reseller, otherReseller     resellerDTO
	svc, sibling, otherSvc      serviceDTO
	partnerKey, resellerKey     string
	serviceKey, otherPartnerKey string
	otherResellerKey            string
	otherServiceKey             string
}

func mustHierarchy(t *testing.T, e *env) *hierarchy {
	t.Helper()
	h := &hierarchy{}
	h.partner = e.createPartner(t, "Partner")
	h.otherPartner = e.createPartner(t, "Other Partner")
	h.reseller = e.createReseller(t, h.partner.PartnerGuid, "Reseller")
	h.otherReseller = e.createReseller(t, h.otherPartner.PartnerGuid, "Other Reseller")
	h.svc = e.createService(t, map[string]any{"name": "Service", "resellerGuid": h.reseller.ResellerGuid, "primaryDomain": "svc.example.com"})
	h.sibling = e.createService(t, map[string]any{"name": "Sibling", "resellerGuid": h.reseller.ResellerGuid, "primaryDomain": "sibling.example.com"})
	h.otherSvc = e.createService(t, map[string]any{"name": "Other", "resellerGuid": h.otherReseller.ResellerGuid, "primaryDomain": "other.example.com"})
	h.partnerKey = e.createKey(t, "partner", h.partner.PartnerGuid)
	h.resellerKey = e.createKey(t, "reseller", h.reseller.ResellerGuid)
	h.serviceKey = e.createKey(t, "service", h.svc.ServiceGuid)
	h.otherPartnerKey = e.createKey(t, "partner", h.otherPartner.PartnerGuid)
	h.otherResellerKey = e.createKey(t, "reseller", h.otherReseller.ResellerGuid)
	h.otherServiceKey = e.createKey(t, "service", h.otherSvc.ServiceGuid)
	return h
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	h := mustHierarchy(t, e)
	path := "/api/services/" + h.svc.ServiceGuid + "/serviceusage"
	f := func(authorization string) {
		t.Helper()
		hdr := http.Header{}
		if authorization != "" {
			hdr.Set("Authorization", authorization)
		}
		status, rh, body := e.send(t, request{path: path, header: hdr})
		wantError(t, fmt.Sprintf("Authorization %q", authorization), status, rh, body, http.StatusUnauthorized,
			responseStatus{ErrorCode: "Unauthorized", Message: "Not Authenticated"})
		if got := rh.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
			t.Errorf("Authorization %q: WWW-Authenticate %q", authorization, got)
		}
	}
	f("")
	f("Bearer ")
	f("Bearer usk_not-a-key")
	f("Bearer " + adminToken + "x")
	f("Basic " + adminToken)
	f("Bearer" + h.partnerKey)
	f(h.partnerKey)

	// Every route authenticates, even one that does not exist.
	for _, p := range []string{"/api/services", "/api/services/usage", "/api/collections", "/api/partners", "/api/apikeys", "/api/resellers/x/nothing", "/api/services/x/y/z"} {
		status, rh, body := e.get(t, p, "")
		wantError(t, p, status, rh, body, http.StatusUnauthorized, responseStatus{ErrorCode: "Unauthorized", Message: "Not Authenticated"})
	}

	// The bearer scheme ignores case; a key works once created and not after it is deleted.
	status, _, body := e.send(t, request{path: path, header: http.Header{"Authorization": {"bearer " + h.partnerKey}}})
	if status != http.StatusOK {
		t.Errorf("lowercase bearer: %d %s", status, body)
	}
	var keys []apiKeyDTO
	e.getJSON(t, "/api/apikeys", adminToken, &keys)
	if len(keys) != 6 {
		t.Fatalf("%d keys, want 6", len(keys))
	}
	for _, k := range keys {
		if k.Key != "" {
			t.Errorf("key %s listed with its secret", k.Name)
		}
	}
	i := slices.IndexFunc(keys, func(k apiKeyDTO) bool { return k.ScopeGuid == h.partner.PartnerGuid })
	if i < 0 || keys[i].Scope != "partner" {
		t.Fatalf("no partner key listed: %+v", keys)
	}
	status, _, body = e.send(t, request{method: "DELETE", path: "/api/apikeys/" + keys[i].Id, key: adminToken})
	if status != http.StatusNoContent || len(body) != 0 {
		t.Fatalf("DELETE key: %d %s", status, body)
	}
	status, rh, body := e.get(t, path, h.partnerKey)
	wantError(t, "deleted key", status, rh, body, http.StatusUnauthorized, responseStatus{ErrorCode: "Unauthorized", Message: "Not Authenticated"})

	// Only the operator manages partners and keys.
	for _, key := range []string{h.resellerKey, h.serviceKey, h.otherPartnerKey} {
		for _, rq := range []request{{path: "/api/partners"}, {path: "/api/apikeys"}, {method: "POST", path: "/api/partners", body: []byte(`{"name":"x"}`)}} {
			rq.key = key
			status, rh, body := e.send(t, rq)
			wantError(t, rq.method+" "+rq.path, status, rh, body, http.StatusForbidden, responseStatus{ErrorCode: "Forbidden", Message: "this API key may not do that"})
		}
	}
}

func TestEventsEndpoint(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	h := mustHierarchy(t, e)
	svc := h.svc.ServiceGuid
	user := "0123456789abcdef0123456789abcdef"
	ts := func(d time.Duration) string { return epoch.Add(d).Format(time.RFC3339) }
	msg := func(id string, at string) string {
		return fmt.Sprintf(`{"id":%q,"time":%q,"type":"message","userGuid":%q,"attachments":1}`, id, at, user)
	}

	t.Run("PerEventOutcomes", func(t *testing.T) {
		// Per-event outcomes, in one JSON array.
		batch := "[" + strings.Join([]string{
			msg("m1", ts(-time.Hour)),   // 0 accepted
			msg("m1", ts(-2*time.Hour)), // 1 duplicate: the same id
			`{"time":"` + ts(-time.Hour) + `","type":"message","userGuid":"` + user + `"}`, // 2 no id
			`{"id":"t1","time":"` + ts(-time.Hour) + `","type":"weekly"}`,                  // 3 unknown type
			`{"id":"m2","time":"` + ts(-time.Hour) + `","type":"message"}`,                 // 4 no sender
			msg("old", epoch.Add(-dedupeWindow-time.Hour).Format(time.RFC3339)),            // 5 before the window
			msg("future", ts(time.Hour)),                                                   // 6 ahead of the clock
			`42`,                                                                           // 7 not an object
			`{"id":"g1","time":"` + ts(-time.Hour) + `","type":"users","total":3}`,         // 8 gauge without its counts
			`{"id":"m3","time":"2026-03-10T14:00:00+02:00","type":"MESSAGE","userGuid":"{01234567-89AB-CDEF-0123-456789ABCDEF}","recipients":["ann@example.com","0123456789abcdef0123456789abcdef"]}`, // 9 accepted
		}, ",") + "]"
		status, rh, body := e.postEvents(t, svc, h.serviceKey, "application/json", []byte(batch), false)
		if status != http.StatusOK {
			t.Fatalf("events: %d %s", status, body)
		}
		var res eventsResult
		decodeJSON(t, rh, body, &res)
		if res.Accepted != 2 || res.Duplicates != 1 || res.Rejected != 7 {
			t.Errorf("accepted %d, duplicates %d, rejected %d; want 2, 1, 7: %s", res.Accepted, res.Duplicates, res.Rejected, body)
		}
		type outcome struct {
			index    int
			id, code string
		}
		var got []outcome
		for _, x := range res.Errors {
			got = append(got, outcome{x.Index, x.ID, x.Code})
			if x.Message == "" {
				t.Errorf("error %d has no message", x.Index)
			}
		}
		want := []outcome{{2, "", "missing_field"}, {3, "t1", "invalid_field"}, {4, "m2", "missing_field"},
			{5, "old", "outside_window"}, {6, "future", "in_future"}, {7, "", "malformed_event"}, {8, "g1", "missing_field"}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("errors\n got %v\nwant %v", got, want)
		}
	})
	t.Run("MisnamedField", func(t *testing.T) {
		// A misnamed field rejects its event, naming the field meant, so that
		// the corrected event is accepted rather than refused as a duplicate of
		// one stored without the field.
		bad := `{"id":"x1","time":"` + ts(-time.Hour) + `","type":"message","userGuid":"` + user + `","Attachments":2}`
		status, rh, body := e.postEvents(t, svc, h.serviceKey, "application/x-ndjson", []byte(bad), false)
		res := eventsResult{}
		decodeJSON(t, rh, body, &res)
		if status != http.StatusOK || res.Accepted != 0 || res.Rejected != 1 || len(res.Errors) != 1 ||
			res.Errors[0] != (eventError{Index: 0, ID: "x1", Code: "unknown_field", Message: "Attachments is not a field of message events: did you mean attachments?"}) {
			t.Fatalf("unknown field: %d %s", status, body)
		}
		fixed := strings.Replace(bad, "Attachments", "attachments", 1)
		status, rh, body = e.postEvents(t, svc, h.serviceKey, "application/x-ndjson", []byte(fixed), false)
		res = eventsResult{}
		decodeJSON(t, rh, body, &res)
		if status != http.StatusOK || res.Accepted != 1 || res.Duplicates != 0 || res.Rejected != 0 {
			t.Fatalf("corrected event: %d %s", status, body)
		}
	})
	t.Run("NDJSONFromEveryKey", func(t *testing.T) {
		// NDJSON, gzipped, as each key that sees the service; what is already
		// recorded is a duplicate whoever sends it.
		nd := msg("m1", ts(-time.Hour)) + "\n" + msg("n1", ts(-time.Minute)) + "\n"
		for i, key := range []string{adminToken, h.partnerKey, h.resellerKey} {
			status, rh, body := e.postEvents(t, svc, key, "application/x-ndjson", []byte(nd), i != 1)
			if status != http.StatusOK {
				t.Fatalf("ndjson: %d %s", status, body)
			}
			var res eventsResult
			decodeJSON(t, rh, body, &res)
			wantAccepted := 0
			if i == 0 {
				wantAccepted = 1
			}
			if res.Accepted != wantAccepted || res.Duplicates != 2-wantAccepted || res.Rejected != 0 || len(res.Errors) != 0 {
				t.Errorf("ndjson #%d: %+v", i, res)
			}
		}
	})
	t.Run("EventsObject", func(t *testing.T) {
		// {"events":[…]} is a body too.
		status, _, body := e.postEvents(t, svc, h.serviceKey, "application/json; charset=utf-8", []byte(`{"events":[`+msg("e1", ts(-time.Minute))+`]}`), false)
		if status != http.StatusOK || !bytes.Contains(body, []byte(`"accepted":1`)) {
			t.Errorf("events object: %d %s", status, body)
		}
	})
	t.Run("Counted", func(t *testing.T) {
		// What was accepted is counted: m1, m3, x1, n1, e1 today.
		var u serviceUsage
		e.getJSON(t, "/api/services/"+svc+"/serviceusage", h.serviceKey, &u)
		if u.TotalMessageCount != 5 || u.TotalAttachmentCount != 5 {
			t.Errorf("today: %d messages, %d attachments; want 5, 5", u.TotalMessageCount, u.TotalAttachmentCount)
		}
	})
	t.Run("BodyFailures", func(t *testing.T) {
		// Failures of the body as a whole.
		f := func(what string, key, contentType string, body string, gz bool, wantStatus int, want responseStatus) {
			t.Helper()
			status, rh, rb := e.postEvents(t, svc, key, contentType, []byte(body), gz)
			wantError(t, what, status, rh, rb, wantStatus, want)
		}
		f("text/plain", h.serviceKey, "text/plain", msg("x", ts(0)), false, http.StatusUnsupportedMediaType,
			responseStatus{ErrorCode: "UnsupportedMediaType", Message: `Content-Type "text/plain" is not supported: use application/json or application/x-ndjson`})
		f("form", h.serviceKey, "application/x-www-form-urlencoded", "a=b", false, http.StatusUnsupportedMediaType,
			responseStatus{ErrorCode: "UnsupportedMediaType", Message: `Content-Type "application/x-www-form-urlencoded" is not supported: use application/json or application/x-ndjson`})
		notJSON := func(body string) {
			t.Helper()
			status, rh, rb := e.postEvents(t, svc, h.serviceKey, "application/json", []byte(body), false)
			var got errorBody
			if status != http.StatusBadRequest {
				t.Errorf("body %q: %d %s", body, status, rb)
				return
			}
			decodeJSON(t, rh, rb, &got)
			if rs := got.ResponseStatus; rs.ErrorCode != "ArgumentException" || !strings.HasPrefix(rs.Message, "body ") ||
				len(rs.Errors) != 1 || rs.Errors[0].FieldName != "Body" || rs.Errors[0].Message != rs.Message {
				t.Errorf("body %q: %+v", body, rs)
			}
		}
		notJSON("this is not JSON")
		notJSON(`{"events":`)
		notJSON(`"a string"`)

		// More events than the limit: refused whole, before they are parsed,
		// however small the body (here 1 KB of gzip).
		f("too many events", h.serviceKey, "application/json", "["+strings.Repeat("1,", 100_000)+"1]", true,
			http.StatusRequestEntityTooLarge, responseStatus{ErrorCode: "RequestTooLarge",
				Message: "body holds more than 100000 events, the limit per request (--max-events of usaged serve): send them in batches of at most 100000"})
		// Many bad events: the first 1,000 listed, the rest counted.
		status, rh, body := e.postEvents(t, svc, h.serviceKey, "application/json", []byte("["+strings.Repeat("1,", 4_999)+"1]"), true)
		var many eventsResult
		decodeJSON(t, rh, body, &many)
		if status != http.StatusOK || many.Rejected != 5_000 || len(many.Errors) != 1_000 || many.ErrorsOmitted != 4_000 ||
			many.Errors[0].Index != 0 || many.Errors[999].Index != 999 {
			t.Errorf("5,000 bad events: %d, rejected %d, %d errors listed, %d omitted; want 200, 5000, 1000, 4000",
				status, many.Rejected, len(many.Errors), many.ErrorsOmitted)
		}
		status, _, body = e.send(t, request{method: "POST", path: "/api/services/" + svc + "/events", key: h.serviceKey, body: []byte("not gzip"),
			header: http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"gzip"}}})
		if status != http.StatusBadRequest || !bytes.Contains(body, []byte(`"errorCode":"ArgumentException"`)) || !bytes.Contains(body, []byte("gzip")) {
			t.Errorf("bad gzip: %d %s", status, body)
		}
	})
	t.Run("OtherKeys", func(t *testing.T) {
		// Keys that do not see the service cannot post to it, nor learn it exists.
		for _, key := range []string{h.otherPartnerKey, h.otherResellerKey, h.otherServiceKey} {
			status, rh, rb := e.postEvents(t, svc, key, "application/json", []byte("["+msg("x", ts(0))+"]"), false)
			wantError(t, "foreign key", status, rh, rb, http.StatusNotFound, notFound(svc))
		}
		status, rh, body := e.postEvents(t, h.sibling.ServiceGuid, h.serviceKey, "application/json", []byte("["+msg("x", ts(0))+"]"), false)
		wantError(t, "another service's key", status, rh, body, http.StatusNotFound, notFound(h.sibling.ServiceGuid))
	})
}
