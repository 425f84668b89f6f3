package genesys_test

import (
	"slices"
	"testing"

	"github.com/usaged/usaged/usage"
)

// TestOAuthClientsSubsetRule checks that a client may update, give a new
// secret to, or delete only clients whose permissions it holds itself, and
// that a refused operation changes nothing.
func TestOAuthClientsSubsetRule(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	a := e.mustOrg("A")
	callerPerms := []string{usage.PermOAuthClientView, usage.PermOAuthClientEdit, usage.PermOAuthClientDel, usage.PermEventAdd}
	caller := e.mustClient(a.ID, 0, callerPerms...)
	callerTok := e.mustToken(caller)

	// The targets' permissions, relative to the caller's.
	targets := map[string][]string{
		"weaker":   {usage.PermEventAdd},
		"equal":    callerPerms,
		"stronger": append(slices.Clone(callerPerms), usage.PermOrganizationView, usage.PermOAuthClientAdd),
		"disjoint": {usage.PermClientView}, // fewer permissions, but one the caller lacks
	}
	// What each operation answers, written out rather than derived.
	want := map[string]map[string]int{
		"PUT":    {"weaker": 200, "equal": 200, "stronger": 403, "disjoint": 403},
		"secret": {"weaker": 200, "equal": 200, "stronger": 403, "disjoint": 403},
		"DELETE": {"weaker": 204, "equal": 204, "stronger": 403, "disjoint": 403},
	}
	missing := map[string]string{
		"stronger": usage.PermOrganizationView + ", " + usage.PermOAuthClientAdd,
		"disjoint": usage.PermClientView,
	}
	// The new permissions of a PUT are always within the caller's: only the
	// target's current ones can make it fail.
	putBody := map[string]any{"name": "Renamed", "permissions": []string{usage.PermEventAdd}}

	for _, op := range []string{"PUT", "secret", "DELETE"} {
		for _, kind := range []string{"weaker", "equal", "stronger", "disjoint"} {
			t.Run(op+" "+kind, func(t *testing.T) {
				target := e.mustClient(a.ID, 0, targets[kind]...)
				path := clientsPath + "/" + target.ID
				var r reply
				switch op {
				case "PUT":
					r = e.do("PUT", path, callerTok, putBody)
				case "secret":
					r = e.do("POST", path+"/secret", callerTok, nil)
				case "DELETE":
					r = e.do("DELETE", path, callerTok, nil)
				}
				status := want[op][kind]
				if status != 403 {
					if r.status != status {
						t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
					}
					return
				}
				eb := wantError(t, r, 403, "missing.permissions",
					"You must have all of the following permissions assigned: "+missing[kind])
				if eb.MessageParams["permissions"] != missing[kind] {
					t.Fatalf("messageParams %v", eb.MessageParams)
				}
				// Nothing changed: the client exists with its name and
				// permissions, and its old secret still gets a token.
				got := decode[client](t, e.do("GET", "/api/v2/admin/organizations/"+a.ID+"/clients/"+target.ID, adminToken, nil), 200)
				if got.Name != "CRM" || !slices.Equal(got.Permissions, targets[kind]) {
					t.Fatalf("client after a refused %s: %+v", op, got)
				}
				if st := e.tokenStatus(target.ID, target.Secret); st != 200 {
					t.Fatalf("old secret after a refused %s: token status %d", op, st)
				}
			})
		}
	}

	// A client acting on itself holds exactly its own permissions: it may
	// rotate its own secret, and the new secret works.
	self := decode[oauthClient](t, e.do("POST", clientsPath+"/"+caller.ID+"/secret", callerTok, nil), 200)
	if st := e.tokenStatus(caller.ID, self.Secret); st != 200 {
		t.Fatalf("own new secret: token status %d", st)
	}

	// The admin token passes whatever the target holds.
	strongest := e.mustClient(a.ID, 0, usage.Permissions...)
	decode[any](t, e.do("DELETE", "/api/v2/admin/organizations/"+a.ID+"/clients/"+strongest.ID, adminToken, nil), 204)

	// A caller whose permissions were cut after its token was issued is
	// judged by what it holds now.
	mgr := e.mustClient(a.ID, 0, usage.Permissions...)
	mgrTok := e.mustToken(mgr)
	victim := e.mustClient(a.ID, 0, usage.PermOrganizationView)
	decode[oauthClient](t, e.do("PUT", clientsPath+"/"+mgr.ID, mgrTok, map[string]any{
		"name": "Manager", "permissions": []string{usage.PermOAuthClientEdit},
	}), 200)
	wantError(t, e.do("POST", clientsPath+"/"+victim.ID+"/secret", mgrTok, nil), 403, "missing.permissions", usage.PermOrganizationView)
	if st := e.tokenStatus(victim.ID, victim.Secret); st != 200 {
		t.Fatalf("secret after a refused rotation: token status %d", st)
	}
}
