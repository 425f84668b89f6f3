package genesys_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/genesys"
	"github.com/usaged/usaged/server"
	"github.com/usaged/usaged/usage"
)

// oauthErrorBody is the RFC 6749 error response of the token endpoint.
type oauthErrorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// fromAddr returns an HTTP client whose connections come from ip, one of
// the loopback addresses 127.0.0.0/8, so that a test can play several
// remote addresses against a server on 127.0.0.1.
func fromAddr(t testing.TB, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// login asks for a token with the form fields client_id and client_secret,
// through hc.
func (e *env) login(hc *http.Client, id, secret string) reply {
	e.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
	req, err := http.NewRequestWithContext(e.t.Context(), "POST", e.url+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// wantLogin fails unless r has status; for errors, also the RFC 6749 error
// code and a description containing inDesc, and for 429 and 503 a
// Retry-After of retry seconds.
func wantLogin(t *testing.T, r reply, status int, code, inDesc, retry string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("token: status %d, want %d: %s", r.status, status, r.body)
	}
	if status == 200 {
		return
	}
	var ob oauthErrorBody
	if err := json.Unmarshal(r.body, &ob); err != nil || ob.Error != code || !strings.Contains(ob.Description, inDesc) {
		t.Fatalf("token: body %s, want error %q with %q (%v)", r.body, code, inDesc, err)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("token: Content-Type %q", ct)
	}
	if got := r.header.Get("Retry-After"); got != retry {
		t.Fatalf("token: Retry-After %q, want %q", got, retry)
	}
}

// Requests with bad tokens on other routes use up the address's budget for
// those routes, not its logins.
func TestTokenEndpointOwnBudget(t *testing.T) {
	t.Parallel()
	e := MustEnv(t) // the default limits
	c := e.mustClient(e.mustOrg("A").ID, 0, usage.PermEventAdd)
	for i := range genesys.DefaultRateLimit {
		if r := e.do("GET", "/api/v2/admin/organizations", "garbage", nil); r.status != 401 {
			t.Fatalf("garbage request %d: %d %s", i+1, r.status, r.body)
		}
	}
	wantError(t, e.do("GET", "/api/v2/admin/organizations", "garbage", nil), 429, "too.many.requests.retry.after", "Retry the request")
	r := e.login(http.DefaultClient, c.ID, c.Secret)
	wantLogin(t, r, 200, "", "", "")
	wantRate(t, r, genesys.DefaultTokenRateLimit, 1, 60)
}

// A token request over the address's budget is refused in the token
// endpoint's own error shape.
func TestTokenEndpoint429Shape(t *testing.T) {
	t.Parallel()
	e := MustEnv(t, func(c *server.Config) { c.Limits.TokenRateLimit = 2 })
	c := e.mustClient(e.mustOrg("A").ID, 0, usage.PermEventAdd)
	e.clk.Advance(15 * time.Second)
	wantLogin(t, e.login(http.DefaultClient, c.ID, c.Secret), 200, "", "", "")
	wantLogin(t, e.login(http.DefaultClient, c.ID, "wrong"), 401, "invalid_client", "not valid", "")
	r := e.login(http.DefaultClient, c.ID, c.Secret)
	wantLogin(t, r, 429, "slow_down", "too many token requests from this address: the limit is 2 a minute; retry in 45 seconds", "45")
	wantRate(t, r, 2, 3, 45)
}

// Failed logins are counted per client id, whatever the address: a brute
// force on one id is stopped, and other ids are not.
func TestFailedLoginsPerClientID(t *testing.T) {
	t.Parallel()
	e := mustEnvAuth(t, func(ac *auth.Config) { ac.FailedLoginLimit, ac.FailedLoginAddressLimit = 3, -1 })
	a := e.mustOrg("A")
	x, y := e.mustClient(a.ID, 0, usage.PermEventAdd), e.mustClient(a.ID, 0, usage.PermEventAdd)
	e.clk.Advance(30 * time.Second)
	from2, from3 := fromAddr(t, "127.0.0.2"), fromAddr(t, "127.0.0.3")
	for range 3 {
		wantLogin(t, e.login(from2, x.ID, "guess"), 401, "invalid_client", "not valid", "")
	}
	// From another address, even the right secret is not checked: it was
	// never verified, and the id is out of failed logins.
	wantLogin(t, e.login(from3, x.ID, "guess"), 429, "slow_down", "too many failed logins for this client id: the limit is 3 a minute; retry in 30 seconds", "30")
	wantLogin(t, e.login(from3, x.ID, x.Secret), 429, "slow_down", "client id", "30")
	// Another id is not held back, from either address.
	wantLogin(t, e.login(from2, y.ID, y.Secret), 200, "", "", "")
	wantLogin(t, e.login(from3, y.ID, y.Secret), 200, "", "", "")
	// An unknown id is limited alike, so that the answers tell nothing.
	for range 3 {
		wantLogin(t, e.login(from2, "no-such-client", "guess"), 401, "invalid_client", "not valid", "")
	}
	wantLogin(t, e.login(from3, "no-such-client", "guess"), 429, "slow_down", "client id", "30")
	// The next minute starts afresh.
	e.clk.Advance(30 * time.Second)
	wantLogin(t, e.login(from3, x.ID, x.Secret), 200, "", "", "")
}

// Failed logins are counted per address too, whatever the client ids.
func TestFailedLoginsPerAddress(t *testing.T) {
	t.Parallel()
	e := mustEnvAuth(t, func(ac *auth.Config) { ac.FailedLoginLimit, ac.FailedLoginAddressLimit = -1, 3 })
	a := e.mustOrg("A")
	y := e.mustClient(a.ID, 0, usage.PermEventAdd)
	from2, from3 := fromAddr(t, "127.0.0.2"), fromAddr(t, "127.0.0.3")
	for _, id := range []string{"id-1", "id-2", "id-3"} {
		wantLogin(t, e.login(from2, id, "guess"), 401, "invalid_client", "not valid", "")
	}
	wantLogin(t, e.login(from2, y.ID, y.Secret), 429, "slow_down", "too many failed logins for this address: the limit is 3 a minute", "60")
	wantLogin(t, e.login(from3, y.ID, y.Secret), 200, "", "", "")
}

// A secret that passed a check is remembered for a few minutes: logging in
// with it again costs no bcrypt and passes the failed-login limits, which
// it proves it has no need of. Rotating the secret, updating or deleting
// the client forgets it.
func TestVerifiedLoginsRemembered(t *testing.T) {
	t.Parallel()
	e := mustEnvAuth(t, func(ac *auth.Config) { ac.FailedLoginLimit, ac.FailedLoginAddressLimit = 2, -1 })
	a := e.mustOrg("A")
	_, mgr := e.oauthManager(a.ID)
	hc := http.DefaultClient
	lock := func(id string) {
		t.Helper()
		for range 2 {
			wantLogin(t, e.login(hc, id, "guess"), 401, "invalid_client", "not valid", "")
		}
	}

	x := e.mustClient(a.ID, 0, usage.PermEventAdd)
	wantLogin(t, e.login(hc, x.ID, x.Secret), 200, "", "", "")
	lock(x.ID)
	wantLogin(t, e.login(hc, x.ID, x.Secret), 200, "", "", "") // remembered
	wantLogin(t, e.login(hc, x.ID, "guess"), 429, "slow_down", "client id", "60")

	// Rotation: neither the old secret nor the new one is remembered.
	rotated := decode[oauthClient](t, e.do("POST", clientsPath+"/"+x.ID+"/secret", mgr, nil), 200)
	wantLogin(t, e.login(hc, x.ID, x.Secret), 429, "slow_down", "client id", "60")
	wantLogin(t, e.login(hc, x.ID, rotated.Secret), 429, "slow_down", "client id", "60")

	// Update.
	z := e.mustClient(a.ID, 0, usage.PermEventAdd)
	wantLogin(t, e.login(hc, z.ID, z.Secret), 200, "", "", "")
	lock(z.ID)
	decode[oauthClient](t, e.do("PUT", clientsPath+"/"+z.ID, mgr, map[string]any{"name": "Z"}), 200)
	wantLogin(t, e.login(hc, z.ID, z.Secret), 429, "slow_down", "client id", "60")

	// Deletion.
	w := e.mustClient(a.ID, 0, usage.PermEventAdd)
	wantLogin(t, e.login(hc, w.ID, w.Secret), 200, "", "", "")
	decode[any](t, e.do("DELETE", clientsPath+"/"+w.ID, mgr, nil), 204)
	wantLogin(t, e.login(hc, w.ID, w.Secret), 401, "invalid_client", "not valid", "")

	// The next minute: the rotated secret works; the old one does not.
	e.clk.Advance(time.Minute)
	wantLogin(t, e.login(hc, x.ID, x.Secret), 401, "invalid_client", "not valid", "")
	wantLogin(t, e.login(hc, x.ID, rotated.Secret), 200, "", "", "")

	// Remembered for 5 minutes (auth.DefaultVerifiedTTL) from the check.
	e.clk.Advance(4*time.Minute + 30*time.Second) // 12:05:30; checked at 12:01:00
	lock(x.ID)
	wantLogin(t, e.login(hc, x.ID, rotated.Secret), 200, "", "", "")
	e.clk.Advance(40 * time.Second) // 12:06:10, a new minute
	lock(x.ID)
	wantLogin(t, e.login(hc, x.ID, rotated.Secret), 429, "slow_down", "client id", "50")
}

// At most SecretChecks bcrypt comparisons run at once; a login that finds
// none free within the wait is answered 503 with Retry-After.
func TestSecretChecksBounded(t *testing.T) {
	t.Parallel()
	e := mustEnvAuth(t, func(ac *auth.Config) {
		ac.BcryptCost = bcrypt.DefaultCost // tens of milliseconds a check
		ac.SecretChecks, ac.SecretCheckWait = 1, 5*time.Millisecond
		ac.FailedLoginLimit, ac.FailedLoginAddressLimit = -1, -1
	})
	c := e.mustClient(e.mustOrg("A").ID, 0, usage.PermEventAdd)
	const n = 8
	replies := make([]reply, n)
	var wg sync.WaitGroup
	startGun := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-startGun
			replies[i] = e.login(http.DefaultClient, c.ID, "guess")
		})
	}
	close(startGun)
	wg.Wait()
	busy := 0
	for _, r := range replies {
		switch r.status {
		case 401:
		case 503:
			busy++
			wantLogin(t, r, 503, "temporarily_unavailable", "too many logins are being checked at once; retry in 1 second", "1")
		default:
			t.Fatalf("login: %d %s", r.status, r.body)
		}
	}
	// n logins at once, one check at a time, each far longer than the wait.
	if busy == 0 {
		t.Fatalf("no login of %d at once was refused as busy", n)
	}
	// Once the flood is over, logins are checked again.
	wantLogin(t, e.login(http.DefaultClient, c.ID, c.Secret), 200, "", "", "")
}

// Every token of a client counts against one budget: minting new tokens
// gains nothing.
func TestRateLimitPerClient(t *testing.T) {
	t.Parallel()
	e := mustLimitedEnv(t, 5, -1)
	a := e.mustOrg("A")
	c := e.mustClient(a.ID, 0, usage.PermOrganizationView)
	other := e.mustToken(e.mustClient(a.ID, 0, usage.PermOrganizationView))
	tok1 := e.mustToken(c)
	e.clk.Advance(time.Second)
	tok2 := e.mustToken(c)
	if tok1 == tok2 {
		t.Fatal("tokens minted a second apart are equal")
	}
	for i, tok := range []string{tok1, tok2, tok1, tok2, tok2} {
		wantRate(t, e.do("GET", "/api/v2/nothing", tok, nil), 5, i+1, 59)
	}
	wantError(t, e.do("GET", "/api/v2/nothing", tok1, nil), 429, "too.many.requests.retry.after", "[59] seconds")
	wantError(t, e.do("GET", "/api/v2/nothing", e.mustToken(c), nil), 429, "too.many.requests.retry.after", "[59] seconds")
	// Another client has a budget of its own.
	wantRate(t, e.do("GET", "/api/v2/nothing", other, nil), 5, 1, 59)
}

// A token has one spelling: the unused low bits of the last base64
// character of each part must be zero.
func TestTokenStrictBase64(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	tok := e.mustToken(e.mustClient(e.mustOrg("A").ID, 0, usage.PermEventAdd))
	decode[tokenInfo](t, e.do("GET", "/api/v2/tokens/me", tok, nil), 200)
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	dot := strings.LastIndexByte(tok, '.')
	// The signature is 32 bytes, 43 characters: the last one carries 4
	// bits and 2 unused ones, so it has 3 other spellings.
	sig := tok[dot+1:]
	if len(sig) != 43 {
		t.Fatalf("signature %q is %d characters long", sig, len(sig))
	}
	last := strings.IndexByte(alphabet, sig[len(sig)-1])
	for flip := 1; flip <= 3; flip++ {
		alt := tok[:len(tok)-1] + string(alphabet[last^flip])
		wantError(t, e.do("GET", "/api/v2/tokens/me", alt, nil), 401, "bad.credentials", "token is not valid")
	}
	// The payload's last character, when its length leaves unused bits.
	payload := tok[len("v1."):dot]
	if unused := map[int]int{2: 4, 3: 2}[len(payload)%4]; unused > 0 {
		i := len("v1.") + len(payload) - 1
		last := strings.IndexByte(alphabet, tok[i])
		for flip := 1; flip < 1<<unused; flip++ {
			alt := tok[:i] + string(alphabet[last^flip]) + tok[i+1:]
			wantError(t, e.do("GET", "/api/v2/tokens/me", alt, nil), 401, "bad.credentials", "token is not valid")
		}
	}
}
