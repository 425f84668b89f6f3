package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/usaged/usaged/usage"
)

// tokenPrefix marks the token format, so that a later format can be told apart.
const tokenPrefix = "v1."

// claims are what an access token asserts. The token is signed, not
// encrypted: its holder can read these.
type claims struct {
	ClientID string `json:"c"`
	OrgID    string `json:"o"`
	Expires  int64  `json:"e"` // unix seconds; the token is valid before this instant
	// Secret tags the client secret the token was issued with, so that
	// rotating the secret ends the tokens issued before.
	Secret string `json:"s"`
}

// secretTag returns a short fingerprint of a secret hash. It reveals nothing
// useful: it is a prefix of a digest of a bcrypt hash.
func secretTag(hash []byte) string {
	sum := sha256.Sum256(hash)
	return base64.RawURLEncoding.EncodeToString(sum[:8])
}

func (s *Service) sign(payload []byte) []byte {
	m := hmac.New(sha256.New, s.cfg.SigningKey)
	m.Write(payload)
	return m.Sum(nil)
}

// IssueToken is IssueTokenFrom without an address: failed logins count
// against the client id only.
func (s *Service) IssueToken(ctx context.Context, clientID, secret string) (string, time.Duration, error) {
	return s.IssueTokenFrom(ctx, "", clientID, secret)
}

// IssueTokenFrom checks a client's credentials, sent from remote address
// addr, and returns an access token for it, valid for the client's
// AccessTokenValidity. An unknown client and a wrong secret both return
// ErrInvalidClient, in about the same time, and count as a failed login of
// the id and of addr. Past the failed-login limits (see Config), or when no
// secret check is free in time, the secret is not checked and the error is
// a *LoginRefusedError saying when to retry.
func (s *Service) IssueTokenFrom(ctx context.Context, addr, clientID, secret string) (string, time.Duration, error) {
	c, err := s.checkSecret(ctx, addr, clientID, secret)
	if err != nil {
		return "", 0, err
	}
	payload, err := json.Marshal(claims{
		ClientID: c.ID,
		OrgID:    c.OrganizationID,
		Expires:  s.cfg.Now().Add(c.AccessTokenValidity).Unix(),
		Secret:   secretTag(c.SecretHash),
	})
	if err != nil {
		return "", 0, fmt.Errorf("auth: encoding token: %w", err)
	}
	enc := base64.RawURLEncoding
	tok := tokenPrefix + enc.EncodeToString(payload) + "." + enc.EncodeToString(s.sign(payload))
	return tok, c.AccessTokenValidity, nil
}

// Principal is who made a request and what they may do.
type Principal struct {
	Admin          bool   // the operator: every permission in every organization
	OrganizationID string // empty for the admin
	ClientID       string // empty for the admin
	ClientName     string
	Permissions    []string // the client's permissions when the request was authenticated
}

// Has reports whether the principal holds permission perm.
func (p *Principal) Has(perm string) bool {
	return p.Admin || slices.Contains(p.Permissions, perm)
}

// HasAny reports whether the principal holds at least one of perms.
func (p *Principal) HasAny(perms ...string) bool {
	if p.Admin {
		return true
	}
	for _, perm := range perms {
		if slices.Contains(p.Permissions, perm) {
			return true
		}
	}
	return false
}

// CanAccess reports whether the principal may act in organization orgID.
func (p *Principal) CanAccess(orgID string) bool {
	return p.Admin || (p.OrganizationID != "" && p.OrganizationID == orgID)
}

func unauthorized(msg string) error {
	return &usage.Error{Kind: usage.KindUnauthorized, Message: msg}
}

// Authenticate returns the principal of a bearer token: the admin token or a
// token from IssueToken whose signature holds, which has not expired, and
// whose client still exists with the secret it was issued with. Permissions
// are those the client holds now. Every failure is of kind
// usage.KindUnauthorized.
func (s *Service) Authenticate(ctx context.Context, bearer string) (*Principal, error) {
	if bearer == "" {
		return nil, unauthorized("no token given")
	}
	if subtle.ConstantTimeCompare([]byte(bearer), []byte(s.cfg.AdminToken)) == 1 {
		return &Principal{Admin: true}, nil
	}
	invalid := unauthorized("token is not valid")
	rest, ok := strings.CutPrefix(bearer, tokenPrefix)
	if !ok {
		return nil, invalid
	}
	p64, m64, ok := strings.Cut(rest, ".")
	if !ok {
		return nil, invalid
	}
	// Strict: the unused low bits of the last character must be zero, so
	// that each token has one spelling and not four.
	enc := base64.RawURLEncoding.Strict()
	payload, err1 := enc.DecodeString(p64)
	mac, err2 := enc.DecodeString(m64)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, s.sign(payload)) {
		return nil, invalid
	}
	var cl claims
	if err := json.Unmarshal(payload, &cl); err != nil {
		return nil, invalid // signed by us, so only a format change gets here
	}
	if !s.cfg.Now().Before(time.Unix(cl.Expires, 0)) {
		return nil, unauthorized("token expired")
	}
	c, ok := s.lookupClient(ctx, cl.ClientID)
	switch {
	case !ok || c.OrganizationID != cl.OrgID:
		return nil, unauthorized("client of this token was deleted")
	case secretTag(c.SecretHash) != cl.Secret:
		return nil, unauthorized("client secret was rotated after this token was issued")
	}
	return &Principal{
		OrganizationID: c.OrganizationID,
		ClientID:       c.ID,
		ClientName:     c.Name,
		Permissions:    slices.Clone(c.Permissions),
	}, nil
}
