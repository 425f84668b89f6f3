package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/usaged/usaged/demo"
	"github.com/usaged/usaged/internal/cmdline"
	"github.com/usaged/usaged/usage"
)

// getWithKey sends GET url with a bearer key and returns the answer.
func getWithKey(t *testing.T, url, key string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// servicesPage is the part of a GetServicesUsage answer the tests read.
type servicesPage struct {
	TotalItems int `json:"totalItems"`
	Results    []struct {
		ServiceGuid       string `json:"serviceGuid"`
		Period            string `json:"period"`
		Status            string `json:"status"`
		TotalUserCount    int64  `json:"totalUserCount"`
		TotalMessageCount int64  `json:"totalMessageCount"`
	} `json:"results"`
}

func TestServicesCLI(t *testing.T) {
	t.Parallel()
	const token = "services-cli-admin-token"
	srv := mustServe(t, "--data", t.TempDir(), "--admin-token", token)
	env := map[string]string{"USAGED_SERVER": srv.base, "USAGED_ADMIN_TOKEN": token}

	p := mustJSON[partnerBody](t, runCLI(t, env, "partner", "create", "--name", "Acme Partners", "--format", "json"))
	if _, err := usage.ParseGUID(p.PartnerGuid); err != nil || p.Name != "Acme Partners" {
		t.Fatalf("partner create gave %+v", p)
	}
	if out := runCLI(t, env, "partner", "list"); !strings.Contains(out, p.PartnerGuid) || !strings.Contains(out, "Acme Partners") {
		t.Fatalf("partner list:\n%s", out)
	}
	if out := runCLI(t, env, "partner", "create", "--name", "Other Partners"); !strings.Contains(out, `created partner "Other Partners"`) {
		t.Fatalf("partner create:\n%s", out)
	}
	x := mustJSON[resellerBody](t, runCLI(t, env, "reseller", "create", "--partner", p.PartnerGuid, "--name", "Acme Resale", "--format", "json"))
	if x.ResellerGuid == "" || x.PartnerGuid != p.PartnerGuid {
		t.Fatalf("reseller create gave %+v", x)
	}
	if out := runCLI(t, env, "reseller", "list", "--partner", p.PartnerGuid); !strings.Contains(out, x.ResellerGuid) {
		t.Fatalf("reseller list:\n%s", out)
	}

	// A service under the reseller, made with the admin token.
	admin, err := (&remoteFlags{server: srv.base, token: token, timeout: time.Minute}).client(true, 1)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := createService(t.Context(), admin, serviceBody{Name: "Harbor Legal", ResellerGuid: x.ResellerGuid}, "harborlaw.com")
	if err != nil {
		t.Fatal(err)
	}

	// The partner's key, printed once with a request that works.
	out := runCLI(t, env, "apikey", "create", "--name", "Acme reporting", "--partner", p.PartnerGuid)
	m := regexp.MustCompile(`(?m)^  key  (usk_\S+)\n[\s\S]*curl -s -H 'Authorization: Bearer (\S+)' (\S+)\n`).FindStringSubmatch(out)
	if m == nil || m[1] != m[2] || m[3] != srv.base+"/api/services/usage" {
		t.Fatalf("apikey create printed:\n%s", out)
	}
	key := m[1]
	status, _, body := getWithKey(t, m[3], key)
	page := mustJSON[servicesPage](t, body)
	if status != 200 || page.TotalItems != 1 || page.Results[0].ServiceGuid != svc.ServiceGuid {
		t.Fatalf("GET /api/services/usage with the partner's key: %d %s", status, body)
	}

	// A key of the service sees it; one of another partner does not.
	sk := mustJSON[apiKeyBody](t, runCLI(t, env, "apikey", "create", "--name", "One service", "--service", svc.ServiceGuid, "--format", "json"))
	if !strings.HasPrefix(sk.Key, "usk_") || len(sk.ID) != 64 || sk.Scope != "service" || sk.ScopeGuid != svc.ServiceGuid {
		t.Fatalf("apikey create --service gave %+v", sk)
	}
	if status, _, body := getWithKey(t, srv.base+"/api/services/"+svc.ServiceGuid+"/serviceusage", sk.Key); status != 200 || !strings.Contains(body, svc.ServiceGuid) {
		t.Fatalf("GET serviceusage with the service's key: %d %s", status, body)
	}
	others := mustJSON[[]partnerBody](t, runCLI(t, env, "partner", "list", "--format", "json"))
	var other string
	for _, o := range others {
		if o.Name == "Other Partners" {
			other = o.PartnerGuid
		}
	}
	ok := mustJSON[apiKeyBody](t, runCLI(t, env, "apikey", "create", "--name", "Other", "--partner", other, "--format", "json"))
	if status, _, body := getWithKey(t, srv.base+"/api/services/usage", ok.Key); status != 200 || mustJSON[servicesPage](t, body).TotalItems != 0 {
		t.Fatalf("another partner's key: %d %s", status, body)
	}

	keys := mustJSON[[]apiKeyBody](t, runCLI(t, env, "apikey", "list", "--format", "json"))
	if len(keys) != 3 {
		t.Fatalf("apikey list: %+v", keys)
	}
	var partnerKeyID string
	for _, k := range keys {
		if k.Key != "" {
			t.Fatalf("apikey list shows a secret: %+v", k)
		}
		if k.Name == "Acme reporting" {
			partnerKeyID = k.ID
		}
	}
	if out := runCLI(t, env, "apikey", "list"); !strings.Contains(out, partnerKeyID) || !strings.Contains(out, "SCOPE GUID") {
		t.Fatalf("apikey list:\n%s", out)
	}
	runCLI(t, env, "apikey", "delete", "--id", partnerKeyID)
	if status, _, _ := getWithKey(t, srv.base+"/api/services/usage", key); status != http.StatusUnauthorized {
		t.Fatalf("a deleted key answered %d, want 401", status)
	}

	// Errors in the CCC shape come back with their code, message and fields.
	var ae *apiError
	_, err = tryCLI(t, env, "reseller", "create", "--partner", usage.NewGUID().String(), "--name", "Nobody's")
	if !errors.As(err, &ae) || ae.Status != 404 || ae.Code != "NotFound" || ae.Message == "" {
		t.Fatalf("reseller of a missing partner: %v", err)
	}
	_, err = createService(t.Context(), admin, serviceBody{ResellerGuid: x.ResellerGuid}, "")
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != "NotEmpty" || !strings.Contains(err.Error(), "PrimaryDomain") {
		t.Fatalf("a service without a name or domain: %v", err)
	}
	// A scoped key is not the operator's.
	_, err = tryCLI(t, map[string]string{"USAGED_SERVER": srv.base, "USAGED_TOKEN": sk.Key}, "partner", "list")
	if !errors.As(err, &ae) || ae.Status != 403 {
		t.Fatalf("partner list with a service key: %v", err)
	}

	// Mistakes on the command line are caught before any request.
	for _, args := range [][]string{
		{"apikey", "create", "--name", "k"},
		{"apikey", "create", "--name", "k", "--partner", p.PartnerGuid, "--service", svc.ServiceGuid},
		{"apikey", "create", "--name", "k", "--partner", "acme"},
		{"reseller", "create", "--partner", "acme", "--name", "r"},
		{"partner", "create"},
		{"apikey", "delete"},
	} {
		var ue cmdline.UsageError
		if _, err := tryCLI(t, env, args...); !errors.As(err, &ue) {
			t.Errorf("usaged %s: %v, want a usage error", strings.Join(args, " "), err)
		}
	}
}

// usaged demo seeds the service-usage reports too, idempotently, and its
// partner key reads them.
func TestDemoServices(t *testing.T) {
	t.Parallel()
	const token = "demo-services-admin-token"
	srv := mustServe(t, "--data", t.TempDir(), "--admin-token", token)
	env := map[string]string{"USAGED_SERVER": srv.base, "USAGED_ADMIN_TOKEN": token}
	args := []string{"demo", "--clients", "2", "--users", "3", "--templates", "10", "--days", "7", "--events-per-day", "50",
		"--batch", "400", "--concurrency", "2", "--partners", "1", "--resellers-per-partner", "2", "--services-per-reseller", "2",
		"--users-per-service", "8", "--format", "json"}
	first := mustJSON[demo.Summary](t, runCLI(t, env, args...))
	s := first.ServiceUsage
	if s == nil || s.Services != 4 || s.Created != 4 || s.Events == 0 || s.Accepted != s.Events || s.Rejected != 0 || !strings.HasPrefix(s.APIKey, "usk_") {
		t.Fatalf("demo: %+v", s)
	}
	second := mustJSON[demo.Summary](t, runCLI(t, env, args...)).ServiceUsage
	if second.Created != 0 || second.Partners[0].GUID != s.Partners[0].GUID {
		t.Fatalf("second demo run made a new hierarchy: %+v", second)
	}
	if second.Interval == s.Interval && (second.Accepted != 0 || second.Duplicates != s.Events) {
		t.Fatalf("second demo run: %+v, want only duplicates of the first's %d events", second, s.Events)
	}

	// Four services: one Blocked, one Provisioning (set through PUT status
	// or created so), two reported, whose days have users and, over the
	// week, messages.
	iv, err := usage.ParseInterval(s.Interval)
	if err != nil {
		t.Fatal(err)
	}
	var messages int64
	for day := iv.Start; day.Before(iv.End); day = day.AddDate(0, 0, 1) {
		status, _, body := getWithKey(t, srv.base+"/api/services/usage?Period="+day.Format(time.DateOnly), second.APIKey)
		page := mustJSON[servicesPage](t, body)
		if status != 200 || page.TotalItems != 2 || len(page.Results) != 2 {
			t.Fatalf("GET /api/services/usage: %d %s", status, body)
		}
		for _, r := range page.Results {
			if r.TotalUserCount == 0 {
				t.Errorf("service %s has no users on %s: %+v", r.ServiceGuid, day, r)
			}
			messages += r.TotalMessageCount
		}
	}
	if messages == 0 {
		t.Error("the demo services sent no messages in a week")
	}
	day := iv.End.AddDate(0, 0, -1).Format(time.DateOnly)
	status, h, body := getWithKey(t, srv.base+"/api/services/"+s.SampleService+"/serviceusage.csv?Period="+day, s.APIKey)
	if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") || !strings.Contains(body, "TotalMessageCount") || strings.Count(body, "\r\n") != 2 {
		t.Fatalf("GET serviceusage.csv: %d %s\n%s", status, h.Get("Content-Type"), body)
	}

	// The text summary prints the key with requests that work.
	out := runCLI(t, env, slices.Concat(args[:len(args)-2], []string{"--format", "text"})...)
	checkPrintedServiceDemo(t, out, srv.base)

	if none := mustJSON[demo.Summary](t, runCLI(t, env, append(args, "--services=false")...)); none.ServiceUsage != nil {
		t.Fatalf("--services=false seeded services: %+v", none.ServiceUsage)
	}
}

// checkPrintedServiceDemo runs the curl lines a demo printed and checks
// they answer, and with data: a whole day's (yesterday's, just after
// seeding), not the current day's so far.
func checkPrintedServiceDemo(t *testing.T, out, base string) (key string) {
	t.Helper()
	re := regexp.MustCompile(`curl -s -H 'Authorization: Bearer (usk_\S+)' '?([^'\s]+)'?`)
	lines := re.FindAllStringSubmatch(out, -1)
	if len(lines) != 2 || !strings.Contains(out, "API key  "+lines[0][1]) ||
		!strings.HasPrefix(lines[0][2], base+"/api/services/usage") || !strings.Contains(lines[1][2], "/serviceusage.csv") {
		t.Fatalf("the demo printed:\n%s", out)
	}
	for _, l := range lines {
		if status, _, body := getWithKey(t, l[2], l[1]); status != 200 {
			t.Fatalf("%s answered %d: %s", l[0], status, body)
		}
	}
	_, _, body := getWithKey(t, lines[0][2], lines[0][1])
	page := mustJSON[servicesPage](t, body)
	yesterday := time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	var users int64
	for _, r := range page.Results {
		users += r.TotalUserCount
		if !strings.HasPrefix(r.Period, yesterday) {
			t.Errorf("%s answered the period %s, want yesterday's (%s), whole and not empty", lines[0][0], r.Period, yesterday)
		}
	}
	if len(page.Results) == 0 || users == 0 {
		t.Errorf("%s answered no users: %s", lines[0][0], body)
	}
	return lines[0][1]
}

// serve --demo seeds the service-usage reports and prints a partner key
// with requests that work; a restart shows the same key without seeding.
func TestServeDemoServices(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	const token = "serve-demo-services-admin-token"
	srv := mustServe(t, "--data", data, "--demo", "--demo-events-per-day", "100", "--admin-token", token)
	out := srv.stdout.String()
	if !strings.Contains(out, "activity events of 12 demo services") || !strings.Contains(out, "Service usage: 12 services under 2 partners") {
		t.Fatalf("serve --demo printed:\n%s", out)
	}
	key := checkPrintedServiceDemo(t, out, srv.base)
	m := regexp.MustCompile(`sees its (\d+) services?:`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("serve --demo printed:\n%s", out)
	}
	keyServices, _ := strconv.Atoi(m[1])
	// Yesterday is whole, and the partner's services in use have activity.
	day := time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	status, _, body := getWithKey(t, srv.base+"/api/services/usage?PageSize=100&Period="+day, key)
	page := mustJSON[servicesPage](t, body)
	if status != 200 || page.TotalItems == 0 || page.TotalItems > keyServices {
		t.Fatalf("GET /api/services/usage: %d %s", status, body)
	}
	var users int64
	for _, r := range page.Results {
		if r.Status == "Blocked" || r.Status == "Provisioning" {
			t.Errorf("usage of a %s service was reported", r.Status)
		}
		users += r.TotalUserCount
	}
	if users == 0 {
		t.Errorf("no users in the partner's services on %s: %s", day, body)
	}
	// A service the partner gains after the seed.
	partner := regexp.MustCompile(`The API key of partner "[^"]+" \((\S+)\)`).FindStringSubmatch(out)
	admin, err := (&remoteFlags{server: srv.base, token: token, timeout: time.Minute}).client(true, 1)
	if err != nil || partner == nil {
		t.Fatalf("%v; serve --demo printed:\n%s", err, out)
	}
	xs, err := listResellers(t.Context(), admin, partner[1])
	if err != nil || len(xs) == 0 {
		t.Fatalf("resellers of %s: %v %v", partner[1], xs, err)
	}
	if _, err := createService(t.Context(), admin, serviceBody{Name: "Late Legal", ResellerGuid: xs[0].ResellerGuid}, "latelegal.com"); err != nil {
		t.Fatal(err)
	}
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}

	// The restart shows the same key, and the services there are now.
	again := mustServe(t, "--data", data, "--demo", "--admin-token", token)
	out = again.stdout.String()
	if strings.Contains(out, "seeding") || checkPrintedServiceDemo(t, out, again.base) != key {
		t.Fatalf("restart printed:\n%s", out)
	}
	if want := "Service usage: 13 services under 2 partners"; !strings.Contains(out, want) ||
		!strings.Contains(out, fmt.Sprintf("sees its %d services:", keyServices+1)) {
		t.Fatalf("after a service was added, the restart printed (want %q and %d services of the key):\n%s", want, keyServices+1, out)
	}
}

// A demo run against an existing demo finds its services and leaves their
// statuses as their owner set them since.
func TestDemoKeepsServiceStatuses(t *testing.T) {
	t.Parallel()
	const token = "demo-statuses-admin-token"
	srv := mustServe(t, "--data", t.TempDir(), "--admin-token", token)
	env := map[string]string{"USAGED_SERVER": srv.base, "USAGED_ADMIN_TOKEN": token}
	args := []string{"demo", "--clients", "1", "--users", "2", "--templates", "5", "--days", "2", "--events-per-day", "20",
		"--partners", "1", "--resellers-per-partner", "1", "--services-per-reseller", "4", "--users-per-service", "5", "--format", "json"}
	first := mustJSON[demo.Summary](t, runCLI(t, env, args...)).ServiceUsage
	svc := first.SampleService
	status := func() string {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.base+"/api/services/"+svc, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return mustJSON[serviceBody](t, string(b)).Status
	}
	planned := status()
	set := "AccountSuspended"
	if planned == set {
		set = "CertifiedSecure"
	}
	req, _ := http.NewRequest("PUT", srv.base+"/api/services/"+svc+"/status", strings.NewReader(`{"status":"`+set+`"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || status() != set {
		t.Fatalf("PUT status %s: %d, status now %s", set, resp.StatusCode, status())
	}

	again := mustJSON[demo.Summary](t, runCLI(t, env, args...)).ServiceUsage
	if again.Created != 0 {
		t.Fatalf("the second run created %d services", again.Created)
	}
	if got := status(); got != set {
		t.Fatalf("service %s was %s (planned %s); after a second demo run it is %s", svc, set, planned, got)
	}
}
