package ccc_test

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// Untrusted input through the API: names that would run as spreadsheet
// formulas, names that are not text, and what a key learns from a Guid it
// does not own.

func TestCSVFormulaNames(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	h := mustHierarchy(t, e)
	hostile := []string{`=HYPERLINK("http://evil.example","open")`, "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "  =1+1", "-12"}
	for i, name := range hostile {
		e.createService(t, map[string]any{"name": name, "resellerGuid": h.reseller.ResellerGuid,
			"primaryDomain": "h" + string(rune('a'+i)) + ".example.com", "referenceId": name})
	}
	status, _, body := e.get(t, "/api/services/usage.csv?PageSize=100", h.partnerKey)
	if status != http.StatusOK {
		t.Fatalf("%d %s", status, body)
	}
	rows := readCSV(t, body)
	name, ref, total := slices.Index(rows[0], "Name"), slices.Index(rows[0], "ReferenceId"), slices.Index(rows[0], "TotalMessageCount")
	if name < 0 || ref < 0 || total < 0 {
		t.Fatalf("header %q", rows[0])
	}
	got := map[string]bool{}
	for _, r := range rows[1:] {
		got["Name "+r[name]] = true
		got["ReferenceId "+r[ref]] = true
		if r[total] != "0" {
			t.Errorf("TotalMessageCount %q: a number stays a number", r[total])
		}
	}
	// Names are trimmed when they are stored; reference ids are kept as sent.
	for _, want := range []string{`Name '=HYPERLINK("http://evil.example","open")`, "Name '+cmd|' /C calc'!A0", "Name '-2+3",
		"Name '@SUM(A1)", "Name '=1+1", "ReferenceId '  =1+1", "Name -12", "ReferenceId -12", "Name Service", "Name Sibling"} {
		if !got[want] {
			t.Errorf("no %s in %q", want, rows)
		}
	}
}

// Every top-level route takes the format suffixes as the routes below it
// do: in any case, the same answer as ?format=, and an unknown extension is
// a ServiceStack 404 rather than the plain one of a path nobody serves.
func TestTopLevelSuffixes(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	h := mustHierarchy(t, e)
	formats := []struct{ suffix, format, contentType string }{
		{"", "json", "application/json; charset=utf-8"},
		{".json", "json", "application/json; charset=utf-8"},
		{".csv", "csv", "text/csv; charset=utf-8"},
		{".xml", "xml", "application/xml; charset=utf-8"},
		{".JSON", "json", "application/json; charset=utf-8"},
		{".Csv", "csv", "text/csv; charset=utf-8"},
		{".XML", "xml", "application/xml; charset=utf-8"},
	}
	n := 0
	routes := []struct {
		method, path, key string
		body              func() string // for POST: a new entity each time
	}{
		{"GET", "/api/services", h.partnerKey, nil},
		{"POST", "/api/services", h.partnerKey, func() string {
			return fmt.Sprintf(`{"name":"S%d","resellerGuid":%q,"primaryDomain":"s%d.example.com"}`, n, h.reseller.ResellerGuid, n)
		}},
		{"GET", "/api/collections", h.partnerKey, nil},
		{"POST", "/api/collections", h.partnerKey, func() string { return fmt.Sprintf(`{"name":"C%d"}`, n) }},
		{"GET", "/api/partners", adminToken, nil},
		{"POST", "/api/partners", adminToken, func() string { return fmt.Sprintf(`{"name":"P%d"}`, n) }},
		{"GET", "/api/apikeys", adminToken, nil},
		{"POST", "/api/apikeys", adminToken, func() string {
			return fmt.Sprintf(`{"name":"K%d","scope":"partner","scopeGuid":%q}`, n, h.partner.PartnerGuid)
		}},
	}
	for _, rt := range routes {
		for _, f := range formats {
			n++
			what := rt.method + " " + rt.path + f.suffix
			rq := request{method: rt.method, path: rt.path + f.suffix, key: rt.key}
			if rt.body != nil {
				rq.body, rq.header = []byte(rt.body()), http.Header{"Content-Type": {"application/json"}}
			}
			status, hdr, body := e.send(t, rq)
			if status != http.StatusOK || hdr.Get("Content-Type") != f.contentType {
				t.Errorf("%s: %d %q, want 200 %q: %.200s", what, status, hdr.Get("Content-Type"), f.contentType, body)
				continue
			}
			if rt.body != nil {
				continue
			}
			// A GET answers exactly what ?format= does.
			_, _, viaQuery := e.get(t, rt.path+"?format="+f.format, rt.key)
			if !bytes.Equal(body, viaQuery) {
				t.Errorf("%s answers\n%s\nbut ?format=%s\n%s", what, body, f.format, viaQuery)
			}
		}
	}
	for _, path := range []string{"/api/services.jsv", "/api/partners.html", "/api/resellers.json"} {
		status, hdr, body := e.get(t, path, adminToken)
		wantError(t, path, status, hdr, body, http.StatusNotFound, responseStatus{ErrorCode: "NotFound", Message: "no such route"})
	}
	// Paths that are no CCC route are left to the mux, as before.
	for _, path := range []string{"/api/servicesx.csv", "/api/other", "/api/v3.json"} {
		if status, hdr, _ := e.get(t, path, adminToken); status != http.StatusNotFound || hdr.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("%s: %d %q, want the mux's plain 404", path, status, hdr.Get("Content-Type"))
		}
	}
}

// Creating a service with the Guid of one the key may not see answers what
// reading that service does — 404, the same body — and creates nothing; a
// key that sees the service, and the operator, get the 409.
func TestCreateServiceForeignGuid(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	h := mustHierarchy(t, e)
	svc := h.svc.ServiceGuid
	create := func(key, guid, reseller string) (int, http.Header, []byte) {
		t.Helper()
		body := fmt.Sprintf(`{"serviceGuid":%q,"name":"Taken","primaryDomain":"taken.example.com","resellerGuid":%q}`, guid, reseller)
		return e.send(t, request{method: "POST", path: "/api/services", key: key, body: []byte(body),
			header: http.Header{"Content-Type": {"application/json"}}})
	}
	for _, c := range []struct {
		what, key, reseller string
	}{
		{"other partner's key", h.otherPartnerKey, h.otherReseller.ResellerGuid},
		{"other reseller's key", h.otherResellerKey, h.otherReseller.ResellerGuid},
		{"other reseller's key, its reseller implied", h.otherResellerKey, ""},
	} {
		for _, guid := range []string{svc, strings.ToUpper(dashed(svc)), "{" + dashed(svc) + "}"} {
			status, hdr, body := create(c.key, guid, c.reseller)
			wantError(t, c.what+" "+guid, status, hdr, body, http.StatusNotFound, notFound(svc))
			_, _, read := e.get(t, "/api/services/"+guid, c.key)
			if !bytes.Equal(body, read) {
				t.Errorf("%s: POST answers %s, a read of the service %s", c.what, body, read)
			}
		}
	}
	// Still one service with that Guid, as it was.
	var got serviceDTO
	e.getJSON(t, "/api/services/"+svc, adminToken, &got)
	if got.Name != h.svc.Name || got.ResellerGuid != h.reseller.ResellerGuid {
		t.Errorf("the service changed: %+v", got)
	}
	var all page[serviceDTO]
	e.getJSON(t, "/api/services?PageSize=1000", adminToken, &all)
	if all.TotalItems != 3 {
		t.Errorf("%d services, want the 3 of the hierarchy: %+v", all.TotalItems, all.Results)
	}
	// Who may see it is told it exists.
	conflict := responseStatus{ErrorCode: "Conflict", Message: "service " + svc + " already exists"}
	for _, key := range []string{adminToken, h.partnerKey, h.resellerKey} {
		status, hdr, body := create(key, svc, h.reseller.ResellerGuid)
		wantError(t, "a key that sees it", status, hdr, body, http.StatusConflict, conflict)
	}
}

// A name that is not printable text is refused as FluentValidation would
// refuse it, naming the field, on every route that names something; other
// text of a service and a collection is held to the same characters.
func TestNamesArePrintableText(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	h := mustHierarchy(t, e)
	type route struct {
		path string
		body func(name string) string // name as a JSON string literal
	}
	routes := []route{
		{"/api/partners", func(n string) string { return `{"name":` + n + `}` }},
		{"/api/partners/" + h.partner.PartnerGuid + "/resellers", func(n string) string { return `{"name":` + n + `}` }},
		{"/api/collections", func(n string) string { return `{"name":` + n + `,"partnerGuid":"` + h.partner.PartnerGuid + `"}` }},
		{"/api/services", func(n string) string {
			return `{"name":` + n + `,"resellerGuid":"` + h.reseller.ResellerGuid + `","primaryDomain":"n.example.com"}`
		}},
		{"/api/apikeys", func(n string) string {
			return `{"name":` + n + `,"scope":"partner","scopeGuid":"` + h.partner.PartnerGuid + `"}`
		}},
	}
	predicate := func(field, display, why string) responseStatus {
		m := "'" + display + "' holds " + why + ": send printable text in UTF-8."
		return responseStatus{ErrorCode: "Predicate", Message: m, Errors: []fieldError{{ErrorCode: "Predicate", FieldName: field, Message: m}}}
	}
	post := func(path, body string) (int, http.Header, []byte) {
		t.Helper()
		return e.send(t, request{method: "POST", path: path, key: adminToken, body: []byte(body),
			header: http.Header{"Content-Type": {"application/json"}}})
	}
	f := func(name, why string) {
		t.Helper()
		for _, rt := range routes {
			status, hdr, body := post(rt.path, rt.body(name))
			wantError(t, rt.path+" "+name, status, hdr, body, http.StatusBadRequest, predicate("Name", "Name", why))
		}
	}
	f(`"a\u0000b"`, "the control character U+0000 at character 2")
	f(`"line\nbreak"`, "the control character U+000A at character 5")
	f(`"c1\u009b"`, "the control character U+009B at character 3")
	f("\"bad\xffbyte\"", "U+FFFD, the replacement character that stands for invalid UTF-8, at character 4")
	f(`"lone \ud800 surrogate"`, "U+FFFD, the replacement character that stands for invalid UTF-8, at character 6")
	f(`"invoice\u202efdp.exe"`, "the invisible formatting character U+202E at character 8")

	// The other text fields, each named in PascalCase.
	svc := func(extra string) string {
		return `{"name":"N","resellerGuid":"` + h.reseller.ResellerGuid + `","primaryDomain":"n.example.com",` + extra + `}`
	}
	for _, c := range []struct{ body, field, display string }{
		{svc(`"referenceId":"r\u0007"`), "ReferenceId", "Reference Id"},
		{svc(`"serviceCode":"c\u0007"`), "ServiceCode", "Service Code"},
		{svc(`"contact":{"name":"c\u0007"}`), "Contact.Name", "Contact Name"},
		{svc(`"company":{"address":"c\u0007"}`), "Company.Address", "Company Address"},
		{`{"name":"C","siteName":"s\u0007","partnerGuid":"` + h.partner.PartnerGuid + `"}`, "SiteName", "Site Name"},
	} {
		path := "/api/services"
		if c.field == "SiteName" {
			path = "/api/collections"
		}
		status, hdr, body := post(path, c.body)
		wantError(t, c.field, status, hdr, body, http.StatusBadRequest, predicate(c.field, c.display, "the control character U+0007 at character 2"))
	}

	// What is refused was not stored.
	var partners []partnerDTO
	e.getJSON(t, "/api/partners", adminToken, &partners)
	if len(partners) != 2 {
		t.Errorf("partners %+v", partners)
	}
}
