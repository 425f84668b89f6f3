package pebble

import (
	"testing"
	"time"

	"github.com/usaged/usaged/usage"
)

// A batch is built while the one before it is applied, but applied only
// after it: the second batch below names a client the first one's batch
// introduced and answers Duplicate for an event only the first one has,
// so it must not reach the WAL, nor return, before the first is applied.
// Nor may a third, all of whose events are duplicates and which so has
// nothing to apply.
func TestBatchesApplyInTheirOrder(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(Config{Dir: dir, FilterCapacity: 1024})
	if err != nil {
		t.Fatal(err)
	}
	reached, release := make(chan struct{}), make(chan struct{})
	held := false
	hook = func(step string) {
		if step == "apply" && !held { // only the first batch's apply
			held = true
			close(reached)
			<-release
		}
	}
	defer func() { hook = func(string) {} }()

	now := time.Now().UTC()
	ev := func(id string) usage.Event {
		return usage.Event{ID: id, Time: now, OrganizationID: "org", ClientID: "cA", ClientName: "Client A",
			TemplateURI: "api/v2/items", HTTPMethod: "GET", Status: 200}
	}
	type result struct {
		outs []usage.Outcome
		err  error
	}
	first, second, third := make(chan result, 1), make(chan result, 1), make(chan result, 1)
	go func() {
		outs, err := d.Append(t.Context(), []usage.Event{ev("a1")}, now.Add(-time.Hour))
		first <- result{outs, err}
	}()
	<-reached // the first batch is built, mu released, its apply held
	go func() {
		outs, err := d.Append(t.Context(), []usage.Event{ev("a1"), ev("b1")}, now.Add(-time.Hour))
		second <- result{outs, err}
	}()
	go func() {
		outs, err := d.Append(t.Context(), []usage.Event{ev("a1")}, now.Add(-time.Hour))
		third <- result{outs, err}
	}()
	select {
	case r := <-second:
		t.Fatalf("the second batch returned %v, %v before the first was applied", r.outs, r.err)
	case r := <-third:
		t.Fatalf("the third batch returned %v, %v before the first was applied", r.outs, r.err)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	a, b, c := <-first, <-second, <-third
	if a.err != nil || b.err != nil || c.err != nil {
		t.Fatal(a.err, b.err, c.err)
	}
	if a.outs[0] != usage.Accepted || b.outs[0] != usage.Duplicate || b.outs[1] != usage.Accepted || c.outs[0] != usage.Duplicate {
		t.Fatalf("outcomes %v, %v, %v, want [Accepted], [Duplicate Accepted], [Duplicate]", a.outs, b.outs, c.outs)
	}
	d = reopen(t, d, dir)
	defer d.Close()
	names, err := d.ClientNames(t.Context(), "org")
	if err != nil || names["cA"] != "Client A" {
		t.Fatalf("client names after reopening: %v, %v", names, err)
	}
	outs, err := d.Append(t.Context(), []usage.Event{ev("a1"), ev("b1")}, now.Add(-time.Hour))
	if err != nil || outs[0] != usage.Duplicate || outs[1] != usage.Duplicate {
		t.Fatalf("after reopening: %v, %v, want both Duplicate", outs, err)
	}
}
