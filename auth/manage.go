package auth

import (
	"context"
	"slices"
	"strings"

	"github.com/usaged/usaged/usage"
)

// The subset rule: a principal may update, give a new secret to, or delete
// only a client whose permissions it holds itself, as it may create only
// such clients. Otherwise a client holding oauth:client:edit could take over
// a stronger client by rotating its secret, or strip its permissions. The
// admin holds every permission, so it passes; a client acting on itself
// holds exactly its own permissions, so it passes too.

// PermissionsError reports the permissions a principal lacks for an
// operation on a client. Its kind is usage.KindForbidden.
type PermissionsError struct {
	Missing []string // in the order the target lists them
	err     *usage.Error
}

func (e *PermissionsError) Error() string { return e.err.Error() }
func (e *PermissionsError) Unwrap() error { return e.err }

// lacking returns the permissions of perms that p does not hold, each once.
func (p *Principal) lacking(perms []string) []string {
	var missing []string
	for _, perm := range perms {
		if !p.Has(perm) && !slices.Contains(missing, perm) {
			missing = append(missing, perm)
		}
	}
	return missing
}

// mayManage fails unless by holds every permission of target.
func mayManage(by *Principal, target usage.Client) error {
	missing := by.lacking(target.Permissions)
	if len(missing) == 0 {
		return nil
	}
	return &PermissionsError{Missing: missing, err: usage.Errorf(usage.KindForbidden, "",
		"A client can change, give a new secret to or delete only clients whose permissions it holds itself. "+
			"You must have all of the following permissions assigned: %s", strings.Join(missing, ", "))}
}

// mayGrant fails unless by holds every permission of perms.
func mayGrant(by *Principal, perms []string) error {
	missing := by.lacking(perms)
	if len(missing) == 0 {
		return nil
	}
	return &PermissionsError{Missing: missing, err: usage.Errorf(usage.KindForbidden, "permissions",
		"A client can grant only permissions it holds itself. You must have all of the following permissions assigned: %s",
		strings.Join(missing, ", "))}
}

// operator is the principal of the methods that act without a caller: the
// admin, who passes every check.
var operator = &Principal{Admin: true}

// UpdateClientAs is UpdateClient on behalf of principal by, which must hold
// every permission the client holds now and every one spec gives it;
// otherwise the error is a *PermissionsError and nothing changes.
func (s *Service) UpdateClientAs(ctx context.Context, by *Principal, orgID, id string, spec ClientSpec) (usage.Client, error) {
	return s.updateClient(ctx, by, orgID, id, spec)
}

// RotateSecretAs is RotateSecret on behalf of principal by, which must hold
// every permission the client holds; otherwise the error is a
// *PermissionsError and the old secret stays.
func (s *Service) RotateSecretAs(ctx context.Context, by *Principal, orgID, id string) (string, error) {
	return s.rotateSecret(ctx, by, orgID, id)
}

// DeleteClientAs is DeleteClient on behalf of principal by, which must hold
// every permission the client holds; otherwise the error is a
// *PermissionsError and the client stays.
func (s *Service) DeleteClientAs(ctx context.Context, by *Principal, orgID, id string) error {
	return s.deleteClient(ctx, by, orgID, id)
}
