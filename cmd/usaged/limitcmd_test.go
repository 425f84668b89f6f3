package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usaged/usaged/client"
	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/usage"
)

// usaged limit creates, shows, changes, lists and deletes a limit, and its
// status counts the events sent, each client on its own.
func TestLimitCLI(t *testing.T) {
	t.Parallel()
	const token = "limit-cli-admin-token"
	srv := mustServe(t, "--data", t.TempDir(), "--store", "memory:", "--admin-token", token)
	ctx := context.Background()
	admin, err := client.New(client.Config{Server: srv.base, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	org, err := admin.CreateOrganization(ctx, "Limits")
	if err != nil {
		t.Fatal(err)
	}
	c, err := admin.CreateClient(ctx, org.ID, wire.CreateClientRequest{Name: "limits",
		Permissions: []string{usage.PermLimitView, usage.PermLimitEdit, usage.PermEventAdd}})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := admin.AccessToken(ctx, c.ID, c.Secret)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"USAGED_SERVER": srv.base, "USAGED_TOKEN": tok.AccessToken}

	if _, err := tryCLI(t, env, "limit", "create", "--value", "4"); err == nil || !strings.Contains(err.Error(), "--name and --value are required") {
		t.Fatalf("create without --name: %v", err)
	}
	l := mustJSON[wire.Limit](t, runCLI(t, env, "limit", "create", "--name", "server errors", "--metric", "status500", "--scope", "eachClient",
		"--window", "month", "--value", "4", "--thresholds", "100,50", "--format", "json"))
	if l.ID == "" || l.Metric != "status500" || l.Scope != "eachClient" || l.Value != 4 || l.Window.Type != "month" || !slices.Equal(l.Thresholds, []int{50, 100}) {
		t.Fatalf("created %+v", l)
	}

	// c1: three 5xx and a 200; c2: one 503.
	at := time.Now().UTC().Truncate(time.Second)
	var body []byte
	sent := []struct {
		client string
		status int
	}{{"c1", 500}, {"c1", 502}, {"c1", 503}, {"c1", 200}, {"c2", 503}}
	for i, s := range sent {
		ev := usage.Event{ID: fmt.Sprint("e", i), Time: at, ClientID: s.client, ClientName: "name " + s.client,
			TemplateURI: "api/v2/users", HTTPMethod: "GET", Status: s.status}
		body = ingest.AppendNDJSON(body, &ev)
	}
	if res, err := admin.WithToken(tok.AccessToken).PostEvents(ctx, body, false); err != nil || res.Accepted != 5 {
		t.Fatalf("ingest: %+v, %v", res, err)
	}

	st := mustJSON[wire.LimitStatus](t, runCLI(t, env, "limit", "status", "--id", l.ID, "--format", "json"))
	if start, err := time.Parse(time.RFC3339, st.WindowStart); err != nil || at.Before(start) {
		// The month turned between the events and the status: they are
		// in the last one.
		t.Skipf("the events are not in the window %s of the status", st.WindowStart)
	}
	want := []wire.ClientLimitStatus{{ClientID: "c1", ClientName: "name c1", Value: 3, Percentage: 75}, {ClientID: "c2", ClientName: "name c2", Value: 1, Percentage: 25}}
	if st.LimitID != l.ID || st.Value != 3 || st.Limit != 4 || st.Percentage != 75 || !slices.Equal(st.ThresholdsReached, []int{50}) || !slices.Equal(st.Clients, want) {
		t.Fatalf("status %+v", st)
	}
	out := runCLI(t, env, "limit", "status", "--id", l.ID)
	if !strings.Contains(out, "status500 3 of 4 (75.0 %)") || !strings.Contains(out, "reached  50 %") || !strings.Contains(out, "c2") {
		t.Errorf("status:\n%s", out)
	}

	// update changes only what its flags name.
	u := mustJSON[wire.Limit](t, runCLI(t, env, "limit", "update", "--id", l.ID, "--value", "10", "--format", "json"))
	if u.Value != 10 || u.Version != 2 || u.Metric != "status500" || u.Scope != "eachClient" || u.Name != "server errors" || !slices.Equal(u.Thresholds, []int{50, 100}) {
		t.Fatalf("updated %+v", u)
	}
	out = runCLI(t, env, "limit", "list")
	if !strings.Contains(out, l.ID) || !strings.Contains(out, "30.0 %") || !strings.Contains(out, "month (UTC)") {
		t.Errorf("list:\n%s", out)
	}
	// The admin token names the organization.
	adminEnv := map[string]string{"USAGED_SERVER": srv.base, "USAGED_TOKEN": token}
	if got := mustJSON[wire.Entities[wire.Limit]](t, runCLI(t, adminEnv, "limit", "list", "--org", org.ID, "--format", "json")); len(got.Entities) != 1 || got.Entities[0].ID != l.ID {
		t.Errorf("admin list %+v", got)
	}
	if out := runCLI(t, env, "limit", "get", "--id", l.ID); !strings.Contains(out, `limit "server errors"`) || !strings.Contains(out, "status500 of each client") {
		t.Errorf("get:\n%s", out)
	}
	// A rolling window reaches the server, which counts one only on the
	// embedded store.
	if _, err := tryCLI(t, env, "limit", "update", "--id", l.ID, "--window", "rolling", "--minutes", "5"); err == nil || !strings.Contains(err.Error(), "only the embedded store") {
		t.Errorf("a rolling window on the memory store: %v", err)
	}
	if out := runCLI(t, env, "limit", "delete", "--id", l.ID); out != "deleted limit "+l.ID+"\n" {
		t.Errorf("delete: %q", out)
	}
	if _, err := tryCLI(t, env, "limit", "get", "--id", l.ID); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("get after delete: %v", err)
	}
}
