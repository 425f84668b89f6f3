package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/usaged/usaged/client"
	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/usage"
)

// usaged events lists a page with the cursor of the next, every page with
// --all, and NDJSON in the ingest route's format.
func TestEventsCLI(t *testing.T) {
	t.Parallel()
	const token = "events-cli-admin-token"
	srv := mustServe(t, "--data", t.TempDir(), "--store", "memory:", "--admin-token", token)
	ctx := context.Background()
	admin, err := client.New(client.Config{Server: srv.base, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	org, err := admin.CreateOrganization(ctx, "Events")
	if err != nil {
		t.Fatal(err)
	}
	tokenOf := func(perm string) string {
		c, err := admin.CreateClient(ctx, org.ID, wire.CreateClientRequest{Name: perm, Permissions: []string{perm}})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := admin.AccessToken(ctx, c.ID, c.Secret)
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}
	writer, viewer := tokenOf(usage.PermEventAdd), tokenOf(usage.PermOrganizationView)

	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	var body []byte
	for i := range 5 {
		ev := usage.Event{ID: fmt.Sprint("e", i), Time: at.Add(time.Duration(i) * time.Minute), ClientID: fmt.Sprint("c", i%2), ClientName: "CRM",
			TemplateURI: "api/v2/users", HTTPMethod: "GET", Status: 200, ResponseBytes: 1234567}
		body = ingest.AppendNDJSON(body, &ev)
	}
	if res, err := admin.WithToken(writer).PostEvents(ctx, body, false); err != nil || res.Accepted != 5 {
		t.Fatalf("ingest: %+v, %v", res, err)
	}

	env := map[string]string{"USAGED_SERVER": srv.base, "USAGED_TOKEN": viewer}
	interval := at.Format(time.RFC3339) + "/PT1H"
	out := runCLI(t, env, "events", "--interval", interval, "--page-size", "2")
	cursor := regexp.MustCompile(`2 events; more follow: --cursor (\S+) `).FindStringSubmatch(out)
	if !strings.HasPrefix(out, "TIME ") || !strings.Contains(out, "e1 ") || strings.Contains(out, "e2 ") || !strings.Contains(out, "1,234,567") || cursor == nil {
		t.Fatalf("first page:\n%s", out)
	}
	out = runCLI(t, env, "events", "--interval", interval, "--page-size", "2", "--cursor", cursor[1])
	if !strings.Contains(out, "e2 ") || !strings.Contains(out, "e3 ") || strings.Contains(out, "e1 ") {
		t.Fatalf("second page:\n%s", out)
	}
	out = runCLI(t, env, "events", "--interval", interval, "--page-size", "2", "--all")
	if strings.Count(out, "\n") != 7 || !strings.HasSuffix(out, "\n5 events\n") {
		t.Fatalf("every page:\n%s", out)
	}
	out = runCLI(t, env, "events", "--interval", interval, "--page-size", "1", "--all", "--client-id", "c1", "--format", "ndjson")
	var ids []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		ev := mustJSON[wire.Event](t, line)
		ids = append(ids, ev.ID)
		if ev.ClientID != "c1" || ev.OrganizationID != org.ID || ev.ResponseBytes != 1234567 {
			t.Errorf("ndjson event %s", line)
		}
	}
	if strings.Join(ids, ",") != "e1,e3" {
		t.Errorf("ndjson of c1: %v", ids)
	}
	// Sent back, the NDJSON is all duplicates.
	if res, err := admin.WithToken(writer).PostEvents(ctx, []byte(out), false); err != nil || res.Duplicates != 2 {
		t.Errorf("ndjson sent back: %+v, %v", res, err)
	}

	// The server's refusal comes back with the parameter at fault.
	_, err = tryCLI(t, env, "events", "--interval", "2026-01-01/2026-03-01")
	var ae *apiError
	if !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(ae.Message, "31 days") {
		t.Fatalf("a long interval: %v", err)
	}
}
