package ccc_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// The registry routes — services, collections, resellers — and how keys are
// scoped across them.

func TestServiceRouteErrors(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	h := mustHierarchy(t, e)
	user := "0123456789abcdef0123456789abcdef"
	routes := []struct {
		op, method, path string // path with %s for the ServiceGuid
		body             string
	}{
		{"GetServiceUsage", "GET", "/api/services/%s/serviceusage", ""},
		{"GetServiceUsersUsage", "GET", "/api/services/%s/users/usage", ""},
		{"GetServiceUserUsage", "GET", "/api/services/%s/users/" + user + "/usage", ""},
		{"GetService", "GET", "/api/services/%s", ""},
		{"UpdateServiceStatus", "PUT", "/api/services/%s/status", `{"status":"Blocked"}`},
		{"PostServiceEvents", "POST", "/api/services/%s/events", `[]`},
	}
	for _, rt := range routes {
		f := func(service, key string, status int, want responseStatus) {
			t.Helper()
			rq := request{method: rt.method, path: strings.Replace(rt.path, "%s", url.PathEscape(service), 1), key: key}
			if rt.body != "" {
				rq.body = []byte(rt.body)
				rq.header = http.Header{"Content-Type": {"application/json"}}
			}
			s, rh, body := e.send(t, rq)
			wantError(t, rt.op+" "+service, s, rh, body, status, want)
		}
		// Not a Guid: 400, as the reference shows it.
		for _, bad := range []string{"abc", "0123456789abcdef0123456789abcde", "0123456789abcdef0123456789abcdefa", "01234567-89ab-cdef-0123_456789abcdef", "{0123456789abcdef0123456789abcdef"} {
			f(bad, adminToken, http.StatusBadRequest, bindFailure(rt.op, "ServiceGuid", bad))
		}
		// Unknown, or not the caller's: 404 alike, never 403.
		missing := "fedcba9876543210fedcba9876543210"
		f(missing, adminToken, http.StatusNotFound, notFound(missing))
		f(strings.ToUpper(dashed(missing)), h.partnerKey, http.StatusNotFound, notFound(missing))
		svc := h.svc.ServiceGuid
		for _, key := range []string{h.otherPartnerKey, h.otherResellerKey, h.otherServiceKey} {
			f(svc, key, http.StatusNotFound, notFound(svc))
			f(dashed(svc), key, http.StatusNotFound, notFound(svc))
		}
		f(h.sibling.ServiceGuid, h.serviceKey, http.StatusNotFound, notFound(h.sibling.ServiceGuid))
	}
	// An unknown route under a CCC prefix is a ServiceStack-shaped 404.
	s, rh, body := e.get(t, "/api/services/"+h.svc.ServiceGuid+"/nothing/here", adminToken)
	wantError(t, "unknown route", s, rh, body, http.StatusNotFound, responseStatus{ErrorCode: "NotFound", Message: "no such route"})
}

func TestCreateService(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	h := mustHierarchy(t, e)
	x := h.reseller.ResellerGuid
	f := func(key, body string, status int, want responseStatus) {
		t.Helper()
		s, rh, rb := e.send(t, request{method: "POST", path: "/api/services", key: key, body: []byte(body),
			header: http.Header{"Content-Type": {"application/json"}}})
		wantError(t, body, s, rh, rb, status, want)
	}
	notEmpty := func(field, display string) fieldError {
		return fieldError{ErrorCode: "NotEmpty", FieldName: field, Message: "'" + display + "' must not be empty."}
	}
	validation := func(errs ...fieldError) responseStatus {
		return responseStatus{ErrorCode: errs[0].ErrorCode, Message: errs[0].Message, Errors: errs}
	}

	// Validation reports every field at once, PascalCase.
	f(adminToken, `{"resellerGuid":"`+x+`"}`, 400, validation(notEmpty("Name", "Name"), notEmpty("PrimaryDomain", "Primary Domain")))
	f(adminToken, `{"resellerGuid":"`+x+`","name":"  ","primaryDomain":""}`, 400, validation(notEmpty("Name", "Name"), notEmpty("PrimaryDomain", "Primary Domain")))
	long := strings.Repeat("r", 251)
	tooLong := fieldError{ErrorCode: "MaximumLength", FieldName: "ReferenceId", Message: "'Reference Id' must be 250 characters or fewer. You entered 251 characters."}
	f(adminToken, `{"resellerGuid":"`+x+`","name":"N","primaryDomain":"n.example.com","referenceId":"`+long+`"}`, 400, validation(tooLong))
	f(adminToken, `{"resellerGuid":"`+x+`","referenceId":"`+long+`","initialTerm":-1,"primaryDomain":"n.example.com"}`, 400, validation(
		notEmpty("Name", "Name"), tooLong,
		fieldError{ErrorCode: "GreaterThanOrEqual", FieldName: "InitialTerm", Message: "'Initial Term' must be greater than or equal to '0'. You entered -1."}))
	f(adminToken, `{"resellerGuid":"`+x+`","name":"N","primaryDomain":"not a domain"}`, 400, validation(
		fieldError{ErrorCode: "Predicate", FieldName: "PrimaryDomain", Message: `'Primary Domain' is not a domain name: "not a domain".`}))
	f(adminToken, `{"name":"N","primaryDomain":"n.example.com"}`, 400, validation(notEmpty("ResellerGuid", "Reseller Guid")))
	f(h.partnerKey, `{"name":"N","primaryDomain":"n.example.com"}`, 400, validation(notEmpty("ResellerGuid", "Reseller Guid")))

	// Values that cannot be bound.
	f(adminToken, `{"resellerGuid":"nope","name":"N","primaryDomain":"n.example.com"}`, 400, bindFailure("CreateService", "ResellerGuid", "nope"))
	f(adminToken, `{"resellerGuid":"`+x+`","name":"N","primaryDomain":"n.example.com","status":"Paused"}`, 400, bindFailure("CreateService", "Status", "Paused"))
	f(adminToken, `{"resellerGuid":"`+x+`","name":"N","primaryDomain":"n.example.com","trialEndDate":"soon"}`, 400, bindFailure("CreateService", "TrialEndDate", "soon"))
	f(adminToken, `{"name":`, 400, responseStatus{ErrorCode: "SerializationException", Message: "Unable to bind to request 'CreateService'"})
	s, rh, rb := e.send(t, request{method: "POST", path: "/api/services", key: adminToken, body: []byte(`name=N`),
		header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}})
	wantError(t, "form body", s, rh, rb, http.StatusUnsupportedMediaType, responseStatus{ErrorCode: "UnsupportedMediaType",
		Message: `Content-Type "application/x-www-form-urlencoded" is not supported: send application/json`})

	// Who may create where: a service key never; a reseller's key in its
	// own reseller (the default); a partner's in its resellers.
	valid := `{"name":"N","primaryDomain":"n.example.com","resellerGuid":"` + x + `"}`
	f(h.serviceKey, valid, 403, responseStatus{ErrorCode: "Forbidden", Message: "this API key may not do that"})
	f(h.otherPartnerKey, valid, 404, responseStatus{ErrorCode: "NotFound", Message: "Reseller " + x + " not found"})
	f(h.otherResellerKey, valid, 404, responseStatus{ErrorCode: "NotFound", Message: "Reseller " + x + " not found"})
	var svc serviceDTO
	e.postJSON(t, "POST", "/api/services", h.resellerKey, map[string]any{"name": "Own", "primaryDomain": "own.example.com",
		"referenceId": strings.Repeat("r", 250)}, &svc)
	if svc.ResellerGuid != x || svc.PartnerGuid != h.partner.PartnerGuid || svc.Status != "TrialActive" || len(svc.ReferenceId) != 250 {
		t.Errorf("created by the reseller's key: %+v", svc)
	}
	// A chosen Guid, in any form, is kept, once.
	g := "aaaaaaaabbbbccccddddeeeeeeeeeeee"
	e.postJSON(t, "POST", "/api/services", h.partnerKey, map[string]any{"serviceGuid": "{" + strings.ToUpper(dashed(g)) + "}", "name": "Chosen",
		"primaryDomain": "chosen.example.com", "resellerGuid": dashed(x)}, &svc)
	if svc.ServiceGuid != g {
		t.Errorf("chosen Guid %s", svc.ServiceGuid)
	}
	f(adminToken, `{"serviceGuid":"`+g+`","name":"Again","primaryDomain":"again.example.com","resellerGuid":"`+x+`"}`, 409,
		responseStatus{ErrorCode: "Conflict", Message: "service " + g + " already exists"})
}

func TestScoping(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	a, b := e.createPartner(t, "Partner A"), e.createPartner(t, "Partner B")
	a2 := e.createReseller(t, a.PartnerGuid, "Beta Reseller") // listed by name, so after Alpha
	a1 := e.createReseller(t, a.PartnerGuid, "Alpha Reseller")
	b1 := e.createReseller(t, b.PartnerGuid, "Gamma Reseller")
	east := e.createCollection(t, a.PartnerGuid, "East")
	west := e.createCollection(t, a.PartnerGuid, "West")
	north := e.createCollection(t, b.PartnerGuid, "North")
	mk := func(name, domain, code string, x resellerDTO, col *collectionDTO) serviceDTO {
		t.Helper()
		body := map[string]any{"name": name, "primaryDomain": domain, "serviceCode": code, "resellerGuid": x.ResellerGuid}
		if col != nil {
			body["collectionGuid"] = col.CollectionGuid
		}
		e.clk.Set(e.clk.Now().Add(1e9)) // creation order is listing order
		return e.createService(t, body)
	}
	alpha := mk("Alpha Mail", "alpha.example.com", "AM-1", a1, &east)
	beta := mk("Beta Mail", "beta.example.org", "BM-2", a1, nil)
	gamma := mk("Gamma Files", "gamma.example.com", "GF-3", a2, &west)
	delta := mk("Delta Mail", "delta.example.net", "DM-4", b1, &north)
	keyA, keyB := e.createKey(t, "partner", a.PartnerGuid), e.createKey(t, "partner", b.PartnerGuid)
	keyA1, keyA2 := e.createKey(t, "reseller", a1.ResellerGuid), e.createKey(t, "reseller", a2.ResellerGuid)
	keyAlpha, keyBeta := e.createKey(t, "service", alpha.ServiceGuid), e.createKey(t, "service", beta.ServiceGuid)

	t.Run("Search", func(t *testing.T) {
		f := func(query, key string, want []serviceDTO, pg, size, total int) {
			t.Helper()
			var got page[serviceDTO]
			e.getJSON(t, "/api/services?"+query, key, &got)
			if got.CurrentPage != pg || got.PageSize != size || got.TotalItems != total || got.TotalPages != (total+size-1)/size {
				t.Errorf("%s: page %d of %d, size %d, %d items; want page %d, size %d, %d items",
					query, got.CurrentPage, got.TotalPages, got.PageSize, got.TotalItems, pg, size, total)
			}
			var names, wantNames []string
			for _, s := range got.Results {
				names = append(names, s.Name)
			}
			for _, s := range want {
				wantNames = append(wantNames, s.Name)
			}
			if !slices.Equal(names, wantNames) {
				t.Errorf("%s: %q, want %q", query, names, wantNames)
			}
			for k := range min(len(got.Results), len(want)) {
				if got.Results[k] != want[k] {
					t.Errorf("%s: %+v, want %+v", query, got.Results[k], want[k])
				}
			}
		}
		all := []serviceDTO{alpha, beta, gamma, delta}
		f("", adminToken, all, 1, 25, 4)
		f("Name=mail", adminToken, []serviceDTO{alpha, beta, delta}, 1, 25, 3)
		f("name=MAIL&code=gf", adminToken, all, 1, 25, 4) // OR-combined
		f("Domain=.org", adminToken, []serviceDTO{beta}, 1, 25, 1)
		f("Domain=example.com&Code=dm", adminToken, []serviceDTO{alpha, gamma, delta}, 1, 25, 3)
		f("Code=zz", adminToken, nil, 1, 25, 0)
		f("Name=mail&PageSize=2", adminToken, []serviceDTO{alpha, beta}, 1, 2, 3)
		f("Name=mail&PageSize=2&Page=2", adminToken, []serviceDTO{delta}, 2, 2, 3)
		f("Name=mail", keyA, []serviceDTO{alpha, beta}, 1, 25, 2)
		f("", keyB, []serviceDTO{delta}, 1, 25, 1)
		f("", keyA1, []serviceDTO{alpha, beta}, 1, 25, 2)
		f("", keyA2, []serviceDTO{gamma}, 1, 25, 1)
		f("Name=mail", keyA2, nil, 1, 25, 0)
		f("Name=mail&Code=dm", keyAlpha, []serviceDTO{alpha}, 1, 25, 1)
		f("PageSize=1&Page=2", keyA, []serviceDTO{beta}, 2, 1, 3)

		// Single services answer the same way.
		var got serviceDTO
		e.getJSON(t, "/api/services/"+gamma.ServiceGuid, keyA, &got)
		if got != gamma {
			t.Errorf("GetService: %+v, want %+v", got, gamma)
		}
		for _, key := range []string{keyB, keyA1, keyBeta} {
			s, h, body := e.get(t, "/api/services/"+gamma.ServiceGuid, key)
			wantError(t, "foreign GetService", s, h, body, http.StatusNotFound, notFound(gamma.ServiceGuid))
		}
	})

	t.Run("Collections", func(t *testing.T) {
		f := func(key string, want ...collectionDTO) {
			t.Helper()
			s, h, body := e.get(t, "/api/collections", key)
			if s != http.StatusOK || !bytes.HasPrefix(body, []byte("[")) {
				t.Fatalf("collections: %d %s", s, body)
			}
			var got []collectionDTO
			decodeJSON(t, h, body, &got)
			if want == nil {
				want = []collectionDTO{}
			}
			if !slices.Equal(got, want) {
				t.Errorf("collections\n got %+v\nwant %+v", got, want)
			}
		}
		f(adminToken, east, north, west)
		f(keyA, east, west)
		f(keyA2, east, west) // a reseller sees its partner's collections
		f(keyB, north)
		f(keyAlpha, east) // a service its own
		f(keyBeta)

		g := func(col collectionDTO, key string, ok bool) {
			t.Helper()
			s, h, body := e.get(t, "/api/collections/"+strings.ToUpper(col.CollectionGuid), key)
			if !ok {
				wantError(t, "foreign collection", s, h, body, http.StatusNotFound,
					responseStatus{ErrorCode: "NotFound", Message: "Collection " + col.CollectionGuid + " not found"})
				return
			}
			var got collectionDTO
			decodeJSON(t, h, body, &got)
			if s != http.StatusOK || got != col {
				t.Errorf("collection %s: %d %+v", col.Name, s, got)
			}
		}
		g(west, adminToken, true)
		g(west, keyA1, true)
		g(west, keyB, false)
		g(north, keyA, false)
		g(west, keyAlpha, false)
		g(east, keyAlpha, true)
		s, h, body := e.get(t, "/api/collections/east", keyA)
		wantError(t, "non-Guid collection", s, h, body, http.StatusBadRequest, bindFailure("GetCollection", "CollectionGuid", "east"))

		// A partner's key creates collections in its own partner only.
		var c collectionDTO
		e.postJSON(t, "POST", "/api/collections", keyB, map[string]string{"name": "South"}, &c)
		if c.PartnerGuid != b.PartnerGuid || c.Name != "South" {
			t.Errorf("created %+v", c)
		}
		f(keyB, north, c)
		for _, tc := range []struct {
			key, body string
			status    int
			want      responseStatus
		}{
			{keyA1, `{"name":"X"}`, 403, responseStatus{ErrorCode: "Forbidden", Message: "this API key may not do that"}},
			{keyAlpha, `{"name":"X"}`, 403, responseStatus{ErrorCode: "Forbidden", Message: "this API key may not do that"}},
			{keyB, `{"name":"X","partnerGuid":"` + a.PartnerGuid + `"}`, 404, responseStatus{ErrorCode: "NotFound", Message: "Partner " + a.PartnerGuid + " not found"}},
			{adminToken, `{"name":""}`, 400, responseStatus{ErrorCode: "NotEmpty", Message: "'Name' must not be empty.", Errors: []fieldError{
				{ErrorCode: "NotEmpty", FieldName: "Name", Message: "'Name' must not be empty."},
				{ErrorCode: "NotEmpty", FieldName: "PartnerGuid", Message: "'Partner Guid' must not be empty."}}}},
		} {
			s, h, body := e.send(t, request{method: "POST", path: "/api/collections", key: tc.key, body: []byte(tc.body)})
			wantError(t, "POST collection "+tc.body, s, h, body, tc.status, tc.want)
		}
	})

	t.Run("Resellers", func(t *testing.T) {
		path := "/api/partners/" + a.PartnerGuid + "/resellers"
		for _, key := range []string{adminToken, keyA} {
			s, h, body := e.get(t, path, key)
			if s != http.StatusOK || !bytes.HasPrefix(body, []byte("[")) {
				t.Fatalf("resellers: %d %s", s, body)
			}
			var got []resellerDTO
			decodeJSON(t, h, body, &got)
			if !slices.Equal(got, []resellerDTO{a1, a2}) {
				t.Errorf("resellers\n got %+v\nwant %+v", got, []resellerDTO{a1, a2})
			}
		}
		forbidden := responseStatus{ErrorCode: "Forbidden", Message: "this API key may not do that"}
		for _, key := range []string{keyA1, keyAlpha} {
			s, h, body := e.get(t, path, key)
			wantError(t, "resellers as a reseller or service", s, h, body, http.StatusForbidden, forbidden)
		}
		s, h, body := e.get(t, path, keyB)
		wantError(t, "another partner's resellers", s, h, body, http.StatusNotFound, responseStatus{ErrorCode: "NotFound", Message: "Partner " + a.PartnerGuid + " not found"})
		s, h, body = e.send(t, request{method: "POST", path: path, key: keyB, body: []byte(`{"name":"Sneaky"}`)})
		wantError(t, "POST another partner's reseller", s, h, body, http.StatusNotFound, responseStatus{ErrorCode: "NotFound", Message: "Partner " + a.PartnerGuid + " not found"})
		var x resellerDTO
		e.postJSON(t, "POST", "/api/partners/"+strings.ToUpper(dashed(a.PartnerGuid))+"/resellers", keyA, map[string]string{"name": "Aardvark Reseller"}, &x)
		var got []resellerDTO
		e.getJSON(t, path, keyA, &got)
		if len(got) != 3 || got[0] != x || x.PartnerGuid != a.PartnerGuid {
			t.Errorf("after POST: %+v", got)
		}
		s, h, body = e.send(t, request{method: "POST", path: path, key: keyA, body: []byte(`{"name":" "}`)})
		wantError(t, "empty reseller name", s, h, body, http.StatusBadRequest, responseStatus{ErrorCode: "NotEmpty", Message: "'Name' must not be empty.",
			Errors: []fieldError{{ErrorCode: "NotEmpty", FieldName: "Name", Message: "'Name' must not be empty."}}})

		// Partners are the operator's to list.
		var partners []partnerDTO
		e.getJSON(t, "/api/partners", adminToken, &partners)
		if !slices.Equal(partners, []partnerDTO{a, b}) {
			t.Errorf("partners %+v", partners)
		}
	})

	t.Run("Usage", func(t *testing.T) {
		f := func(path, key string, want ...serviceDTO) {
			t.Helper()
			var got page[serviceUsage]
			e.getJSON(t, path, key, &got)
			var gs, ws []string
			for _, u := range got.Results {
				gs = append(gs, u.ServiceGuid)
			}
			for _, s := range want {
				ws = append(ws, s.ServiceGuid)
			}
			if !slices.Equal(gs, ws) || got.TotalItems != len(want) {
				t.Errorf("%s: %d items %v, want %v", path, got.TotalItems, gs, ws)
			}
		}
		f("/api/services/usage", keyA, alpha, beta, gamma)
		f("/api/services/usage", keyA1, alpha, beta)
		f("/api/services/usage", keyAlpha, alpha)
		f("/api/services/usage", keyB, delta)
		f("/api/services/usage?ResellerGuid="+a2.ResellerGuid, keyA1)
		f("/api/resellers/"+a1.ResellerGuid+"/serviceusagelist", keyA, alpha, beta)
		f("/api/resellers/"+a1.ResellerGuid+"/serviceusagelist", keyA1, alpha, beta)
		// The usage of a service the key does not see is not found.
		for _, key := range []string{keyB, keyA2, keyBeta} {
			s, h, body := e.get(t, "/api/services/"+alpha.ServiceGuid+"/serviceusage", key)
			wantError(t, "foreign usage", s, h, body, http.StatusNotFound, notFound(alpha.ServiceGuid))
			if bytes.Contains(body, []byte(alpha.Name)) {
				t.Errorf("a foreign key learns the service's name: %s", body)
			}
		}
	})
}

// TestBodyBinding pins how the registry's JSON bodies bind: names ignore
// case, unknown properties are ignored, wrong types name their field.
func TestBodyBinding(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	h := mustHierarchy(t, e)
	var svc serviceDTO
	e.postJSON(t, "POST", "/api/services", adminToken, json.RawMessage(`{"NAME":"Cased","PrimaryDomain":"cased.example.com","ResellerGUID":"`+
		h.reseller.ResellerGuid+`","unknown":{"x":1},"Contact":{"EMAIL":"c@example.com"}}`), &svc)
	if svc.Name != "Cased" || svc.PrimaryDomain != "cased.example.com" || svc.Contact == nil || svc.Contact.Email != "c@example.com" {
		t.Errorf("case-insensitive body: %+v", svc)
	}
	s, rh, body := e.send(t, request{method: "POST", path: "/api/services", key: adminToken, body: []byte(`{"name":"N","primaryDomain":"n.example.com","resellerGuid":"` +
		h.reseller.ResellerGuid + `","contact":{"phoneNumber":5550100}}`)})
	var got errorBody
	if s != http.StatusBadRequest {
		t.Fatalf("wrong type: %d %s", s, body)
	}
	decodeJSON(t, rh, body, &got)
	if rs := got.ResponseStatus; rs.ErrorCode != "SerializationException" || len(rs.Errors) != 1 || rs.Errors[0].FieldName != "Contact.PhoneNumber" ||
		rs.Errors[0].Message != "'5550100' is an Invalid value for 'Contact.PhoneNumber'" {
		t.Errorf("wrong type: %+v", rs)
	}
}
