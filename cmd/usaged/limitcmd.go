package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/usaged/usaged/client"
	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/internal/cmdline"
	"github.com/usaged/usaged/internal/flagvalue"
	"github.com/usaged/usaged/internal/termout"
)

// limitTokenHelp is the help of --token of the limit commands.
const limitTokenHelp = "access token of a client holding usage:limit:view (and usage:limit:edit to change limits), or the admin token with --org"

const limitDetails = `Usage limits bound one metric of an organization's requests over a window:
requests, status200, status300, status400 (429 included), status500,
status429, errorRate ((status400 + status500) / requests, a ratio such as
0.05) or responseBytes, over the hour, day, ISO week or month in a time zone,
or over the last N minutes (--window rolling --minutes N, on the embedded
store or the cluster).
A client's token acts on its own organization; the admin token names one
with --org.`

// newLimitCommand starts a limit command with the flags that reach the
// server and --org.
func (c *cli) newLimitCommand(name, summary string) (*cmdline.Command, *remoteFlags, *string) {
	cmd := c.newCommand(name, summary, limitDetails)
	remote := addRemoteFlags(cmd.Flags, limitTokenHelp)
	org := cmd.Flags.String("org", "", "organization id, with the admin token")
	return cmd, remote, org
}

// limitFlags are the flags that define a limit, for create and update.
type limitFlags struct {
	name, scope, clientID, metric, window, timeZone string
	minutes                                         int
	value                                           float64
	thresholds                                      flagvalue.List
	enforced                                        bool
	users, templates, methods                       flagvalue.List
}

func addLimitFlags(fs *flag.FlagSet) *limitFlags {
	f := &limitFlags{}
	fs.StringVar(&f.name, "name", "", "name of the limit")
	fs.StringVar(&f.scope, "scope", "organization", "what is counted: organization, client (with --client) or eachClient")
	fs.StringVar(&f.clientID, "client", "", "client id of scope client, as events name it")
	fs.StringVar(&f.metric, "metric", "requests", "requests, status200, status300, status400, status500, status429, errorRate or responseBytes")
	fs.StringVar(&f.window, "window", "day", "window: hour, day, week or month (calendar), or rolling (with --minutes)")
	fs.IntVar(&f.minutes, "minutes", 0, "length of a rolling window in minutes, 1 to 1440")
	fs.StringVar(&f.timeZone, "time-zone", "", "IANA time zone of the window, such as Europe/Berlin (default UTC)")
	fs.Float64Var(&f.value, "value", 0, "the limit: a count, or a ratio such as 0.05 for errorRate")
	fs.Var(&f.thresholds, "thresholds", "comma-separated `percentages` to notify at, such as 50,80,100")
	fs.BoolVar(&f.enforced, "enforced", false, "whether the limit is to be enforced")
	fs.Var(&f.users, "users", "comma-separated user `ids` to count only")
	fs.Var(&f.templates, "templates", "comma-separated route `templates` to count only")
	fs.Var(&f.methods, "methods", "comma-separated HTTP `methods` to count only")
	return f
}

// apply sets in req what the flags say: every flag when all, else only
// those given on the command line (set).
func (f *limitFlags) apply(req *wire.LimitRequest, all bool, set map[string]bool) error {
	is := func(name string) bool { return all || set[name] }
	if is("name") {
		req.Name = f.name
	}
	if is("scope") {
		req.Scope = f.scope
		if f.scope != "client" && !set["client"] {
			req.ClientID = ""
		}
	}
	if is("client") {
		req.ClientID = f.clientID
	}
	if is("metric") {
		req.Metric = f.metric
	}
	if req.Window == nil {
		req.Window = &wire.LimitWindow{}
	}
	if is("window") {
		req.Window.Type = f.window
		if f.window != "rolling" && !set["minutes"] {
			req.Window.Minutes = 0
		}
	}
	if is("minutes") {
		req.Window.Minutes = f.minutes
	}
	if is("time-zone") {
		req.Window.TimeZone = f.timeZone
	}
	if is("value") {
		v := f.value
		req.Value = &v
	}
	if is("thresholds") {
		req.Thresholds = []int{}
		for _, s := range f.thresholds {
			p, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(s, "%")))
			if err != nil {
				return cmdline.UsageError{Err: fmt.Errorf("--thresholds: %q is not a whole percentage", s)}
			}
			req.Thresholds = append(req.Thresholds, p)
		}
	}
	if is("enforced") {
		req.Enforced = f.enforced
	}
	if req.Filter == nil {
		req.Filter = &wire.LimitFilter{}
	}
	if is("users") {
		req.Filter.UserIDs = f.users
	}
	if is("templates") {
		req.Filter.TemplateURIs = f.templates
	}
	if is("methods") {
		req.Filter.HTTPMethods = f.methods
	}
	return nil
}

// requestOf is the request that replaces l unchanged, at its version.
func requestOf(l wire.Limit) wire.LimitRequest {
	v, version, w, filter := l.Value, l.Version, l.Window, l.Filter
	return wire.LimitRequest{Name: l.Name, Scope: l.Scope, ClientID: l.ClientID, Filter: &filter, Metric: l.Metric,
		Window: &w, Value: &v, Thresholds: l.Thresholds, Enforced: l.Enforced, Version: &version}
}

// runLimit is the Run of a limit command: it calls the server and prints
// the answer as text, or as JSON when format asks for it.
func runLimit[T any](c *cli, remote *remoteFlags, format *flagvalue.OneOf, check func() error,
	call func(context.Context, *client.Client) (T, error), text func(io.Writer, T) error) func(context.Context) error {
	return admin[T]{check: check, call: call, text: text}.run(c, remote, format)
}

// visited returns the names of the flags given on the command line.
func visited(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

func (c *cli) limitCreateCommand() *cmdline.Command {
	cmd, remote, org := c.newLimitCommand("limit create", "create a usage limit")
	f := addLimitFlags(cmd.Flags)
	cmd.Run = runLimit(c, remote, formatFlag(cmd),
		func() error { return required("--name and --value are required", f.name == "", f.value == 0) },
		func(ctx context.Context, api *client.Client) (wire.Limit, error) {
			var req wire.LimitRequest
			if err := f.apply(&req, true, nil); err != nil {
				return wire.Limit{}, err
			}
			return api.CreateLimit(ctx, req, client.LimitOptions{OrganizationID: *org})
		},
		func(w io.Writer, l wire.Limit) error { return printLimit(w, "created ", l) })
	return cmd
}

func (c *cli) limitUpdateCommand() *cmdline.Command {
	cmd, remote, org := c.newLimitCommand("limit update", "change a usage limit: only what the flags given name")
	id := cmd.Flags.String("id", "", "limit id, required")
	f := addLimitFlags(cmd.Flags)
	cmd.Run = runLimit(c, remote, formatFlag(cmd),
		func() error { return required("--id is required", *id == "") },
		func(ctx context.Context, api *client.Client) (wire.Limit, error) {
			o := client.LimitOptions{OrganizationID: *org}
			l, err := api.Limit(ctx, *id, o)
			if err != nil {
				return l, err
			}
			// Made from the version read: a change in between is a
			// conflict rather than lost.
			req := requestOf(l)
			if err := f.apply(&req, false, visited(cmd.Flags)); err != nil {
				return wire.Limit{}, err
			}
			return api.UpdateLimit(ctx, *id, req, o)
		},
		func(w io.Writer, l wire.Limit) error { return printLimit(w, "updated ", l) })
	return cmd
}

func (c *cli) limitGetCommand() *cmdline.Command {
	cmd, remote, org := c.newLimitCommand("limit get", "show a usage limit")
	id := cmd.Flags.String("id", "", "limit id, required")
	cmd.Run = runLimit(c, remote, formatFlag(cmd),
		func() error { return required("--id is required", *id == "") },
		func(ctx context.Context, api *client.Client) (wire.Limit, error) {
			return api.Limit(ctx, *id, client.LimitOptions{OrganizationID: *org})
		},
		func(w io.Writer, l wire.Limit) error { return printLimit(w, "", l) })
	return cmd
}

func (c *cli) limitListCommand() *cmdline.Command {
	cmd, remote, org := c.newLimitCommand("limit list", "list the usage limits, with their status")
	rows := termout.Table("ID\tNAME\tMETRIC\tSCOPE\tWINDOW\tVALUE\tLIMIT\tPERCENT\tENFORCED\t", "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%t\t\n",
		func(l wire.Limit) []any {
			value, pct := "", ""
			if st := l.Status; st != nil {
				value, pct = number(st.Value), fmt.Sprintf("%.1f %%", st.Percentage)
			}
			return []any{l.ID, l.Name, l.Metric, scopeText(l), windowText(l.Window), value, number(l.Value), pct, l.Enforced}
		})
	cmd.Run = runLimit(c, remote, formatFlag(cmd), nil,
		func(ctx context.Context, api *client.Client) (wire.Entities[wire.Limit], error) {
			ls, err := api.AllLimits(ctx, client.LimitOptions{OrganizationID: *org, Status: true, PageSize: 500})
			if ls == nil {
				ls = []wire.Limit{}
			}
			return wire.Entities[wire.Limit]{Entities: ls}, err
		},
		func(w io.Writer, v wire.Entities[wire.Limit]) error { return rows(w, v.Entities) })
	return cmd
}

func (c *cli) limitDeleteCommand() *cmdline.Command {
	cmd, remote, org := c.newLimitCommand("limit delete", "delete a usage limit")
	id := cmd.Flags.String("id", "", "limit id, required")
	cmd.Run = runLimit(c, remote, nil,
		func() error { return required("--id is required", *id == "") },
		func(ctx context.Context, api *client.Client) (struct{}, error) {
			return struct{}{}, api.DeleteLimit(ctx, *id, client.LimitOptions{OrganizationID: *org})
		},
		termout.Printed("deleted limit %s\n", func(struct{}) []any { return []any{*id} }))
	return cmd
}

func (c *cli) limitStatusCommand() *cmdline.Command {
	cmd, remote, org := c.newLimitCommand("limit status", "show where a usage limit stands in its current window")
	id := cmd.Flags.String("id", "", "limit id, required")
	clients := termout.Table("  CLIENT\tNAME\tVALUE\tPERCENT\t", "  %s\t%s\t%s\t%.1f %%\t\n",
		func(c wire.ClientLimitStatus) []any {
			return []any{c.ClientID, c.ClientName, number(c.Value), c.Percentage}
		})
	cmd.Run = runLimit(c, remote, formatFlag(cmd),
		func() error { return required("--id is required", *id == "") },
		func(ctx context.Context, api *client.Client) (wire.LimitStatus, error) {
			return api.LimitStatus(ctx, *id, client.LimitOptions{OrganizationID: *org})
		},
		func(w io.Writer, st wire.LimitStatus) error {
			fmt.Fprintf(w, "limit %s: %s %s of %s (%.1f %%)\n  window   %s to %s\n  reached  %s\n  as of    %s\n",
				st.LimitID, st.Metric, number(st.Value), number(st.Limit), st.Percentage, st.WindowStart, st.WindowEnd,
				percents(st.ThresholdsReached), st.DateEvaluated)
			if st.Clients == nil {
				return nil
			}
			return clients(w, st.Clients)
		})
	return cmd
}

// printLimit prints l for a person, after verb ("created ", …).
func printLimit(w io.Writer, verb string, l wire.Limit) error {
	var filter []string
	for _, f := range []struct {
		name string
		list []string
	}{{"users", l.Filter.UserIDs}, {"templates", l.Filter.TemplateURIs}, {"methods", l.Filter.HTTPMethods}} {
		if len(f.list) > 0 {
			filter = append(filter, f.name+" "+strings.Join(f.list, ","))
		}
	}
	if filter == nil {
		filter = []string{"none"}
	}
	_, err := fmt.Fprintf(w, "%slimit %q\n  id          %s\n  metric      %s of %s\n  limit       %s\n  window      %s\n  filter      %s\n  thresholds  %s\n  enforced    %t\n  version     %d (modified %s)\n",
		verb, l.Name, l.ID, l.Metric, scopeText(l), number(l.Value), windowText(l.Window), strings.Join(filter, "; "),
		percents(l.Thresholds), l.Enforced, l.Version, l.DateModified)
	return err
}

func scopeText(l wire.Limit) string {
	switch l.Scope {
	case "client":
		return "client " + l.ClientID
	case "eachClient":
		return "each client"
	}
	return l.Scope
}

func windowText(w wire.LimitWindow) string {
	if w.Type == "rolling" {
		return fmt.Sprintf("rolling %d minutes", w.Minutes)
	}
	zone := w.TimeZone
	if zone == "" {
		zone = "UTC"
	}
	return w.Type + " (" + zone + ")"
}

// number prints a count as a whole number and a ratio as it is.
func number(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func percents(ps []int) string {
	if len(ps) == 0 {
		return "none"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(p) + " %"
	}
	return strings.Join(s, ", ")
}
