package ingest

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/usaged/usaged/usage"
)

// maxNameLen is the longest name, in bytes, an event field may hold.
const maxNameLen = 256

var httpMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE"}

// check validates ev in place (normalizing the template and method) and
// returns the error to report when it is not acceptable.
func (p *Pipeline) check(ev *usage.Event, scope Scope, now, from time.Time) (EventError, bool) {
	missing := func(field string) (EventError, bool) {
		return EventError{ID: ev.ID, Code: CodeMissingField, Message: field + " is required"}, false
	}
	invalid := func(format string, args ...any) (EventError, bool) {
		return EventError{ID: ev.ID, Code: CodeInvalidField, Message: fmt.Sprintf(format, args...)}, false
	}
	switch {
	case ev.ID == "":
		return missing("id")
	case len(ev.ID) > usage.MaxEventIDLen:
		return invalid("id is %d bytes long; the limit is %d", len(ev.ID), usage.MaxEventIDLen)
	case !utf8.ValidString(ev.ID):
		return invalid("id is not valid UTF-8")
	case ev.Time.IsZero():
		return missing("time")
	case ev.Time.Before(time.Unix(0, 0)):
		return invalid("time %s is before 1970-01-01", ev.Time.Format(time.RFC3339))
	}
	if scope.OrganizationID != "" {
		switch ev.OrganizationID {
		case "":
			ev.OrganizationID = scope.OrganizationID
		case scope.OrganizationID:
		default:
			return EventError{ID: ev.ID, Code: CodeForbiddenOrganization,
				Message: fmt.Sprintf("organizationId %q is not the organization of this token", ev.OrganizationID)}, false
		}
	} else if ev.OrganizationID == "" {
		return missing("organizationId")
	} else if p.cfg.KnownOrganization != nil && !p.cfg.KnownOrganization(ev.OrganizationID) {
		return invalid("organizationId %q is not a known organization", ev.OrganizationID)
	}
	ev.TemplateURI = strings.TrimLeft(ev.TemplateURI, "/")
	for _, f := range []struct {
		name, val string
		required  bool
		max       int
	}{
		{"clientId", ev.ClientID, true, maxNameLen},
		{"clientName", ev.ClientName, true, maxNameLen},
		{"templateUri", ev.TemplateURI, true, usage.MaxTemplateLen},
		{"userId", ev.UserID, false, maxNameLen},
		{"platform", ev.Platform, false, maxNameLen},
	} {
		switch {
		case f.val == "" && f.required:
			return missing(f.name)
		case len(f.val) > f.max:
			return invalid("%s is %d bytes long; the limit is %d", f.name, len(f.val), f.max)
		case !printable(f.val):
			return invalid("%s %q holds control characters or invalid UTF-8", f.name, f.val)
		}
	}
	if ev.HTTPMethod == "" {
		return missing("httpMethod")
	}
	if m := strings.ToUpper(ev.HTTPMethod); slices.Contains(httpMethods, m) {
		ev.HTTPMethod = m
	} else {
		return invalid("httpMethod %q is not one of %s", truncate(ev.HTTPMethod), strings.Join(httpMethods, ", "))
	}
	switch {
	case ev.Status == 0:
		return missing("status")
	case ev.Status < 100 || ev.Status > 599:
		return invalid("status %d is not an HTTP status from 100 to 599", ev.Status)
	}
	for _, f := range []struct {
		name     string
		val, max int64
	}{
		{"durationMs", ev.DurationMs, usage.MaxDurationMs},
		{"requestBytes", ev.RequestBytes, usage.MaxBytes},
		{"responseBytes", ev.ResponseBytes, usage.MaxBytes},
	} {
		if f.val < 0 || f.val > f.max {
			return invalid("%s %d is not from 0 to %d", f.name, f.val, f.max)
		}
	}
	return inWindow(ev.ID, ev.Time, now, from)
}

// inWindow checks an event time against the dedupe window starting at from
// and the server clock now: an older event could not be deduplicated, and
// one from the future is a client's clock gone wrong.
func inWindow(id string, t, now, from time.Time) (EventError, bool) {
	switch {
	case t.Before(from):
		return EventError{ID: id, Code: CodeOutsideWindow, Message: fmt.Sprintf(
			"time %s is before the dedupe window, which starts at %s", t.Format(time.RFC3339), from.UTC().Format(time.RFC3339))}, false
	case t.After(now.Add(MaxFuture)):
		return EventError{ID: id, Code: CodeInFuture, Message: fmt.Sprintf(
			"time %s is more than %s ahead of the server clock (%s)", t.Format(time.RFC3339), MaxFuture, now.UTC().Format(time.RFC3339))}, false
	}
	return EventError{}, true
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return false
		}
		if c >= utf8.RuneSelf {
			return utf8.ValidString(s[i:]) && !strings.ContainsFunc(s[i:], func(r rune) bool { return r < 0x20 || (r >= 0x7f && r < 0xa0) })
		}
	}
	return true
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func sortErrors(es []EventError) {
	slices.SortFunc(es, func(a, b EventError) int { return a.Index - b.Index })
}
