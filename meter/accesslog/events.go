package accesslog

import (
	"errors"
	"io"

	"github.com/usaged/usaged/usage"
)

// Attribution says whose usage a log's requests are, and how a path
// becomes a route template.
type Attribution struct {
	// Template maps a request's path to its route template.
	Template func(path string) string
	// Org, Client and ClientName attribute every request; ClientName
	// defaults to the client id.
	Org, Client, ClientName string
	// In JSON logs, the fields (dotted paths) that hold the organization,
	// client id, client name and user of a request, when not empty; a
	// line's value wins over Org, Client and ClientName.
	FieldOrg, FieldClient, FieldClientName, FieldUser string
	// RemoteUserIsUser records the authenticated remote user (%u) of
	// combined logs as the user.
	RemoteUserIsUser bool
	// Platform is every event's platform.
	Platform string
}

// Event returns the usage event of line, with id.
func (a *Attribution) Event(line *Line, id string) usage.Event {
	ev := usage.Event{
		ID: id, Time: line.Time, TemplateURI: a.Template(line.Path),
		HTTPMethod: line.Method, Status: line.Status, OrganizationID: a.Org, ClientID: a.Client, ClientName: a.ClientName,
		DurationMs: line.DurationMs, RequestBytes: line.RequestBytes, ResponseBytes: line.Bytes, Platform: a.Platform,
	}
	ev.ClampMeasures()
	if a.RemoteUserIsUser {
		ev.UserID = line.RemoteUser
	}
	for _, fv := range []struct {
		field string
		dst   *string
	}{{a.FieldOrg, &ev.OrganizationID}, {a.FieldClient, &ev.ClientID}, {a.FieldClientName, &ev.ClientName}, {a.FieldUser, &ev.UserID}} {
		if fv.field != "" {
			if v := line.Fields[fv.field]; v != "" {
				*fv.dst = v
			}
		}
	}
	if ev.ClientName == "" {
		ev.ClientName = ev.ClientID
	}
	return ev
}

// ReadEvents reads the log r in format f and hands its requests to send
// as usage events, batch at a time, with ids from ids. A line that cannot
// be read is handed to bad, and reading goes on. It returns the lines
// read, bad ones included, and the first error of reading or of send.
func ReadEvents(r io.Reader, f Format, ids *EventIDs, a *Attribution, batch int, send func([]usage.Event) error, bad func(*ParseError)) (int, error) {
	rd, err := NewReader(r, f)
	if err != nil {
		return 0, err
	}
	var evs []usage.Event
	lines := 0
	for {
		line, _, raw, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var pe *ParseError
		if errors.As(err, &pe) {
			lines++
			bad(pe)
			continue
		}
		if err != nil {
			return lines, err
		}
		lines++
		if evs = append(evs, a.Event(&line, ids.Next(raw))); len(evs) == batch {
			if err := send(evs); err != nil {
				return lines, err
			}
			evs = evs[:0]
		}
	}
	if len(evs) > 0 {
		return lines, send(evs)
	}
	return lines, nil
}
