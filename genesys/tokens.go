package genesys

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/genesys/wire"
	"github.com/usaged/usaged/usage"
)

// registerTokens adds Genesys' token introspection route. Any valid token
// may ask about itself, as in Genesys: no permission is needed, so a
// metering proxy can attribute requests made with tokens of any client
// without holding usaged's signing key.
func (s *Server) registerTokens(r *router) {
	r.api("GET /api/v2/tokens/me", s.tokenMe)
}

// namedEntity is Genesys' NamedEntity. Unlike most Genesys references it
// has no selfUri.
type namedEntity = wire.NamedEntity

// tokenOAuthClient is Genesys' OrgOAuthClient, as far as it applies to
// usaged's clients (see oauthClientBody): no roles, scopes or audit users.
type tokenOAuthClient = wire.TokenOAuthClient

// tokenInfo is Genesys' TokenInfo. usaged has no trustee organizations, so
// organization and homeOrganization are always the same and clonedUser is
// never set. The admin token belongs to no organization and no client: it
// answers with neither, and with every permission as its scope, which is
// how a caller tells it from a client token.
type tokenInfo = wire.TokenInfo

// tokenMe is GET /api/v2/tokens/me: what the bearer token stands for.
// Genesys' preserveIdleTTL parameter is accepted and has no effect, since
// usaged's tokens have no idle timeout; a value that is not a boolean is
// still refused, as a malformed parameter is on every other route.
func (s *Server) tokenMe(r *http.Request, p *auth.Principal) (response, error) {
	if v := r.URL.Query().Get("preserveIdleTTL"); v != "" {
		if _, err := strconv.ParseBool(v); err != nil {
			return response{}, withCode(usage.Errorf(usage.KindInvalid, "preserveIdleTTL",
				"preserveIdleTTL must be true or false, not %s", quote(v)), codeInvalidQueryParam)
		}
	}
	if p.Admin {
		return ok(tokenInfo{AuthorizedScope: slices.Clone(usage.Permissions)}), nil
	}
	org, err := s.cfg.Auth.Organization(r.Context(), p.OrganizationID)
	if err != nil {
		return response{}, revoked(err)
	}
	c, err := s.cfg.Auth.Client(r.Context(), p.OrganizationID, p.ClientID)
	if err != nil {
		return response{}, revoked(err)
	}
	ref := &namedEntity{ID: org.ID, Name: org.Name}
	scope := p.Permissions
	if scope == nil {
		scope = []string{}
	}
	return ok(tokenInfo{
		Organization:     ref,
		HomeOrganization: ref,
		AuthorizedScope:  scope,
		OAuthClient: &tokenOAuthClient{
			ID:                  c.ID,
			Name:                c.Name,
			DateCreated:         formatTime(c.CreatedAt),
			AuthorizedGrantType: grantClientCredentials,
			State:               "active",
			Organization:        ref,
		},
	}), nil
}

// revoked reports a principal's client or organization that is missing
// although the token was valid a moment ago: it was deleted in between, so
// the token is no longer valid, and that is what the caller must learn.
func revoked(err error) error {
	if usage.KindOf(err) == usage.KindNotFound {
		return usage.Errorf(usage.KindUnauthorized, "", "client of this token was deleted")
	}
	return err
}
