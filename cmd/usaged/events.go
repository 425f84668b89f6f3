package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/usaged/usaged/client"
	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/internal/cmdline"
	"github.com/usaged/usaged/internal/flagvalue"
	"github.com/usaged/usaged/internal/termout"
)

type eventsFlags struct {
	remote *remoteFlags
	query  client.EventsQuery
	// The filters, each comma-separated and repeatable.
	clientIDs, userIDs, templateURIs, httpMethods flagvalue.List
	all                                           bool
	format                                        flagvalue.OneOf
}

func (c *cli) eventsCommand() *cmdline.Command {
	cmd := c.newCommand("events", "list the accepted events of an organization, for debugging a count",
		`Lists the events the server accepted in an interval (GET /api/v2/usage/events),
each once, in order of time, client and event id: which events made a count.
The listing is of the token's organization: use a client's token with
usage:organization:view or oauth:client:view, not the admin token. Only a server
whose store keeps the events lists them (the cluster backend, --store
clickhouse://…); the embedded store keeps only counts.

One page is printed, with the cursor of the next if there is one; --all follows
the cursors to the end. The table shows each event's fields; ndjson prints one
event a line in the format POST /api/v2/usage/events takes.`)
	f := &eventsFlags{format: flagvalue.OneOf{Value: "table", Allowed: []string{"table", "ndjson"}}}
	f.remote = addRemoteFlags(cmd.Flags, "bearer token: a client access token")
	fs := cmd.Flags
	fs.StringVar(&f.query.Interval, "interval", "", "ISO-8601 interval of at most 31 days, required: 2026-01-01/2026-01-07, 2026-01-01T00:00:00Z/PT1H")
	fs.Var(&f.clientIDs, "client-id", "only the events of these OAuth client `ids` (comma-separated, repeatable)")
	fs.Var(&f.userIDs, "user-id", "only the events of these user `ids` (comma-separated, repeatable)")
	fs.Var(&f.templateURIs, "template-uri", "only the events of these route `templates` (comma-separated, repeatable)")
	fs.Var(&f.httpMethods, "http-method", "only the events of these HTTP `methods` (comma-separated, repeatable)")
	fs.IntVar(&f.query.PageSize, "page-size", 100, "events per request, 1 to 1000")
	fs.StringVar(&f.query.Cursor, "cursor", "", "start at the page of this cursor, printed after the previous page")
	fs.BoolVar(&f.all, "all", false, "follow the cursors and list every event of the interval")
	fs.Var(&f.format, "format", "output `format`: table or ndjson")
	cmd.Run = func(ctx context.Context) error { return c.events(ctx, f) }
	return cmd
}

func (c *cli) events(ctx context.Context, f *eventsFlags) error {
	if f.query.Interval == "" {
		return cmdline.UsageError{Err: errors.New("--interval is required, e.g. --interval 2026-01-01/2026-01-07")}
	}
	if err := inRange(bound{"page-size", f.query.PageSize, 1, 1000}); err != nil {
		return err
	}
	if f.remote.token == "" {
		return cmdline.UsageError{Err: errors.New("events needs --token (or $USAGED_TOKEN): a client access token")}
	}
	api, err := f.remote.client(false, 1)
	if err != nil {
		return err
	}
	q := f.query
	q.ClientIDs, q.UserIDs, q.TemplateURIs, q.HTTPMethods = f.clientIDs, f.userIDs, f.templateURIs, f.httpMethods
	var listed []wire.Event
	for {
		page, err := api.Events(ctx, q)
		if err != nil {
			return err
		}
		if f.format.Value == "ndjson" {
			if err := writeEventsNDJSON(c.stdout, page.Entities); err != nil {
				return err
			}
		} else {
			listed = append(listed, page.Entities...)
		}
		q.Cursor = page.Cursor
		if q.Cursor == "" || !f.all {
			break
		}
	}
	if f.format.Value == "ndjson" {
		return nil
	}
	return writeEventsTable(c.stdout, listed, q.Cursor)
}

// writeEventsNDJSON writes evs one a line.
func writeEventsNDJSON(w io.Writer, evs []wire.Event) error {
	enc := json.NewEncoder(w)
	for i := range evs {
		if err := enc.Encode(&evs[i]); err != nil {
			return err
		}
	}
	return nil
}

// writeEventsTable writes evs as a table, then how many there are and,
// when more follow, the cursor of the next page.
func writeEventsTable(w io.Writer, evs []wire.Event, next string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tID\tCLIENT ID\tCLIENT NAME\tUSER\tMETHOD\tTEMPLATE\tSTATUS\tPLATFORM\tMS\tREQUEST BYTES\tRESPONSE BYTES\t")
	for i := range evs {
		ev := &evs[i]
		fmt.Fprintln(tw, strings.Join([]string{
			ev.Time.UTC().Format(time.RFC3339Nano), ev.ID, ev.ClientID, ev.ClientName, ev.UserID, ev.HTTPMethod, ev.TemplateURI,
			strconv.Itoa(ev.Status), ev.Platform, termout.Group(ev.DurationMs), termout.Group(ev.RequestBytes), termout.Group(ev.ResponseBytes),
		}, "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if next != "" {
		_, err := fmt.Fprintf(w, "%s; more follow: --cursor %s for the next page, or --all for every one\n", termout.Plural(len(evs), "event"), next)
		return err
	}
	_, err := fmt.Fprintf(w, "%s\n", termout.Plural(len(evs), "event"))
	return err
}
