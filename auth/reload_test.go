package auth_test

import (
	"context"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/usaged/usaged/auth"
	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/store/memory"
	"github.com/usaged/usaged/usage"
)

// pausedRegistry holds its next Organizations read until released, after
// signalling that it started, so that a write can land in a reload.
type pausedRegistry struct {
	store.Registry
	started, release chan struct{}
}

func (r *pausedRegistry) Organizations(ctx context.Context) ([]usage.Organization, error) {
	os, err := r.Registry.Organizations(ctx)
	if r.started != nil {
		started := r.started
		r.started = nil
		close(started)
		<-r.release
	}
	return os, err
}

// A client deleted while a reload reads the registry stays deleted, and an
// organization created meanwhile stays known: the reload must not put back
// what it read before the writes.
func TestReloadKeepsWritesMadeDuringIt(t *testing.T) {
	reg := &pausedRegistry{Registry: memory.New()}
	s, err := auth.New(t.Context(), auth.Config{Registry: reg, AdminToken: adminToken,
		SigningKey: []byte(strings.Repeat("k", 32)), BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	o := mustOrg(t, s)
	c, secret := mustClient(t, s, o.ID, auth.ClientSpec{Name: "CRM"})
	tok, _, err := s.IssueToken(t.Context(), c.ID, secret)
	if err != nil {
		t.Fatal(err)
	}
	reg.started, reg.release = make(chan struct{}), make(chan struct{})
	started := reg.started
	done := make(chan error, 1)
	go func() { done <- s.Reload(context.Background()) }()
	<-started
	if err := s.DeleteClient(t.Context(), o.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	later, err := s.CreateOrganization(t.Context(), "Made during the reload")
	if err != nil {
		t.Fatal(err)
	}
	close(reg.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(t.Context(), tok); usage.KindOf(err) != usage.KindUnauthorized {
		t.Fatalf("the token of a client deleted during a reload: %v", err)
	}
	if !s.KnownOrganization(later.ID) {
		t.Fatal("the organization created during a reload is unknown")
	}
}
