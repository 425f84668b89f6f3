package genesys_test

import (
	"net/http"
	"testing"
)

// A name that is not printable text — a control character, invalid UTF-8,
// which JSON decoding would silently turn into U+FFFD, or a character that
// makes it display as something else — is refused with the Genesys error
// naming the field, on every route that names something.
func TestNamesArePrintableText(t *testing.T) {
	t.Parallel()
	e := MustEnv(t)
	org := e.mustOrg("Acme")
	manager, token := e.oauthManager(org.ID)
	routes := []struct{ method, path, token string }{
		{"POST", "/api/v2/admin/organizations", adminToken},
		{"POST", "/api/v2/admin/organizations/" + org.ID + "/clients", adminToken},
		{"POST", clientsPath, token},
		{"PUT", clientsPath + "/" + manager.ID, token},
	}
	f := func(body []byte, inMessage string) {
		t.Helper()
		for _, rt := range routes {
			eb := wantError(t, e.do(rt.method, rt.path, rt.token, body), http.StatusBadRequest, "bad.request", inMessage)
			if len(eb.Details) != 1 || eb.Details[0].FieldName != "name" {
				t.Errorf("%s %s %q: details %+v, want the field name", rt.method, rt.path, body, eb.Details)
			}
		}
	}
	f([]byte(`{"name":"a\u0000b"}`), "name holds the control character U+0000 at character 2")
	f([]byte(`{"name":"line\nbreak"}`), "name holds the control character U+000A at character 5")
	f([]byte(`{"name":"tab\t"}`), "name holds the control character U+0009 at character 4")
	f([]byte(`{"name":"c1\u0085"}`), "name holds the control character U+0085")
	f([]byte("{\"name\":\"bad\xffbyte\"}"), "name holds U+FFFD, the replacement character that stands for invalid UTF-8, at character 4")
	f([]byte("{\"name\":\"cut \xc3\"}"), "name holds U+FFFD")
	f([]byte(`{"name":"lone \udc00 surrogate"}`), "name holds U+FFFD")
	f([]byte(`{"name":"invoice\u202efdp.exe"}`), "name holds the invisible formatting character U+202E at character 8")
	f([]byte(`{"name":"   "}`), "name is required")
}
