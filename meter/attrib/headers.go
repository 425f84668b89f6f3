package attrib

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// HeaderConfig names the headers a trusted gateway sets. Organization and
// Client are required; ClientName and User are optional.
type HeaderConfig struct{ Organization, Client, ClientName, User string }

// Validate reports every problem with the configuration.
func (c HeaderConfig) Validate() error {
	var errs []error
	for _, f := range []struct {
		field, name string
		required    bool
	}{
		{"Organization", c.Organization, true},
		{"Client", c.Client, true},
		{"ClientName", c.ClientName, false},
		{"User", c.User, false},
	} {
		switch {
		case f.name == "" && f.required:
			errs = append(errs, fmt.Errorf("attrib: header name %s is required, such as X-Organization-Id", f.field))
		case f.name != "" && !validHeaderName(f.name):
			errs = append(errs, fmt.Errorf("attrib: header name %s %q is not a valid HTTP header name", f.field, f.name))
		}
	}
	return errors.Join(errs...)
}

// validHeaderName reports whether s is an HTTP token (RFC 9110), which a
// header name must be.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// Headers attributes requests by headers that a gateway in front sets after
// authenticating the caller. It believes them blindly: use it only where
// every request passes that gateway, and the gateway overwrites these
// headers rather than passing on what a client sent. A header sent more
// than once is ignored, since which copy came from the gateway is not
// known: without the organization or client that makes the request
// unidentified.
type Headers struct {
	cfg HeaderConfig
}

var _ Attributor = (*Headers)(nil)

// NewHeaders returns a Headers for cfg.
func NewHeaders(cfg HeaderConfig) (*Headers, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Headers{cfg: cfg}, nil
}

// Attribute implements Attributor. It never returns an error.
func (h *Headers) Attribute(_ context.Context, r *http.Request) (Identity, bool, error) {
	id := Identity{
		OrganizationID: header(r, h.cfg.Organization),
		ClientID:       header(r, h.cfg.Client),
		ClientName:     header(r, h.cfg.ClientName),
		UserID:         header(r, h.cfg.User),
	}
	if !id.complete() {
		return Identity{}, false, nil
	}
	return id, true, nil
}

// header returns the single value of header name, trimmed; "" when name is
// empty, or the header is absent or repeated.
func header(r *http.Request, name string) string {
	if name == "" {
		return ""
	}
	vs := r.Header.Values(name)
	if len(vs) != 1 {
		return ""
	}
	return strings.TrimSpace(vs[0])
}
