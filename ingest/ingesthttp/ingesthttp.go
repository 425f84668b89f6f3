// Package ingesthttp reads the event bodies of HTTP requests for every face
// that takes them: the body's format from Content-Type, gzip from
// Content-Encoding, one bound on the bytes on the wire and after
// decompression, the pipeline's limits on elements and errors, and one
// answer to a store that failed to record a batch. Its errors are usage
// errors, which each face renders in its own error shape.
package ingesthttp

import (
	"net/http"

	"github.com/usaged/usaged/ingest"
	"github.com/usaged/usaged/usage"
)

// Events reads r's body as API request events, ingests them for scope
// through p and returns their outcomes, positioned in the body. The body may
// hold at most maxBody bytes, compressed or not (ingest.DefaultMaxBody when
// 0).
func Events(r *http.Request, p *ingest.Pipeline, maxBody int64, scope ingest.Scope) (ingest.Result, error) {
	body, f, err := read(r, maxBody)
	if err != nil {
		return ingest.Result{}, err
	}
	b, err := ingest.Decode(body, f, p.Limits())
	if err != nil {
		return ingest.Result{}, err
	}
	res, err := p.Ingest(r.Context(), b.Events, scope)
	if err != nil {
		return ingest.Result{}, notRecorded(err)
	}
	return b.Merge(res), nil
}

// Activity reads r's body as activity events of service, ingests them
// through p and returns their outcomes, positioned in the body, within the
// bounds of Events.
func Activity(r *http.Request, p *ingest.Pipeline, maxBody int64, service usage.GUID) (ingest.Result, error) {
	body, f, err := read(r, maxBody)
	if err != nil {
		return ingest.Result{}, err
	}
	b, err := ingest.DecodeActivity(body, f, p.Limits())
	if err != nil {
		return ingest.Result{}, err
	}
	res, err := p.IngestActivity(r.Context(), service, b.Activities)
	if err != nil {
		return ingest.Result{}, notRecorded(err)
	}
	return b.Merge(res), nil
}

// read returns r's body, decompressed, and its format.
func read(r *http.Request, maxBody int64) ([]byte, ingest.Format, error) {
	f, err := ingest.FormatOf(r.Header.Get("Content-Type"))
	if err != nil {
		return nil, 0, err
	}
	if maxBody <= 0 {
		maxBody = ingest.DefaultMaxBody
	}
	body, err := ingest.ReadBody(r.Body, r.Header.Get("Content-Encoding"), maxBody)
	return body, f, err
}

// notRecorded is the answer to a batch the store failed to record: the
// client must send it again, so an internal failure is told as a passing
// one (503), whose cause goes to the log only. A store that refuses writes
// says so itself (usage.KindUnavailable) and is answered as it says.
func notRecorded(err error) error {
	if usage.KindOf(err) == usage.KindInternal {
		return &usage.Error{Kind: usage.KindUnavailable, Message: "The events could not be recorded and none of this batch was. Send it again later.", Err: err}
	}
	return err
}
