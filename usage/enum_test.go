package usage

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// Every parser of the domain fails with a KindInvalid *Error that names the
// field it knows and tells what to send instead.
func TestParseErrors(t *testing.T) {
	f := func(what string, err error, field, msg string) {
		t.Helper()
		var ue *Error
		if !errors.As(err, &ue) {
			t.Errorf("%s: %v (%T) is not a *usage.Error", what, err, err)
			return
		}
		if ue.Kind != KindInvalid || ue.Field != field || ue.Message != msg {
			t.Errorf("%s: kind %v, field %q, %q; want invalid, %q, %q", what, ue.Kind, ue.Field, ue.Message, field, msg)
		}
	}
	second := func(_ any, err error) error { return err }
	f("granularity", second(ParseGranularity("Minute")), "granularity", `"Minute" is not a granularity: use one of Hour, Day, Week, Month`)
	f("dimension", second(ParseDimension("Country")), "groupBy",
		`"Country" is not a groupBy dimension: use one of OAuthClientId, OrganizationId, UserId, TemplateUri, HttpMethod, Platform`)
	f("metric", second(ParseMetric("Status404")), "metrics",
		`"Status404" is not a metric: use one of Requests, Status200, Status300, Status400, Status500, Status429, durationP50, durationP90, durationP95, durationP99, durationMax, durationAvg, requestBytes, responseBytes`)
	f("activity kind", second(ParseActivityKind("")), "type", `"" is not an activity type: use one of message, feature, users, storage, user`)
	f("feature", second(ParseFeature("Fax")), "feature",
		`"Fax" is not a feature: use one of SecureMessagingGateway, SecureMessagingPlus, DataLeakPrevention, SecureLargeFiles, SecureForms`)
	f("user event", second(ParseUserEvent("deleted")), "event", `"deleted" is not a user event: use one of created, registered, login, disabled, enabled, invited`)
	f("user status", second(ParseUserStatus("Gone")), "status", `"Gone" is not a user status: use one of Active, Disabled`)
	f("group type", second(ParseUserGroupType("Admin")), "groupType", `"Admin" is not a user group type: use one of Professional, Guest`)
	f("period type", second(ParsePeriodType("Weekly")), "periodType", `"Weekly" is not a period type: use one of Daily, Monthly`)
	f("service status", second(ParseServiceStatus("Deleted")), "status",
		`"Deleted" is not a service status: use one of Blocked, AccountCancelled, AccountSuspended, Provisioning, TrialExpired, TrialActive, DemoAccount, CertifiedSecure`)
	f("scope", second(ParseScopeKind("site")), "scope", `"site" is not a scope: use one of partner, reseller, service`)
	f("GUID", second(ParseGUID("{1234}")), "", `"{1234}" is not a GUID`)
	f("GUID dashes", second(ParseGUID("0123456789ab-cdef-0123-456789abcdef0")), "", `"0123456789ab-cdef-0123-456789abcdef0" is not a GUID`)
	f("interval", second(ParseInterval("2026-01-01")), "interval",
		`interval "2026-01-01" must be two parts separated by one '/', e.g. 2026-01-01T00:00:00Z/2026-02-01T00:00:00Z`)
	f("time offset", second(ParseTime(time.RFC3339, "2026-01-02T15:04:05+24:00")), "",
		"time zone offset +24:00 is out of range: hours run to 23 and minutes to 59")
	f("name", CheckName("name", " "), "name", "name is required")

	// A time time.Parse refuses keeps its *time.ParseError.
	_, err := ParseTime(time.RFC3339, "yesterday")
	var pe *time.ParseError
	if KindOf(err) != KindInvalid || !errors.As(err, &pe) {
		t.Errorf("ParseTime(yesterday): %v, kind %v; want invalid with a *time.ParseError", err, KindOf(err))
	}
}

// Every enum prints its values' names and parses them back in any case;
// a value that is none prints as unknown.
func TestEnumsRoundTrip(t *testing.T) {
	f := func(name string, got any, err error, want any) {
		t.Helper()
		if err != nil || got != want {
			t.Errorf("parse %q: %v, %v; want %v", name, got, err, want)
		}
	}
	for _, g := range []Granularity{GranularityNone, GranularityHour, GranularityDay, GranularityWeek, GranularityMonth} {
		v, err := ParseGranularity(g.String())
		f(g.String(), v, err, g)
	}
	for _, d := range Dimensions {
		v, err := ParseDimension(d.String())
		f(d.String(), v, err, d)
	}
	for _, m := range append(slices.Clone(Metrics), MeasureMetrics...) {
		v, err := ParseMetric(m.String())
		f(m.String(), v, err, m)
	}
	for k := ActivityMessage; k <= ActivityUser; k++ {
		v, err := ParseActivityKind(k.String())
		f(k.String(), v, err, k)
	}
	for _, s := range ServiceStatuses {
		v, err := ParseServiceStatus(s.String())
		f(s.String(), v, err, s)
	}
	for k := ScopePartner; k <= ScopeService; k++ {
		v, err := ParseScopeKind(k.String())
		f(k.String(), v, err, k)
	}
	v, err := ParseGranularity("mONTH")
	f("mONTH", v, err, GranularityMonth)
	for got, want := range map[string]string{ServiceStatus(0).String(): "unknown(0)", Metric(14).String(): "unknown(14)", ExecutionStatus(-1).String(): "unknown(-1)"} {
		if got != want {
			t.Errorf("a value that is none prints as %q, want %q", got, want)
		}
	}
	if ExecutionCancelled.String() != "Cancelled" || PeriodType(Monthly).String() != "Monthly" {
		t.Errorf("names: %v, %v", ExecutionCancelled, Monthly)
	}
}
