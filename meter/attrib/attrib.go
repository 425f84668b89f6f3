// Package attrib tells who made a request, from the credentials it carries:
// bearer tokens issued by usaged (Usaged, which asks usaged about each token
// once), JWTs of another identity provider verified against its JWKS (JWT),
// or headers set by a trusted gateway (Headers). Chain combines them.
//
// Every Attributor is safe for concurrent use. None of them fails a
// request: a request they cannot attribute is unidentified, and the caller
// decides what to record for it.
package attrib

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Identity is who made a request. OrganizationID and ClientID are always
// set in an identity an Attributor returns; ClientName and UserID may be
// empty when the credentials do not carry them.
type Identity struct{ OrganizationID, ClientID, ClientName, UserID string }

// Attributor tells who made a request. ok is false when the request carries
// no credentials this attributor understands or they are not valid; err
// only for failures worth logging (usaged unreachable, JWKS fetch failed) —
// the caller then treats the request as unidentified. err is nil whenever
// ok is true. Attribute reads the request's headers only, never its body,
// and is safe for concurrent use.
type Attributor interface {
	Attribute(ctx context.Context, r *http.Request) (id Identity, ok bool, err error)
}

// Chain asks each attributor in turn and returns the first identity. An
// attributor that fails does not stop the chain, since a later one may
// still understand the request; when none identifies it, the failures are
// returned joined. Nil attributors are skipped.
//
// Put cheap, local attributors before remote ones: JWT rejects a token that
// is not a JWT without any request, while Usaged asks usaged about every
// token it has not seen.
func Chain(as ...Attributor) Attributor {
	return chain(append([]Attributor(nil), as...))
}

type chain []Attributor

// Attribute implements Attributor.
func (c chain) Attribute(ctx context.Context, r *http.Request) (Identity, bool, error) {
	var errs []error
	for _, a := range c {
		if a == nil {
			continue
		}
		id, ok, err := a.Attribute(ctx, r)
		if ok {
			return id, true, nil
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return Identity{}, false, errors.Join(errs...)
}

// BearerToken returns the token of an "Authorization: Bearer …" header. The
// scheme is case-insensitive. It refuses a request with several
// Authorization headers, since which one the upstream honours is not known,
// and a token holding anything but visible ASCII, which no bearer token
// (RFC 6750) does and which must not be forwarded in a header.
func BearerToken(r *http.Request) (string, bool) {
	vs := r.Header.Values("Authorization")
	if len(vs) != 1 {
		return "", false
	}
	scheme, tok, ok := strings.Cut(strings.Trim(vs[0], " \t"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.Trim(tok, " \t")
	if tok == "" {
		return "", false
	}
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; c <= ' ' || c >= 0x7f {
			return "", false
		}
	}
	return tok, true
}

// maxFieldLen is the longest identity field usaged ingests (its limit on
// client ids, names and user ids); longer values from headers or claims
// would only have their events rejected.
const maxFieldLen = 256

// usable reports whether s can be an identity field: at most maxFieldLen
// bytes of valid UTF-8 without control characters, as ingest requires.
func usable(s string) bool {
	if len(s) > maxFieldLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return utf8.ValidString(s)
}

// complete reports whether id can be returned as an identity: organization
// and client set, every field usable.
func (id Identity) complete() bool {
	return id.OrganizationID != "" && id.ClientID != "" &&
		usable(id.OrganizationID) && usable(id.ClientID) && usable(id.ClientName) && usable(id.UserID)
}
