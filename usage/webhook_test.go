package usage

import (
	"strings"
	"testing"
)

func TestValidateWebhookURL(t *testing.T) {
	f := func(raw string, ok bool) {
		t.Helper()
		err := ValidateWebhookURL(raw)
		if ok != (err == nil) {
			t.Errorf("ValidateWebhookURL(%q) = %v, want ok %v", raw, err, ok)
		}
		if err != nil && (KindOf(err) != KindInvalid || err.(*Error).Field != "url") {
			t.Errorf("ValidateWebhookURL(%q) = %#v, want kind invalid on field url", raw, err)
		}
	}
	f("https://hooks.example.com/usaged", true)
	f("http://hooks.example.com:8080/a?b=c", true)
	f("https://[2001:db8::1]/x", true)
	f("https://127.0.0.1/x", true) // addresses are checked when dialling
	f("", false)
	f("hooks.example.com/x", false)
	f("ftp://hooks.example.com/", false)
	f("javascript:alert(1)", false)
	f("https://user:pw@hooks.example.com/", false)
	f("https://user@hooks.example.com/", false)
	f("https:///path", false)
	f("https://hooks.example.com/#frag", false)
	f("https://hooks.example.com:0/", false)
	f("https://hooks.example.com:70000/", false)
	f("https://hooks.example.com/"+strings.Repeat("a", MaxWebhookURLBytes), false)
	f("https://exa mple.com/", false)
}

func TestWebhookEndpointValidate(t *testing.T) {
	f := func(types []string, field string) {
		t.Helper()
		e := WebhookEndpoint{URL: "https://example.com/h", EventTypes: types}
		err := e.Validate()
		if field == "" && err != nil || field != "" && (err == nil || err.(*Error).Field != field) {
			t.Errorf("Validate(%q) = %v, want error on %q", types, err, field)
		}
	}
	f([]string{NotificationLimitThreshold}, "")
	f(nil, "eventTypes")
	f([]string{"limit.crossed"}, "eventTypes")
	f([]string{NotificationWebhookTest}, "eventTypes")
	f([]string{NotificationLimitThreshold, NotificationLimitThreshold}, "eventTypes")
}
