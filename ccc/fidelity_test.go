package ccc_test

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// A service with no trial end, no effective date, no collection and no
// client answers those fields as .NET writes its value types — the zero
// date and the zero Guid — in every format; only nullable fields (strings,
// records) are left out, or i:nil in XML.
func TestServiceUsageNonNullable(t *testing.T) {
	t.Parallel()
	sc := mustScenario(t)
	e := sc.e
	const i = 3 // Tailspin: none of the optional fields set
	path := sc.usagePath(i) + "?Period=2026-02-01"

	status, _, body := e.get(t, path, adminToken)
	var js map[string]any
	if err := json.Unmarshal(body, &js); status != http.StatusOK || err != nil {
		t.Fatalf("%d %v %s", status, err, body)
	}
	for k, want := range map[string]string{"trialEndDate": zeroTime, "effectiveDate": zeroTime, "collectionGuid": zeroGuid, "clientGuid": zeroGuid} {
		if js[k] != want {
			t.Errorf("JSON %s = %v, want %s: %s", k, js[k], want, body)
		}
	}
	for _, k := range []string{"referenceId", "collectionName", "contact", "company", "responseStatus"} {
		if v, ok := js[k]; ok {
			t.Errorf("JSON has nullable %s = %v", k, v)
		}
	}

	status, _, body = e.get(t, path+"&format=csv", adminToken)
	rows := readCSV(t, body)
	if status != http.StatusOK || len(rows) != 2 {
		t.Fatalf("CSV %d %q", status, body)
	}
	col := func(name string) string { return rows[1][slices.Index(rows[0], name)] }
	for k, want := range map[string]string{"TrialEndDate": zeroTime, "EffectiveDate": zeroTime, "CollectionGuid": zeroGuid, "ClientGuid": zeroGuid, "ReferenceId": "", "Contact": ""} {
		if got := col(k); got != want {
			t.Errorf("CSV %s = %q, want %q", k, got, want)
		}
	}

	status, _, body = e.get(t, path+"&format=xml", adminToken)
	if status != http.StatusOK {
		t.Fatalf("XML %d %s", status, body)
	}
	var doc struct {
		Members []struct {
			XMLName xml.Name
			Nil     string `xml:"http://www.w3.org/2001/XMLSchema-instance nil,attr"`
			Text    string `xml:",chardata"`
		} `xml:",any"`
	}
	if err := xml.Unmarshal(body, &doc); err != nil {
		t.Fatalf("XML %v: %s", err, body)
	}
	got := map[string]string{}
	for _, m := range doc.Members {
		got[m.XMLName.Local] = m.Text
		if m.Nil == "true" {
			got[m.XMLName.Local] = "nil"
		}
	}
	want := map[string]string{
		"TrialEndDate": zeroTime, "EffectiveDate": zeroTime,
		"CollectionGuid": "00000000-0000-0000-0000-000000000000", "ClientGuid": "00000000-0000-0000-0000-000000000000",
		"ServiceGuid": dashed(sc.services[i].ServiceGuid),
		"ReferenceId": "nil", "CollectionName": "nil", "Contact": "nil", "Company": "nil",
		"TotalMessageCount": got["TotalMessageCount"], // a number, checked elsewhere
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("XML %s = %q, want %q", k, got[k], w)
		}
	}
	if !strings.Contains(string(body), `<ReferenceId i:nil="true"/>`) {
		t.Errorf("XML nulls are not i:nil: %s", body)
	}
}

// An unknown ?format= is a 400 naming the formats there are, not JSON
// passed off as what was asked for; JSONP still ignores ?format=.
func TestUnknownFormat(t *testing.T) {
	t.Parallel()
	sc := mustScenario(t)
	e := sc.e
	for _, f := range []string{"jsv", "html", "yaml"} {
		status, h, body := e.get(t, sc.usagePath(0)+"?format="+f, adminToken)
		msg := "Format '" + f + "' is not supported: use json, csv or xml (or a .json, .csv or .xml suffix, or an Accept header)."
		wantError(t, "format="+f, status, h, body, http.StatusBadRequest, responseStatus{ErrorCode: "ArgumentException", Message: msg,
			Errors: []fieldError{{ErrorCode: "ArgumentException", FieldName: "Format", Message: msg}}})
	}
	// Refused before authentication: it is the request's own mistake.
	status, _, _ := e.get(t, sc.usagePath(0)+"?FORMAT=jsv", "")
	if status != http.StatusBadRequest {
		t.Errorf("unauthenticated format=jsv: %d, want 400", status)
	}
	status, h, body := e.get(t, sc.usagePath(0)+"?format=jsv&callback=cb", adminToken)
	if status != http.StatusOK || !strings.HasPrefix(string(body), `cb({"serviceGuid":`) || h.Get("Content-Type") != "application/javascript; charset=utf-8" {
		t.Errorf("JSONP with format=jsv: %d %s", status, body)
	}
	for _, f := range []string{"json", "CSV", "xml", ""} {
		if status, _, body := e.get(t, sc.usagePath(0)+"?format="+f, adminToken); status != http.StatusOK {
			t.Errorf("format=%s: %d %s", f, status, body)
		}
	}
}

// A raw ';' in a callback is replaced like any other character a callback
// may not hold: the answer is still JSONP, and the name cannot end the call.
func TestJSONPSemicolon(t *testing.T) {
	t.Parallel()
	sc := mustScenario(t)
	e := sc.e
	status, h, body := e.get(t, sc.usagePath(0)+"?callback=cb;alert(1)", adminToken)
	if status != http.StatusOK || !strings.HasPrefix(string(body), `cb_alert_1_({"serviceGuid":`) || h.Get("Content-Type") != "application/javascript; charset=utf-8" {
		t.Errorf("got %d %q %.60s", status, h.Get("Content-Type"), body)
	}
}
