package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/usaged/usaged/ingest"
)

// remoteFlags are the flags of every command that talks to a server.
type remoteFlags struct {
	server  string
	token   string
	timeout time.Duration
}

func addRemoteFlags(fs *flag.FlagSet, tokenHelp string) *remoteFlags {
	r := &remoteFlags{}
	fs.StringVar(&r.server, "server", "http://127.0.0.1:8080", "base URL of the usaged server")
	fs.StringVar(&r.token, "token", "", tokenHelp+"; ps shows it to every user: prefer --token-file")
	fs.String("token-file", "", "file holding the token (whitespace trimmed), instead of --token")
	fs.DurationVar(&r.timeout, "timeout", time.Minute, "limit on each HTTP request")
	return r
}

// client returns an API client for the flags; needToken makes a missing
// token an error.
func (r *remoteFlags) client(needToken bool, maxConns int) (*apiClient, error) {
	u, err := url.Parse(r.server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError{err: fmt.Errorf("--server %q is not an http or https URL such as http://127.0.0.1:8080", r.server)}
	}
	if needToken && r.token == "" {
		return nil, usageError{err: errors.New("--token or --token-file is required: the admin token (also from $USAGED_TOKEN, $USAGED_TOKEN_FILE, $USAGED_ADMIN_TOKEN or $USAGED_ADMIN_TOKEN_FILE)")}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// Every worker keeps its own connection alive between batches.
	tr.MaxIdleConnsPerHost = max(maxConns, 2)
	tr.DisableCompression = true
	return &apiClient{
		base:  strings.TrimRight(r.server, "/"),
		token: r.token,
		hc:    &http.Client{Transport: tr, Timeout: r.timeout},
	}, nil
}

// apiClient calls a usaged server's HTTP API.
type apiClient struct {
	base  string
	token string
	hc    *http.Client
}

// apiError is an error answered by the server: in the Genesys error shape,
// the OAuth one from /oauth/token, or the CCC (ServiceStack) one from the
// service-usage API. send copies a CCC error's code and message into Code
// and Message, so that callers look in one place whatever the shape.
type apiError struct {
	Status    int    `json:"status"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	ContextID string `json:"contextId"`
	// The OAuth error shape.
	OAuthError       string `json:"error"`
	OAuthDescription string `json:"error_description"`
	// The CCC error shape.
	ResponseStatus *struct {
		ErrorCode string       `json:"errorCode"`
		Message   string       `json:"message"`
		Errors    []fieldError `json:"errors"`
	} `json:"responseStatus"`
}

// fieldError is one field's problem in a CCC error.
type fieldError struct {
	ErrorCode string `json:"errorCode"`
	FieldName string `json:"fieldName"`
	Message   string `json:"message"`
}

func (e *apiError) Error() string {
	code, msg := e.Code, e.Message
	if code == "" {
		code = e.OAuthError
	}
	if msg == "" {
		msg = e.OAuthDescription
	}
	s := fmt.Sprintf("server answered %d %s: %s", e.Status, code, msg)
	if rs := e.ResponseStatus; rs != nil {
		// A validation failure lists every field; the message names the
		// first only.
		for _, f := range rs.Errors {
			if f.Message != msg {
				s += fmt.Sprintf("; %s: %s", f.FieldName, f.Message)
			}
		}
	}
	if e.ContextID != "" {
		s += " (contextId " + e.ContextID + ")"
	}
	return s
}

// do sends a request with a JSON body (unless in is nil) and decodes a JSON
// answer into out (unless out is nil). A status of 400 or more is an
// *apiError.
func (c *apiClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.send(req, out)
}

func (c *apiClient) send(req *http.Request, out any) error {
	if c.token != "" && req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "usaged/"+version)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading the answer to %s %s: %w", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode >= 400 {
		e := &apiError{}
		switch err := json.Unmarshal(b, e); {
		case err != nil:
			*e = apiError{} // not one of the shapes: the body is the message
		case e.ResponseStatus != nil:
			e.Code, e.Message = e.ResponseStatus.ErrorCode, e.ResponseStatus.Message
		}
		if e.Message == "" && e.OAuthError == "" {
			e.Message = strings.TrimSpace(string(b))
			if len(e.Message) > 300 {
				e.Message = e.Message[:300] + "…"
			}
		}
		e.Status = resp.StatusCode
		return e
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = b
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("the answer to %s %s is not the JSON expected: %w", req.Method, req.URL.Path, err)
	}
	return nil
}

// Wire shapes of the admin API.
type (
	orgBody struct {
		ID          string `json:"id"`
		Name        string `json:"name"`
		DateCreated string `json:"dateCreated"`
	}
	clientBody struct {
		ID                         string   `json:"id"`
		Name                       string   `json:"name"`
		Description                string   `json:"description,omitempty"`
		Secret                     string   `json:"secret,omitempty"`
		Permissions                []string `json:"permissions"`
		AccessTokenValiditySeconds int64    `json:"accessTokenValiditySeconds,omitempty"`
		OrganizationID             string   `json:"organizationId,omitempty"`
		DateCreated                string   `json:"dateCreated,omitempty"`
	}
	createClientRequest struct {
		Name                       string   `json:"name"`
		Description                string   `json:"description,omitempty"`
		Permissions                []string `json:"permissions"`
		AccessTokenValiditySeconds int64    `json:"accessTokenValiditySeconds,omitempty"`
	}
	entities[T any] struct {
		Entities []T `json:"entities"`
	}
)

func (c *apiClient) createOrg(ctx context.Context, name string) (orgBody, error) {
	var o orgBody
	err := c.do(ctx, "POST", "/api/v2/admin/organizations", map[string]string{"name": name}, &o)
	return o, err
}

func (c *apiClient) listOrgs(ctx context.Context) ([]orgBody, error) {
	var e entities[orgBody]
	err := c.do(ctx, "GET", "/api/v2/admin/organizations", nil, &e)
	return e.Entities, err
}

// orgNamed returns the organization called name, creating it if there is
// none, and whether it was created.
func (c *apiClient) orgNamed(ctx context.Context, name string) (orgBody, bool, error) {
	orgs, err := c.listOrgs(ctx)
	if err != nil {
		return orgBody{}, false, err
	}
	for _, o := range orgs {
		if o.Name == name {
			return o, false, nil
		}
	}
	o, err := c.createOrg(ctx, name)
	return o, err == nil, err
}

func (c *apiClient) createClient(ctx context.Context, orgID string, spec createClientRequest) (clientBody, error) {
	var cl clientBody
	err := c.do(ctx, "POST", "/api/v2/admin/organizations/"+url.PathEscape(orgID)+"/clients", spec, &cl)
	return cl, err
}

func (c *apiClient) listClients(ctx context.Context, orgID string) ([]clientBody, error) {
	var e entities[clientBody]
	err := c.do(ctx, "GET", "/api/v2/admin/organizations/"+url.PathEscape(orgID)+"/clients", nil, &e)
	return e.Entities, err
}

func (c *apiClient) deleteClient(ctx context.Context, orgID, id string) error {
	return c.do(ctx, "DELETE", "/api/v2/admin/organizations/"+url.PathEscape(orgID)+"/clients/"+url.PathEscape(id), nil, nil)
}

// accessToken exchanges client credentials for an access token.
func (c *apiClient) accessToken(ctx context.Context, id, secret string) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	req, err := http.NewRequestWithContext(ctx, "POST", c.base+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := c.send(req, &tok); err != nil {
		return "", fmt.Errorf("getting an access token for client %s: %w", id, err)
	}
	return tok.AccessToken, nil
}

// postEvents sends an NDJSON body, gzip-compressed when gzipped is set.
func (c *apiClient) postEvents(ctx context.Context, body []byte, gzipped bool) (ingest.Result, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", c.base+"/api/v2/usage/events", bytes.NewReader(body))
	if err != nil {
		return ingest.Result{}, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if gzipped {
		req.Header.Set("Content-Encoding", "gzip")
	}
	var res ingest.Result
	err = c.send(req, &res)
	return res, err
}

// retryable reports whether a failed request may succeed if sent again.
func retryable(err error) bool {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status == http.StatusTooManyRequests || ae.Status >= 500
	}
	return !errors.Is(err, context.Canceled)
}
