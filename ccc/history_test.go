package ccc_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// GetServiceUsageHistory answers, period by period, what the oracle counts
// and, byte for byte, what GetServiceUsage answers for each period.
func TestServiceUsageHistory(t *testing.T) {
	t.Parallel()
	sc := mustScenario(t)
	e := sc.e
	lastDay := firstDay.AddDate(0, 0, days-1)
	history := func(i int, query string) string { return sc.usagePath(i) + "/history?" + query }
	date := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

	// getHistory GETs a history as JSON: strictly decoded, and as the raw
	// bytes of each element.
	getHistory := func(t *testing.T, path, key string) ([]serviceUsage, []json.RawMessage) {
		t.Helper()
		var got []serviceUsage
		e.getJSON(t, path, key, &got)
		_, _, body := e.get(t, path, key)
		var raw []json.RawMessage
		if err := json.Unmarshal(body, &raw); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(raw) != len(got) {
			t.Fatalf("%s: %d raw elements, %d decoded", path, len(raw), len(got))
		}
		return got, raw
	}
	// checkHistory compares a history of service i with the oracle's numbers
	// for the periods want and, when single is set, with GetServiceUsage's
	// answer for each period.
	checkHistory := func(t *testing.T, what string, i int, got []serviceUsage, raw []json.RawMessage, want []period, single bool) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d periods, want %d (%v)", what, len(got), len(want), want)
		}
		for k, p := range want {
			sc.checkUsage(t, fmt.Sprintf("%s period %d", what, k), got[k], i, p)
			if !single {
				continue
			}
			s, _, body := e.get(t, sc.usagePath(i)+"?"+p.query(), adminToken)
			if s != http.StatusOK || !bytes.Equal(body, raw[k]) {
				t.Errorf("%s %s: history and GetServiceUsage differ\nhistory %s\n single %d %s", what, p, raw[k], s, body)
			}
		}
	}
	daysOf := func(from, to time.Time) []period {
		var ps []period
		for d := daily(from).start; !d.After(daily(to).start); d = d.AddDate(0, 0, 1) {
			ps = append(ps, daily(d))
		}
		return ps
	}
	monthsOf := func(from, to time.Time) []period {
		var ps []period
		for m := monthly(from).start; !m.After(monthly(to).start); m = m.AddDate(0, 1, 0) {
			ps = append(ps, monthly(m))
		}
		return ps
	}

	t.Run("Daily", func(t *testing.T) {
		// The scenario's 40 days, across the ends of January and February,
		// through every key that sees the service.
		want := daysOf(firstDay, lastDay)
		if len(want) != 40 || want[0].start.Month() != time.January || want[39].start.Month() != time.March {
			t.Fatalf("the scenario's days: %v", want)
		}
		q := "From=" + firstDay.Format(time.DateOnly) + "&To=" + lastDay.Format(time.DateOnly)
		for i := range sc.services {
			var first []json.RawMessage
			for k, key := range sc.keysFor(i) {
				got, raw := getHistory(t, history(i, q), key)
				checkHistory(t, fmt.Sprintf("service %d key %d", i, k), i, got, raw, want, k == 0)
				if k == 0 {
					first = raw
				} else if !reflect.DeepEqual(raw, first) {
					t.Errorf("service %d: key %d sees another history than the operator", i, k)
				}
			}
		}
		// A time of day, or an offset, selects the UTC day holding the time.
		for _, c := range []struct {
			query    string
			from, to time.Time
		}{
			{"From=2026-02-27T23:30:00Z&To=2026-03-01T00:00:01Z", date(2026, 2, 27), date(2026, 3, 1)},
			{"From=2026-02-28T01:00:00%2B02:00&To=2026-03-01T20:00:00-05:00", date(2026, 2, 27), date(2026, 3, 2)},
			{"from=2026-02-28&TO=2026-02-28&periodtype=daily", date(2026, 2, 28), date(2026, 2, 28)},
			{"From=/Date(1772150400000)/&To=2026-02-28", date(2026, 2, 27), date(2026, 2, 28)},
		} {
			got, raw := getHistory(t, history(1, c.query), sc.partnerKeys[0])
			checkHistory(t, c.query, 1, got, raw, daysOf(c.from, c.to), true)
		}
	})

	t.Run("Monthly", func(t *testing.T) {
		// January to March, named by any day of them; March so far.
		want := monthsOf(firstDay, epoch)
		if len(want) != 3 {
			t.Fatalf("months: %v", want)
		}
		for i := range sc.services {
			q := "PeriodType=Monthly&From=" + firstDay.AddDate(0, 0, 1).Format(time.DateOnly) + "&To=" + url.QueryEscape(epoch.Format(time.RFC3339))
			got, raw := getHistory(t, history(i, q), adminToken)
			checkHistory(t, fmt.Sprintf("service %d", i), i, got, raw, want, true)
			got, raw = getHistory(t, history(i, "periodTYPE=MONTHLY&from=2026-01-01&to=2026-03-31"), sc.serviceKeys[i])
			checkHistory(t, fmt.Sprintf("service %d, its own key", i), i, got, raw, want, false)
		}
	})

	t.Run("Defaults", func(t *testing.T) {
		today := daily(epoch).start
		for _, c := range []struct {
			query string
			want  []period
		}{
			{"", daysOf(today.AddDate(0, 0, -29), today)},
			{"PeriodType=Daily", daysOf(today.AddDate(0, 0, -29), today)},
			{"To=2026-02-15", daysOf(date(2026, 1, 17), date(2026, 2, 15))},
			{"From=2026-03-01", daysOf(date(2026, 3, 1), today)},
			{"From=" + today.Format(time.DateOnly), daysOf(today, today)},
			{"PeriodType=Monthly", monthsOf(date(2025, 4, 1), today)},
			{"PeriodType=Monthly&To=2026-02-15", monthsOf(date(2025, 3, 1), date(2026, 2, 1))},
			{"PeriodType=Monthly&From=2025-12-31", monthsOf(date(2025, 12, 1), today)},
			// Empty values are absent, as for every parameter.
			{"PeriodType=&From=&To=", daysOf(today.AddDate(0, 0, -29), today)},
		} {
			got, raw := getHistory(t, history(0, c.query), adminToken)
			checkHistory(t, "?"+c.query, 0, got, raw, c.want, false)
		}
		if got, _ := getHistory(t, history(0, "PeriodType=Monthly"), adminToken); len(got) != 12 ||
			got[0].Period != "2025-04-01T00:00:00Z" || got[11].Period != "2026-03-01T00:00:00Z" {
			t.Errorf("default months: %d", len(got))
		}
		// The longest histories are answered.
		got, raw := getHistory(t, history(0, "From=2025-03-10&To=2026-03-10"), adminToken)
		checkHistory(t, "366 days", 0, got, raw, daysOf(date(2025, 3, 10), today), false)
		got, raw = getHistory(t, history(0, "PeriodType=Monthly&From=2021-04-30"), adminToken)
		checkHistory(t, "60 months", 0, got, raw, monthsOf(date(2021, 4, 1), today), false)
	})

	t.Run("Errors", func(t *testing.T) {
		le := func(field, msg string) fieldError {
			return fieldError{ErrorCode: "LessThanOrEqual", FieldName: field, Message: msg}
		}
		invalid := func(errs ...fieldError) responseStatus {
			return responseStatus{ErrorCode: errs[0].ErrorCode, Message: errs[0].Message, Errors: errs}
		}
		// The spans of From=0001-01-01, counted a day and a month at a time.
		var allDays, allMonths int
		for d := date(1, 1, 1); !d.After(daily(epoch).start); d = d.AddDate(0, 0, 1) {
			allDays++
			if d.Day() == 1 {
				allMonths++
			}
		}
		const op = "GetServiceUsageHistory"
		for _, c := range []struct {
			query string
			want  responseStatus
		}{
			{"From=2026-03-02&To=2026-03-01", invalid(le("From", "'From' must be on or before 'To' (2026-03-01); got 2026-03-02."))},
			{"PeriodType=Monthly&From=2026-03-01&To=2026-02-28", invalid(le("From", "'From' must be on or before 'To' (2026-02-01); got 2026-03-01."))},
			{"From=2026-03-11", invalid(le("From", "'From' must be on or before 'To' (2026-03-10); got 2026-03-11."))},
			{"To=2026-03-11", invalid(le("To", "'To' must be on or before today (2026-03-10 UTC); got 2026-03-11."))},
			{"To=2026-03-11T00:00:00Z", invalid(le("To", "'To' must be on or before today (2026-03-10 UTC); got 2026-03-11."))},
			{"PeriodType=Monthly&To=2026-04-01", invalid(le("To", "'To' must be on or before today (2026-03-10 UTC); got 2026-04-01."))},
			{"From=2025-03-09&To=2026-03-10", invalid(le("From", "'From' to 'To' must span at most 366 Daily periods; got 367."))},
			{"From=2025-03-09", invalid(le("From", "'From' to 'To' must span at most 366 Daily periods; got 367."))},
			{"PeriodType=Monthly&From=2021-03-31", invalid(le("From", "'From' to 'To' must span at most 60 Monthly periods; got 61."))},
			{"PeriodType=Monthly&From=2021-02-01", invalid(le("From", "'From' to 'To' must span at most 60 Monthly periods; got 62."))},
			{"From=0001-01-01", invalid(le("From", fmt.Sprintf("'From' to 'To' must span at most 366 Daily periods; got %d.", allDays)))},
			{"PeriodType=Monthly&From=0001-01-01", invalid(le("From", fmt.Sprintf("'From' to 'To' must span at most 60 Monthly periods; got %d.", allMonths)))},
			// Both fields wrong: one entry each, From's first.
			{"From=2026-03-12&To=2026-03-11", invalid(
				le("From", "'From' must be on or before 'To' (2026-03-11); got 2026-03-12."),
				le("To", "'To' must be on or before today (2026-03-10 UTC); got 2026-03-11."))},
			{"From=2025-01-01&To=2026-03-11", invalid(
				le("From", "'From' to 'To' must span at most 366 Daily periods; got 435."),
				le("To", "'To' must be on or before today (2026-03-10 UTC); got 2026-03-11."))},
			// Values that cannot be bound, the first of them.
			{"From=yesterday", bindFailureHint(op, "From", "yesterday", dateHint)},
			{"To=2026-02-30", bindFailureHint(op, "To", "2026-02-30", dateHint)},
			{"from=10000-01-01", bindFailureHint(op, "From", "10000-01-01", dateHint)},
			{"To=bad&From=worse", bindFailureHint(op, "From", "worse", dateHint)},
			{"PeriodType=Weekly&From=bad", bindFailureHint(op, "PeriodType", "Weekly", periodTypeHint)},
		} {
			s, h, body := e.get(t, history(0, c.query), sc.partnerKeys[0])
			wantError(t, c.query, s, h, body, http.StatusBadRequest, c.want)
		}
		s, h, body := e.get(t, "/api/services/abc/serviceusage/history", adminToken)
		wantError(t, "a ServiceGuid that is no GUID", s, h, body, http.StatusBadRequest, bindFailure(op, "ServiceGuid", "abc"))
	})

	t.Run("NotFound", func(t *testing.T) {
		// A key that does not see the service: as if it did not exist, even
		// with parameters that would not validate.
		g := sc.services[4].ServiceGuid
		for _, key := range []string{sc.partnerKeys[0], sc.resellerKey[0], sc.serviceKeys[5]} {
			for _, q := range []string{"", "To=2026-03-11"} {
				s, h, body := e.get(t, history(4, q), key)
				wantError(t, "another's service "+q, s, h, body, http.StatusNotFound, notFound(g))
			}
		}
		const missing = "0123456789abcdef0123456789abcdef"
		s, h, body := e.get(t, "/api/services/"+missing+"/serviceusage/history", adminToken)
		wantError(t, "a service that does not exist", s, h, body, http.StatusNotFound, notFound(missing))
	})

	t.Run("CSV", func(t *testing.T) {
		// Service 0 has quotes and commas in its name, a contact and a company.
		const q = "From=2026-02-25&To=2026-03-03"
		want := daysOf(date(2026, 2, 25), date(2026, 3, 3))
		status, h, body := e.get(t, sc.usagePath(0)+"/history.csv?"+q, adminToken)
		if status != http.StatusOK {
			t.Fatalf("%d %s", status, body)
		}
		if ct, cd := h.Get("Content-Type"), h.Get("Content-Disposition"); ct != "text/csv; charset=utf-8" || cd != `attachment;filename="GetServiceUsageHistory.csv"` {
			t.Errorf("Content-Type %q, Content-Disposition %q", ct, cd)
		}
		rows := readCSV(t, body)
		if strings.Count(string(body), "\r\n") != len(rows) || strings.Count(string(body), "\n") != len(rows) {
			t.Errorf("rows do not all end in CRLF: %q", body)
		}
		if len(rows) != 1+len(want) {
			t.Fatalf("%d rows, want a header and %d", len(rows), len(want))
		}
		// The header and each row are GetServiceUsage's for the period.
		for k, p := range want {
			_, _, single := e.get(t, sc.usagePath(0)+".csv?"+p.query(), adminToken)
			srows := readCSV(t, single)
			if len(srows) != 2 || !slices.Equal(srows[0], rows[0]) || !slices.Equal(srows[1], rows[k+1]) {
				t.Errorf("%s: history row %q, GetServiceUsage %q", p, rows[k+1], srows)
			}
		}
		// Every cell is the JSON's value; nested records are JSV.
		_, _, jsonBody := e.get(t, history(0, q), adminToken)
		dec := json.NewDecoder(bytes.NewReader(jsonBody))
		dec.UseNumber()
		var js []map[string]any
		if err := dec.Decode(&js); err != nil || len(js) != len(want) {
			t.Fatalf("JSON: %v, %d elements", err, len(js))
		}
		jsv := map[string]string{
			"Contact": "{Name:Ann O'Neil,Email:ann@contoso.example.com,PhoneNumber:+1 555 0100}",
			"Company": "{Name:\"Contoso, Inc.\",City:Springfield,Country:US}",
		}
		for k, obj := range js {
			for key := range obj {
				if !slices.Contains(rows[0], strings.ToUpper(key[:1])+key[1:]) {
					t.Errorf("JSON's %s is not a CSV column", key)
				}
			}
			for c, name := range rows[0] {
				var cell string
				switch v := obj[strings.ToLower(name[:1])+name[1:]].(type) {
				case nil:
				case string:
					cell = v
				case json.Number:
					cell = v.String()
				case bool:
					cell = fmt.Sprint(v)
				case map[string]any:
					cell = jsv[name]
				default:
					t.Fatalf("%s: %T", name, v)
				}
				if rows[k+1][c] != cell {
					t.Errorf("row %d %s: CSV %q, JSON %q", k, name, rows[k+1][c], cell)
				}
			}
			if obj["period"] != wireTimeOf(want[k].start) {
				t.Errorf("row %d: period %v, want %s", k, obj["period"], want[k])
			}
		}
	})

	t.Run("Formats", func(t *testing.T) {
		const q = "From=2026-02-25&To=2026-03-03"
		path := sc.usagePath(0) + "/history"
		_, _, jsonBody := e.get(t, path+"?"+q, adminToken)
		_, _, csvBody := e.get(t, path+".csv?"+q, adminToken)
		var js []serviceUsage
		e.getJSON(t, path+"?"+q, adminToken, &js)
		f := func(path, accept, want string) {
			t.Helper()
			status, h, body := e.send(t, request{path: path, key: adminToken, header: http.Header{"Accept": {accept}}})
			if status != http.StatusOK {
				t.Fatalf("%s (Accept %q): %d %s", path, accept, status, body)
			}
			ct := h.Get("Content-Type")
			switch want {
			case "json":
				if ct != "application/json; charset=utf-8" || !bytes.Equal(body, jsonBody) {
					t.Errorf("%s (Accept %q): %s %s", path, accept, ct, body)
				}
			case "csv":
				if ct != "text/csv; charset=utf-8" || !bytes.Equal(body, csvBody) {
					t.Errorf("%s (Accept %q): %s %s", path, accept, ct, body)
				}
			case "xml":
				var root struct {
					XMLName xml.Name
					Items   []struct {
						XMLName                xml.Name
						ServiceGuid, Name      string
						PeriodType, Period     string
						TotalMessageCount      int64
						TotalUserCount         int64
						AttachmentStorageUsage int64
					} `xml:",any"`
				}
				if err := xml.Unmarshal(body, &root); err != nil || ct != "application/xml; charset=utf-8" ||
					root.XMLName != (xml.Name{Space: "http://schemas.servicestack.net/types", Local: "ArrayOfServiceUsage"}) || len(root.Items) != len(js) {
					t.Fatalf("%s (Accept %q): %s %v %s", path, accept, ct, err, body)
				}
				for k, x := range root.Items {
					j := js[k]
					if x.XMLName.Local != "ServiceUsage" || x.ServiceGuid != dashed(j.ServiceGuid) || x.Name != j.Name || x.PeriodType != j.PeriodType ||
						x.Period != j.Period || x.TotalMessageCount != j.TotalMessageCount || x.TotalUserCount != j.TotalUserCount ||
						x.AttachmentStorageUsage != j.AttachmentStorageUsage {
						t.Errorf("%s: item %d %+v, JSON %+v", path, k, x, j)
					}
				}
			}
		}
		f(path+"?"+q, "", "json")
		f(path+"?"+q, "*/*", "json")
		f(path+".json?"+q, "text/csv", "json")
		f(path+"?format=json&"+q, "text/csv", "json")
		f(path+"?format=csv&"+q, "", "csv")
		f(path+".CSV?"+q, "", "csv")
		f(path+"?"+q, "text/csv", "csv")
		f(path+"?format=xml&"+q, "", "xml")
		f(path+".xml?"+q, "", "xml")
		f(path+"?"+q, "application/xml", "xml")
		f(path+".xml?FORMAT=csv&"+q, "application/json", "csv")
		status, h, body := e.send(t, request{path: path + ".xml?format=csv&callback=cb&" + q, key: adminToken, header: http.Header{"Accept": {"text/csv"}}})
		if want := "cb(" + string(jsonBody) + ")"; status != http.StatusOK || string(body) != want || h.Get("Content-Type") != "application/javascript; charset=utf-8" {
			t.Errorf("JSONP: %d %s %s", status, h.Get("Content-Type"), body)
		}
		// Under JSONP an error is a 200 too.
		status, _, body = e.get(t, path+"?callback=cb&To=2026-03-11", adminToken)
		if status != http.StatusOK || !strings.HasPrefix(string(body), `cb({"responseStatus":{"errorCode":"LessThanOrEqual","message":"'To' must`) {
			t.Errorf("JSONP error: %d %s", status, body)
		}

		// The single report's routes with a suffix are still the single
		// report, not a history.
		status, h, body = e.get(t, sc.usagePath(0)+".csv?PeriodType=Daily&Period=2026-03-01", adminToken)
		if rows := readCSV(t, body); status != http.StatusOK || len(rows) != 2 || h.Get("Content-Disposition") != `attachment;filename="GetServiceUsage.csv"` {
			t.Errorf("serviceusage.csv: %d %q", status, body)
		}
		status, _, body = e.get(t, sc.usagePath(0)+".xml", adminToken)
		var root struct{ XMLName xml.Name }
		if err := xml.Unmarshal(body, &root); status != http.StatusOK || err != nil || root.XMLName.Local != "GetServiceUsageResponse" {
			t.Errorf("serviceusage.xml: %d %v %s", status, err, body)
		}
		var single serviceUsage
		e.getJSON(t, sc.usagePath(0)+".json", adminToken, &single)
		sc.checkUsage(t, "serviceusage.json", single, 0, daily(epoch))
	})

	t.Run("Blocked", func(t *testing.T) {
		i := 2
		g := sc.services[i].ServiceGuid
		for _, status := range []string{"Blocked", "Provisioning"} {
			var svc serviceDTO
			e.postJSON(t, "PUT", "/api/services/"+g+"/status", sc.resellerKey[1], map[string]string{"status": status}, &svc)
			if svc.Status != status {
				t.Fatalf("status %q after setting %s", svc.Status, status)
			}
			conflict := responseStatus{ErrorCode: "ServiceStatusConflict",
				Message: "Service " + g + " is " + status + ": usage reports are not available for Blocked or Provisioning services"}
			for _, q := range []string{"", "PeriodType=Monthly&From=2026-01-01&To=2026-02-28"} {
				s, h, body := e.get(t, history(i, q), sc.partnerKeys[0])
				wantError(t, status+" "+q, s, h, body, http.StatusConflict, conflict)
			}
			// As for GetServiceUsage, parameters are checked first.
			s, h, body := e.get(t, history(i, "To=2026-03-11"), adminToken)
			wantError(t, status+" To after today", s, h, body, http.StatusBadRequest, responseStatus{ErrorCode: "LessThanOrEqual",
				Message: "'To' must be on or before today (2026-03-10 UTC); got 2026-03-11.",
				Errors:  []fieldError{{ErrorCode: "LessThanOrEqual", FieldName: "To", Message: "'To' must be on or before today (2026-03-10 UTC); got 2026-03-11."}}})
		}
	})
}
