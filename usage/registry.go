package usage

import "time"

// Permission is a Genesys-style permission string, domain:entity:action.
type Permission = string

// The permissions usaged knows. A client holds any subset; the admin token holds all.
const (
	PermEventAdd         Permission = "usage:event:add"
	PermOrganizationView Permission = "usage:organization:view"
	PermClientView       Permission = "usage:client:view"
	PermSimpleSearchView Permission = "usage:simpleSearch:view"
	PermOAuthClientView  Permission = "oauth:client:view"
	PermOAuthClientAdd   Permission = "oauth:client:add"
	PermOAuthClientEdit  Permission = "oauth:client:edit"
	PermOAuthClientDel   Permission = "oauth:client:delete"
	PermLimitView        Permission = "usage:limit:view"
	PermLimitEdit        Permission = "usage:limit:edit"
)

// Permissions lists every known permission, in a stable order.
var Permissions = []Permission{
	PermEventAdd, PermOrganizationView, PermClientView, PermSimpleSearchView,
	PermOAuthClientView, PermOAuthClientAdd, PermOAuthClientEdit, PermOAuthClientDel,
	PermLimitView, PermLimitEdit,
}

// KnownPermission reports whether p is one of Permissions.
func KnownPermission(p string) bool {
	for _, q := range Permissions {
		if p == q {
			return true
		}
	}
	return false
}

// Organization is a tenant: every event, client and count belongs to exactly one.
type Organization struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// Client is an OAuth client of an organization, authenticating with the
// client-credentials grant. Its secret is kept only as a slow hash.
type Client struct {
	ID                  string
	OrganizationID      string
	Name                string
	Description         string
	SecretHash          []byte
	Permissions         []Permission
	AccessTokenValidity time.Duration
	CreatedAt           time.Time
	// RoleIDs, RoleDivisions and Scope are kept as a Genesys client was
	// created with them, and answered back: clients written for Genesys
	// send them. They grant nothing; Permissions does. Records stored
	// before they existed read as without them.
	RoleIDs       []string       `json:",omitempty"`
	RoleDivisions []RoleDivision `json:",omitempty"`
	Scope         []string       `json:",omitempty"`
}

// RoleDivision is a Genesys role granted in a division.
type RoleDivision struct {
	RoleID     string
	DivisionID string
}

// Has reports whether the client holds permission p.
func (c *Client) Has(p Permission) bool {
	for _, q := range c.Permissions {
		if q == p {
			return true
		}
	}
	return false
}
