package ingesthttp_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/ingest/ingesthttp"
	"github.com/usaged/usaged/usage"
)

var now = time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)

// events is a store whose Append fails with err when it is set, and
// accepts everything otherwise.
type events struct {
	err error
}

func (e *events) Append(_ context.Context, evs []usage.Event, _ time.Time) ([]usage.Outcome, error) {
	if e.err != nil {
		return nil, e.err
	}
	return make([]usage.Outcome, len(evs)), nil
}

func (e *events) AppendActivity(_ context.Context, _ usage.GUID, acts []usage.Activity, _ time.Time) ([]usage.Outcome, error) {
	if e.err != nil {
		return nil, e.err
	}
	return make([]usage.Outcome, len(acts)), nil
}

const event = `{"id":"e1","time":"2026-06-15T11:00:00Z","organizationId":"o1","clientId":"c1","clientName":"CRM","templateUri":"api/v2/users","httpMethod":"GET","status":200}`

func TestEvents(t *testing.T) {
	st := &events{}
	p, err := ingest.New(ingest.Config{Store: st, Services: st, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	f := func(body []byte, contentEncoding string, maxBody int64) (ingest.Result, error) {
		t.Helper()
		r := httptest.NewRequest("POST", "/events", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/x-ndjson")
		r.Header.Set("Content-Encoding", contentEncoding)
		return ingesthttp.Events(r, p, maxBody, ingest.Scope{})
	}

	// Positions are the body's, the elements that did not decode included.
	res, err := f([]byte("1\n"+event+"\n"), "", 0)
	if err != nil || res.Accepted != 1 || res.Rejected != 1 || res.Errors[0].Index != 0 {
		t.Fatalf("got %+v, %v", res, err)
	}

	// The bound holds on the wire and after decompression.
	big := []byte(strings.Repeat(event+"\n", 100))
	if _, err := f(big, "", int64(len(big)-1)); usage.KindOf(err) != usage.KindTooLarge {
		t.Fatalf("a plain body over the bound: %v", err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(big)
	zw.Close()
	if _, err := f(gz.Bytes(), "gzip", int64(gz.Len())); usage.KindOf(err) != usage.KindTooLarge {
		t.Fatalf("a gzipped body inflating past the bound: %v", err)
	}
	if res, err := f(gz.Bytes(), "gzip", int64(len(big))); err != nil || res.Accepted != 100 {
		t.Fatalf("a gzipped body within the bound: %+v, %v", res, err)
	}

	// A store that failed to record the batch is answered as unavailable,
	// on both kinds of events.
	st.err = errors.New("disk on fire")
	if _, err := f([]byte(event), "", 0); usage.KindOf(err) != usage.KindUnavailable || !errors.Is(err, st.err) {
		t.Fatalf("store failure: %v", err)
	}
	r := httptest.NewRequest("POST", "/events", strings.NewReader(`[{"id":"a1","type":"storage","time":"2026-06-15T11:00:00Z","bytes":1}]`))
	if _, err := ingesthttp.Activity(r, p, 0, usage.GUID{1}); usage.KindOf(err) != usage.KindUnavailable {
		t.Fatalf("store failure on activity: %v", err)
	}
}
