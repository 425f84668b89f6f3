package servicestack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/usaged/usaged/usage"
)

// bindRequest returns the Params of a request for target routed by
// pattern, so that path values are set as the mux sets them.
func bindRequest(t *testing.T, pattern, target string) *Params {
	t.Helper()
	var p *Params
	mux := http.NewServeMux()
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) { p = Bind(r, "GetServicesUsage") })
	mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, target, nil))
	if p == nil {
		t.Fatalf("%s does not match %s", target, pattern)
	}
	return p
}

func TestParams(t *testing.T) {
	const g = "0123456789abcdef0123456789abcdef"
	p := bindRequest(t, "GET /api/services/{ServiceGuid}/usage",
		"/api/services/{"+strings.ToUpper(g)+"}/usage?pagesize=50&PAGE=2&periodtype=monthly&period=2026-03-04&partnerGUID=01234567-89ab-cdef-0123-456789abcdef&Name=a+b%26c&name=second&empty=")
	if got := p.GUID("ServiceGuid"); got != sampleGUID {
		t.Errorf("path guid %s", got)
	}
	if got := p.OptGUID("PartnerGuid"); got != sampleGUID {
		t.Errorf("query guid %s", got)
	}
	if got := p.OptGUID("ResellerGuid"); !got.IsZero() {
		t.Errorf("absent optGUID %s", got)
	}
	if got := p.Int("PageSize", 25, 1, 1000); got != 50 {
		t.Errorf("PageSize %d", got)
	}
	if got := p.Int("Page", 1, 1, 1<<30); got != 2 {
		t.Errorf("Page %d", got)
	}
	if got := p.Int("Absent", 7, 1, 10); got != 7 {
		t.Errorf("default %d", got)
	}
	if got := p.Int("Empty", 7, 1, 10); got != 7 {
		t.Errorf("empty value: %d, want the default", got)
	}
	if pt, ok := OptEnum(p, "PeriodType", usage.ParsePeriodType); !ok || pt != usage.Monthly {
		t.Errorf("PeriodType %v %v", pt, ok)
	}
	if _, ok := OptEnum(p, "UserStatus", usage.ParseUserStatus, usage.UserActive, usage.UserDisabledStatus); ok {
		t.Errorf("absent enum bound")
	}
	if d, ok := p.Date("Period"); !ok || !d.Equal(time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("Period %v %v", d, ok)
	}
	if _, ok := p.Date("CreatedAfterDateTime"); ok {
		t.Errorf("absent date bound")
	}
	if got := p.Value("NAME"); got != "a b&c" {
		t.Errorf("str %q: the first of the keys that match, unescaped", got)
	}
	if err := p.Err(); err != nil {
		t.Errorf("err %v", err)
	}
}

func TestParamsFail(t *testing.T) {
	f := func(target string, bind func(p *Params), want FieldError) {
		t.Helper()
		p := bindRequest(t, "GET /api/services/{ServiceGuid}/usage", target)
		bind(p)
		ae, ok := errors.AsType[*apiError](p.Err())
		if !ok || ae.status != http.StatusBadRequest || len(ae.rs.Errors) != 1 {
			t.Fatalf("%s: err %v", target, p.Err())
		}
		if ae.rs.Errors[0] != want {
			t.Errorf("%s:\n got %+v\nwant %+v", target, ae.rs.Errors[0], want)
		}
		if ae.rs.ErrorCode != want.ErrorCode {
			t.Errorf("%s: errorCode %s, want the entry's %s", target, ae.rs.ErrorCode, want.ErrorCode)
		}
	}
	// bind is ServiceStack's own message, and what the field takes after it.
	bind := func(field, value, hint string) FieldError {
		msg := fmt.Sprintf("'%s' is an Invalid value for '%s'", value, field)
		if hint != "" {
			msg += ": " + hint
		}
		return FieldError{"SerializationException", field, msg}
	}
	guid := func(p *Params) { p.GUID("ServiceGuid") }
	f("/api/services/abc/usage", guid, bind("ServiceGuid", "abc", ""))
	f("/api/services/0123456789abcdef0123456789abcdeg/usage", guid, bind("ServiceGuid", "0123456789abcdef0123456789abcdeg", ""))
	f("/api/services/x/usage?PartnerGuid=nope", func(p *Params) { p.OptGUID("PartnerGuid") }, bind("PartnerGuid", "nope", ""))
	f("/api/services/x/usage", func(p *Params) { p.GUID("UserGuid") }, bind("UserGuid", "", ""))
	// PageSize names its limits: not a number fails to bind, out of range
	// fails validation, as FluentValidation words it.
	pageSize := func(p *Params) { p.Int("PageSize", 25, 1, 1000) }
	whole := "use a whole number from 1 to 1000"
	f("/api/services/x/usage?pageSize=ten", pageSize, bind("PageSize", "ten", whole))
	f("/api/services/x/usage?pageSize=0", pageSize,
		FieldError{"GreaterThanOrEqual", "PageSize", "'Page Size' must be greater than or equal to '1'; got 0."})
	f("/api/services/x/usage?pageSize=1001", pageSize,
		FieldError{"LessThanOrEqual", "PageSize", "'Page Size' must be less than or equal to '1000'; got 1001."})
	f("/api/services/x/usage?pageSize=1.5", pageSize, bind("PageSize", "1.5", whole))
	f("/api/services/x/usage?pageSize=99999999999999999999", pageSize, bind("PageSize", "99999999999999999999", whole))
	// Period names the forms it takes, PeriodType its values.
	f("/api/services/x/usage?Period=yesterday", func(p *Params) { p.Date("Period") },
		bind("Period", "yesterday", "use yyyy-MM-dd, ISO-8601 such as 2026-03-04T05:06:07Z, or /Date(ms)/, from 0001-01-01 to 9999-12-31"))
	f("/api/services/x/usage?PeriodType=Weekly", func(p *Params) { OptEnum(p, "PeriodType", usage.ParsePeriodType, usage.Daily, usage.Monthly) },
		bind("PeriodType", "Weekly", "use one of Daily, Monthly"))
	// The first failure is kept.
	f("/api/services/x/usage?Page=z&PageSize=y", func(p *Params) {
		p.Int("Page", 1, 1, 10)
		p.Int("PageSize", 1, 1, 10)
		p.GUID("ServiceGuid")
	}, bind("Page", "z", "use a whole number from 1 to 10"))
	f("/api/services/x/usage?Page=0&PageSize=y", func(p *Params) {
		p.Int("Page", 1, 1, 10)
		p.Int("PageSize", 1, 1, 10)
	}, FieldError{"GreaterThanOrEqual", "Page", "'Page' must be greater than or equal to '1'; got 0."})
}

// TestBindErrorBody pins the reference's example body for a non-Guid
// ServiceGuid, through the route, the binding and RespondError.
func TestBindErrorBody(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/services/{ServiceGuid}/serviceusage", func(w http.ResponseWriter, r *http.Request) {
		p := Bind(r, "GetServiceUsage")
		p.GUID("ServiceGuid")
		RespondError(w, r, "GetServiceUsage", p.Err(), nil)
	})
	f := func(target, want string) {
		t.Helper()
		w := httptest.NewRecorder()
		WithSuffixes(mux).ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
		if w.Code != http.StatusBadRequest || w.Body.String() != want {
			t.Errorf("%s: got %d %s\nwant 400 %s", target, w.Code, w.Body, want)
		}
	}
	f("/api/services/abc/serviceusage",
		`{"responseStatus":{"errorCode":"SerializationException","message":"Unable to bind to request 'GetServiceUsage'","errors":[{"errorCode":"SerializationException","fieldName":"ServiceGuid","message":"'abc' is an Invalid value for 'ServiceGuid'"}]}}`)
	f("/api/services/abc/serviceusage.json",
		`{"responseStatus":{"errorCode":"SerializationException","message":"Unable to bind to request 'GetServiceUsage'","errors":[{"errorCode":"SerializationException","fieldName":"ServiceGuid","message":"'abc' is an Invalid value for 'ServiceGuid'"}]}}`)
	// Escaped path values are unescaped, and not HTML-escaped in JSON.
	f("/api/services/%3Cb%3E%22/serviceusage",
		`{"responseStatus":{"errorCode":"SerializationException","message":"Unable to bind to request 'GetServiceUsage'","errors":[{"errorCode":"SerializationException","fieldName":"ServiceGuid","message":"'<b>\"' is an Invalid value for 'ServiceGuid'"}]}}`)
}

// TestErrorBodies pins error bodies byte for byte: "errors" is always
// there, [] when no field is at fault, as ServiceStack's
// CreateResponseStatus always sets it.
func TestErrorBodies(t *testing.T) {
	f := func(err error, wantStatus int, want string) {
		t.Helper()
		w := httptest.NewRecorder()
		RespondError(w, httptest.NewRequest(http.MethodGet, "/x", nil), "Op", err, nil)
		if w.Code != wantStatus || w.Body.String() != want {
			t.Errorf("%v: got %d %s\nwant %d %s", err, w.Code, w.Body, wantStatus, want)
		}
	}
	f(ValidationError(NotEmpty("Name"), NotEmpty("PrimaryDomain")), 400,
		`{"responseStatus":{"errorCode":"NotEmpty","message":"'Name' must not be empty.","errors":[{"errorCode":"NotEmpty","fieldName":"Name","message":"'Name' must not be empty."},{"errorCode":"NotEmpty","fieldName":"PrimaryDomain","message":"'Primary Domain' must not be empty."}]}}`)
	f(ValidationError(), 400, `{"responseStatus":{"errorCode":"ValidationException","message":"Validation failed","errors":[]}}`)
	f(BindError("CreateService", "", "{"), 400, `{"responseStatus":{"errorCode":"SerializationException","message":"Unable to bind to request 'CreateService'","errors":[]}}`)
	f(NewError(http.StatusConflict, "ServiceStatusConflict", "Service 0123 is Blocked: usage reports are not available for Blocked or Provisioning services"), 409,
		`{"responseStatus":{"errorCode":"ServiceStatusConflict","message":"Service 0123 is Blocked: usage reports are not available for Blocked or Provisioning services","errors":[]}}`)
	f(fmt.Errorf("handler: %w", NewError(http.StatusConflict, "ServiceStatusConflict", "wrapped")), 409, `{"responseStatus":{"errorCode":"ServiceStatusConflict","message":"wrapped","errors":[]}}`)
	f(&usage.Error{Kind: usage.KindUnauthorized}, 401, `{"responseStatus":{"errorCode":"Unauthorized","message":"Not Authenticated","errors":[]}}`)
	f(usage.Errorf(usage.KindInvalid, "period", "period must be a day"), 400,
		`{"responseStatus":{"errorCode":"ArgumentException","message":"period must be a day","errors":[{"errorCode":"ArgumentException","fieldName":"Period","message":"period must be a day"}]}}`)
	f(errors.New("disk on fire at /var/lib"), 500, `{"responseStatus":{"errorCode":"InternalServerError","message":"The server encountered an internal error. It has been logged.","errors":[]}}`)
}

func TestToAPIError(t *testing.T) {
	f := func(err error, status int, code, message string) {
		t.Helper()
		ae := toAPIError(err)
		if ae.status != status || ae.rs.ErrorCode != code || ae.rs.Message != message {
			t.Errorf("toAPIError(%v) = %d %s %q, want %d %s %q", err, ae.status, ae.rs.ErrorCode, ae.rs.Message, status, code, message)
		}
		if ae.Error() == "" {
			t.Errorf("empty Error()")
		}
	}
	e := func(k usage.Kind, msg string) error { return usage.Errorf(k, "", "%s", msg) }
	f(e(usage.KindInvalid, "bad"), 400, "ArgumentException", "bad")
	f(e(usage.KindInvalid, ""), 400, "ArgumentException", "The request is not valid.")
	f(e(usage.KindNotFound, "Service x not found"), 404, "NotFound", "Service x not found")
	f(usage.ErrNotFound, 404, "NotFound", "not found")
	f(e(usage.KindUnauthorized, ""), 401, "Unauthorized", "Not Authenticated")
	f(e(usage.KindUnauthorized, "Invalid API key"), 401, "Unauthorized", "Invalid API key")
	f(e(usage.KindForbidden, "no"), 403, "Forbidden", "no")
	f(e(usage.KindConflict, "exists"), 409, "Conflict", "exists")
	f(e(usage.KindTooLarge, ""), 413, "RequestTooLarge", "The request is too large.")
	f(e(usage.KindUnsupported, "send JSON"), 415, "UnsupportedMediaType", "send JSON")
	f(e(usage.KindUnavailable, ""), 503, "ServiceUnavailable", "The service is unavailable. Retry later.")
	// Internal errors never show their text, even from a usage.Error.
	f(&usage.Error{Kind: usage.KindInternal, Message: "secret", Err: errors.New("cause")}, 500, "InternalServerError", internalMessage)
	f(context.DeadlineExceeded, 500, "InternalServerError", internalMessage)
	f(nil, 500, "InternalServerError", internalMessage)
	f(usage.Errorf(usage.Kind(99), "", "?"), 500, "InternalServerError", internalMessage)
	// The first *usage.Error in the chain decides, and its message is shown,
	// not the wrapping text.
	f(fmt.Errorf("store: %w", usage.Errorf(usage.KindNotFound, "", "gone")), 404, "NotFound", "gone")
}

func TestRespondErrorLogs(t *testing.T) {
	f := func(err error, wantLevel string) {
		t.Helper()
		var buf bytes.Buffer
		log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		w := httptest.NewRecorder()
		RespondError(w, httptest.NewRequest(http.MethodPost, "/api/services?x=1", nil), "CreateService", err, log)
		got := buf.String()
		for _, want := range []string{"level=" + wantLevel, "op=CreateService", "method=POST", "path=/api/services", "err="} {
			if !strings.Contains(got, want) {
				t.Errorf("%v: log %q lacks %q", err, got, want)
			}
		}
	}
	f(errors.New("disk on fire"), "ERROR")
	// Logged once where it arises (the store, the reserve), not per request.
	f(usage.Errorf(usage.KindUnavailable, "", "shutting down"), "DEBUG")
	f(usage.Errorf(usage.KindNotFound, "", "nope"), "DEBUG")
}

func TestDisplayName(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := DisplayName(in); got != want {
			t.Errorf("DisplayName(%q) = %q, want %q", in, got, want)
		}
	}
	f("Name", "Name")
	f("PrimaryDomain", "Primary Domain")
	f("ServiceGuid", "Service Guid")
	f("CreatedAfterDateTime", "Created After Date Time")
	f("Contact.PhoneNumber", "Contact Phone Number")
	f("URLName", "URL Name")
	f("ID", "ID")
	f("Page2Size", "Page2 Size")
	f("", "")

	if got := NotEmpty("PrimaryDomain"); got != (FieldError{"NotEmpty", "PrimaryDomain", "'Primary Domain' must not be empty."}) {
		t.Errorf("notEmpty: %+v", got)
	}
}
