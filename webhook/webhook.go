// Package webhook signs and verifies webhook requests as the Standard
// Webhooks specification says (https://www.standardwebhooks.com): a request
// carries its message id, the Unix time it was sent and one or more
// signatures in the headers webhook-id, webhook-timestamp and
// webhook-signature, each signature being "v1," and the base64 of the
// HMAC-SHA256 of "{id}.{timestamp}.{body}" under the endpoint's secret.
//
// Secrets are written "whsec_" and the base64 of the key. The package
// imports only the standard library, so that a receiver in Go can use it
// alone.
package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The headers of a signed request.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every secret.
const SecretPrefix = "whsec_"

// DefaultTolerance is how far a request's timestamp may be from the
// receiver's clock, either way, before Verify refuses it as a possible
// replay: the five minutes the specification suggests.
const DefaultTolerance = 5 * time.Minute

// secretBytes is the length of the keys NewSecret makes: 24 bytes, within
// the 24 to 64 the specification asks for.
const secretBytes = 24

// Errors of Verify. Each is wrapped with the detail of the request.
var (
	ErrMissingHeader = errors.New("webhook: missing header")
	ErrTimestamp     = errors.New("webhook: timestamp outside the tolerance")
	ErrSignature     = errors.New("webhook: no matching signature")
)

// NewSecret returns a new random secret, "whsec_" and the base64 of 24
// random bytes.
func NewSecret() string {
	b := make([]byte, secretBytes)
	rand.Read(b) // never fails (crypto/rand)
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// ParseSecret returns the key of secret: the base64 after "whsec_". The
// prefix is optional, as the specification's libraries take it.
func ParseSecret(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil {
		return nil, fmt.Errorf("webhook: a secret is %q and the base64 of its key: %w", SecretPrefix, err)
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("webhook: a secret is %q and the base64 of its key, which must not be empty", SecretPrefix)
	}
	return key, nil
}

// Sign returns the signature of a message, "v1," and the base64 of the
// HMAC-SHA256 under secret's key of "{id}.{timestamp}.{body}", the
// timestamp in Unix seconds.
func Sign(secret, id string, timestamp time.Time, body []byte) (string, error) {
	key, err := ParseSecret(secret)
	if err != nil {
		return "", err
	}
	return "v1," + base64.StdEncoding.EncodeToString(mac(key, id, timestamp.Unix(), body)), nil
}

func mac(key []byte, id string, ts int64, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write(strconv.AppendInt(nil, ts, 10))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// SetHeaders signs body and sets the three headers of a request carrying it.
func SetHeaders(h http.Header, secret, id string, timestamp time.Time, body []byte) error {
	sig, err := Sign(secret, id, timestamp, body)
	if err != nil {
		return err
	}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(timestamp.Unix(), 10))
	h.Set(HeaderSignature, sig)
	return nil
}

// Verify checks the headers h of a request with body against secret, at
// the current time; see VerifyAt.
func Verify(secret string, h http.Header, body []byte, tolerance time.Duration) error {
	return VerifyAt(secret, h, body, tolerance, time.Now())
}

// VerifyAt checks that h carries webhook-id, a webhook-timestamp within
// tolerance of now (either way) and, among the space-separated signatures
// of webhook-signature, at least one "v1," signature of the message under
// secret. Signatures of other versions are skipped. The comparison takes
// constant time. A receiver should then deduplicate by webhook-id: a
// message is delivered at least once, with the same id each time.
func VerifyAt(secret string, h http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	key, err := ParseSecret(secret)
	if err != nil {
		return err
	}
	id, tsText, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	for name, v := range map[string]string{HeaderID: id, HeaderTimestamp: tsText, HeaderSignature: sigs} {
		if v == "" {
			return fmt.Errorf("%w %s", ErrMissingHeader, name)
		}
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s %q is not Unix seconds", ErrTimestamp, HeaderTimestamp, tsText)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: %s is %s from now, more than %s", ErrTimestamp, HeaderTimestamp, d.Round(time.Second), tolerance)
	}
	want := mac(key, id, ts, body)
	for sig := range strings.FieldsSeq(sigs) {
		version, b64, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrSignature
}
