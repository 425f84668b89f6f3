package pebble_test

import (
	"testing"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/store/pebble"
	"github.com/usaged/usaged/store/storetest"
)

func TestConformance(t *testing.T) {
	dirs := map[store.Store]string{}
	open := func(t *testing.T, dir string) store.Store {
		db, err := pebble.Open(pebble.Config{Dir: dir, FilterCapacity: 1024})
		if err != nil {
			t.Fatal(err)
		}
		dirs[db] = dir
		return db
	}
	storetest.Run(t, storetest.Backend{
		Open: func(t *testing.T) store.Store { return open(t, t.TempDir()) },
		Reopen: func(t *testing.T, s store.Store) store.Store {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return open(t, dirs[s])
		},
	})
}
