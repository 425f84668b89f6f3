package tenancy_test

import (
	"context"
	"testing"
	"time"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/store/memory"
	"github.com/usaged/usaged/tenancy"
	"github.com/usaged/usaged/usage"
)

// pausedStore holds its next Partners read until released, after signalling
// that it started, so that a write can land in the middle of a reload.
type pausedStore struct {
	store.ServiceRegistry
	started, release chan struct{}
}

func (s *pausedStore) Partners(ctx context.Context) ([]usage.Partner, error) {
	ps, err := s.ServiceRegistry.Partners(ctx)
	if s.started != nil {
		started := s.started
		s.started = nil
		close(started)
		<-s.release
	}
	return ps, err
}

// A partner created while a reload reads the store is still there after
// the reload: the reload must not put back what it read before the write.
func TestReloadKeepsAWriteMadeDuringIt(t *testing.T) {
	st := &pausedStore{ServiceRegistry: memory.New()}
	r, err := tenancy.New(context.Background(), tenancy.Config{Store: st, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	st.started, st.release = make(chan struct{}), make(chan struct{})
	started := st.started
	done := make(chan error, 1)
	go func() { done <- r.Reload(context.Background()) }()
	<-started
	p, err := r.CreatePartner(context.Background(), "made during the reload")
	if err != nil {
		t.Fatal(err)
	}
	close(st.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Partner(p.GUID); !ok {
		t.Fatal("the partner created during a reload is gone")
	}
}
