package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The vector published with the Standard Webhooks reference libraries: a
// receiver's off-the-shelf library verifies what Sign makes only if Sign
// reproduces it exactly.
const (
	vecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vecID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vecTime   = 1614265330
	vecBody   = `{"test": 2432232314}`
	vecSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignMatchesPublishedVector(t *testing.T) {
	got, err := Sign(vecSecret, vecID, time.Unix(vecTime, 0), []byte(vecBody))
	if err != nil {
		t.Fatal(err)
	}
	if got != vecSig {
		t.Fatalf("Sign = %s, want %s", got, vecSig)
	}
	// The prefix is optional, as in the reference libraries.
	if got, _ := Sign(strings.TrimPrefix(vecSecret, SecretPrefix), vecID, time.Unix(vecTime, 0), []byte(vecBody)); got != vecSig {
		t.Fatalf("Sign without the prefix = %s, want %s", got, vecSig)
	}
}

// handMAC computes a signature with crypto/hmac directly, as a receiver
// would, without the package's code.
func handMAC(t *testing.T, secret, id string, ts int64, body string) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "." + body))
	return "v1," + base64.StdEncoding.EncodeToString(h.Sum(nil))
}

func TestSignMatchesHandComputedHMAC(t *testing.T) {
	f := func(id, body string, ts int64) {
		t.Helper()
		secret := NewSecret()
		got, err := Sign(secret, id, time.Unix(ts, 0), []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if want := handMAC(t, secret, id, ts, body); got != want {
			t.Errorf("Sign(%q, %d, %q) = %s, want %s", id, ts, body, got, want)
		}
	}
	f("msg_1", `{}`, 1)
	f("msg_2", ``, 1700000000)
	f("a.b.c", `{"limit":"x","value":3}`, 1893456000)
	f("msg_ü", "line\nline", 2000000000)
}

func TestNewSecret(t *testing.T) {
	s := NewSecret()
	key, err := ParseSecret(s)
	if err != nil || len(key) != secretBytes || !strings.HasPrefix(s, SecretPrefix) {
		t.Fatalf("NewSecret = %q: key %d bytes, err %v", s, len(key), err)
	}
	if NewSecret() == s {
		t.Fatal("two secrets are equal")
	}
	for _, bad := range []string{"whsec_", "whsec_not base64!", ""} {
		if _, err := ParseSecret(bad); err == nil {
			t.Errorf("ParseSecret(%q) succeeded", bad)
		}
	}
}

func TestVerify(t *testing.T) {
	now := time.Unix(vecTime, 0)
	headers := func(id, ts, sig string) http.Header {
		h := http.Header{}
		for k, v := range map[string]string{HeaderID: id, HeaderTimestamp: ts, HeaderSignature: sig} {
			if v != "" {
				h.Set(k, v)
			}
		}
		return h
	}
	ts := strconv.Itoa(vecTime)
	other := handMAC(t, NewSecret(), vecID, vecTime, vecBody)
	f := func(name string, h http.Header, body string, at time.Time, want error) {
		t.Helper()
		err := VerifyAt(vecSecret, h, []byte(body), DefaultTolerance, at)
		if want == nil && err != nil || want != nil && !errors.Is(err, want) {
			t.Errorf("%s: VerifyAt = %v, want %v", name, err, want)
		}
	}
	f("vector", headers(vecID, ts, vecSig), vecBody, now, nil)
	f("one of several signatures", headers(vecID, ts, other+" v2,abc "+vecSig), vecBody, now, nil)
	f("within tolerance, late", headers(vecID, ts, vecSig), vecBody, now.Add(DefaultTolerance), nil)
	f("within tolerance, early", headers(vecID, ts, vecSig), vecBody, now.Add(-DefaultTolerance), nil)
	f("too old", headers(vecID, ts, vecSig), vecBody, now.Add(DefaultTolerance+time.Second), ErrTimestamp)
	f("too new", headers(vecID, ts, vecSig), vecBody, now.Add(-DefaultTolerance-time.Second), ErrTimestamp)
	f("timestamp not a number", headers(vecID, "yesterday", vecSig), vecBody, now, ErrTimestamp)
	f("body changed", headers(vecID, ts, vecSig), `{"test": 2432232315}`, now, ErrSignature)
	f("id changed", headers(vecID+"x", ts, vecSig), vecBody, now, ErrSignature)
	f("timestamp changed", headers(vecID, strconv.Itoa(vecTime+1), vecSig), vecBody, now, ErrSignature)
	f("another secret's signature only", headers(vecID, ts, other), vecBody, now, ErrSignature)
	f("another version only", headers(vecID, ts, "v1a,"+strings.TrimPrefix(vecSig, "v1,")), vecBody, now, ErrSignature)
	f("no id", headers("", ts, vecSig), vecBody, now, ErrMissingHeader)
	f("no timestamp", headers(vecID, "", vecSig), vecBody, now, ErrMissingHeader)
	f("no signature", headers(vecID, ts, ""), vecBody, now, ErrMissingHeader)
}

func TestSetHeadersRoundTrip(t *testing.T) {
	secret, body, at := NewSecret(), []byte(`{"type":"webhook.test"}`), time.Now()
	h := http.Header{}
	if err := SetHeaders(h, secret, "msg_x", at, body); err != nil {
		t.Fatal(err)
	}
	if err := Verify(secret, h, body, DefaultTolerance); err != nil {
		t.Fatal(err)
	}
	if err := Verify(NewSecret(), h, body, DefaultTolerance); !errors.Is(err, ErrSignature) {
		t.Fatalf("Verify with another secret = %v, want ErrSignature", err)
	}
}
