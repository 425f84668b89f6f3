package genesys

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/ratelimit"
)

// maxTokenForm bounds a token request body; a client-credentials form is tiny.
const maxTokenForm = 64 << 10

// Error codes of the token endpoint beyond RFC 6749's own section 5.2 list,
// both from the IANA OAuth Extensions Error Registry.
const (
	// codeSlowDown answers 429: too many requests or failed logins (RFC
	// 8628's code for a client that must wait before asking again).
	codeSlowDown = "slow_down"
	// codeTemporarilyUnavailable answers 503: the server is too busy
	// checking secrets (RFC 6749's code for an overloaded server).
	codeTemporarilyUnavailable = "temporarily_unavailable"
)

// tokenResponse is the RFC 6749 access token response.
type tokenResponse = wire.TokenResponse

// oauthError is the RFC 6749 error response. Genesys repeats the description
// under "description", and its SDK reads that one.
type oauthError struct {
	status      int
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Genesys     string `json:"description"`
	basic       bool   // the client authenticated with HTTP Basic
	retryAfter  int    // seconds, for 429 and 503; 0: no Retry-After
}

func oauthFail(status int, code, desc string) *oauthError {
	return &oauthError{status: status, Error: code, Description: desc, Genesys: desc}
}

// token is POST /oauth/token: the client-credentials grant. It answers in
// the OAuth error shape, not the Genesys one, as OAuth clients expect.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	res, oe := s.issue(w, r)
	if oe != nil {
		if oe.basic && oe.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="usaged"`)
		}
		if oe.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(oe.retryAfter))
		}
		s.writeOAuth(w, oe.status, oe)
		return
	}
	w.Header().Set("Pragma", "no-cache")
	s.writeOAuth(w, http.StatusOK, res)
}

func (s *Server) issue(w http.ResponseWriter, r *http.Request) (*tokenResponse, *oauthError) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, oauthFail(http.StatusBadRequest, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenForm)
	if err := r.ParseForm(); err != nil {
		return nil, oauthFail(http.StatusBadRequest, "invalid_request", "request body is not a valid form")
	}
	// Only the body counts: secrets in a URL end up in logs.
	form := r.PostForm
	switch gt := form.Get("grant_type"); gt {
	case "client_credentials":
	case "":
		return nil, oauthFail(http.StatusBadRequest, "invalid_request", "grant_type is required; use client_credentials")
	default:
		return nil, oauthFail(http.StatusBadRequest, "unsupported_grant_type", "grant_type "+quote(gt)+" is not supported; use client_credentials")
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		if form.Has("client_id") || form.Has("client_secret") {
			return nil, oauthFail(http.StatusBadRequest, "invalid_request", "send client credentials either with HTTP Basic or as form fields, not both")
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	if id == "" || secret == "" {
		oe := oauthFail(http.StatusUnauthorized, "invalid_client", "client credentials are required, with HTTP Basic or the form fields client_id and client_secret")
		oe.basic = true // point the client at Basic when it sent nothing
		return nil, oe
	}
	tok, exp, err := s.cfg.Auth.IssueTokenFrom(r.Context(), ratelimit.RemoteIP(r), id, secret)
	if errors.Is(err, auth.ErrInvalidClient) {
		oe := oauthFail(http.StatusUnauthorized, "invalid_client", "client id or secret is not valid")
		oe.basic = basic
		return nil, oe
	}
	if le, ok := errors.AsType[*auth.LoginRefusedError](err); ok {
		status, code := http.StatusTooManyRequests, codeSlowDown
		if le.Busy {
			status, code = http.StatusServiceUnavailable, codeTemporarilyUnavailable
		}
		oe := oauthFail(status, code, le.Error())
		oe.retryAfter = max(1, int((le.RetryAfter+time.Second-1)/time.Second))
		return nil, oe
	}
	if err != nil {
		s.log.Error("issuing token", "contextId", correlationID(r.Context()), "err", err)
		return nil, oauthFail(http.StatusInternalServerError, "server_error", internalMessage)
	}
	return &tokenResponse{AccessToken: tok, TokenType: "bearer", ExpiresIn: int64(exp.Seconds())}, nil
}

func (s *Server) writeOAuth(w http.ResponseWriter, status int, body any) {
	b, _ := json.Marshal(body) // strings and ints only: cannot fail
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// quote quotes s for a message, shortened so a huge value cannot bloat it.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	b, _ := json.Marshal(s)
	return string(b)
}
