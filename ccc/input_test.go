package ccc_test

import (
	"net/http"
	"slices"
	"testing"
)

// Untrusted input through the API: names that would run as spreadsheet
// formulas, names that are not text, and what a key learns from a Guid it
// does not own.

func TestCSVFormulaNames(t *testing.T) {
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
