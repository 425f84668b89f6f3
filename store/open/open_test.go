package open_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usaged/usaged/store"
	"github.com/usaged/usaged/store/open"
	"github.com/usaged/usaged/store/pebble"
	"github.com/usaged/usaged/usage"
)

func TestParse(t *testing.T) {
	f := func(s string, want open.Location) {
		t.Helper()
		got, err := open.Parse(s)
		if err != nil || got != want {
			t.Fatalf("Parse(%q) = %+v, %v; want %+v", s, got, err, want)
		}
		if got.String() != s {
			t.Fatalf("Parse(%q).String() = %q", s, got.String())
		}
	}
	f("pebble:./usaged-data/store", open.Location{Scheme: "pebble", Path: "./usaged-data/store"})
	f("pebble:/var/lib/usaged/store", open.Location{Scheme: "pebble", Path: "/var/lib/usaged/store"})
	f("pebble:dir:with:colons", open.Location{Scheme: "pebble", Path: "dir:with:colons"})
	f("memory:", open.Location{Scheme: "memory"})
	f("clickhouse://h1:9000,h2:9000/usaged", open.Location{Scheme: "clickhouse", Path: "//h1:9000,h2:9000/usaged"})

	bad := func(s, want string) {
		t.Helper()
		if l, err := open.Parse(s); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Parse(%q) = %+v, %v; want an error saying %q", s, l, err, want)
		}
	}
	bad("", "names no backend: want one of pebble:, memory:, clickhouse:")
	bad("./usaged-data/store", "names no backend")
	bad("clickhouse://localhost", "needs a port")
	bad("clickhouse://h:9000/no-dashes", "must be letters, digits and _")
	bad("Pebble:dir", "names no backend")
	bad("pebble:", "needs a directory after pebble:")
	bad("memory:somewhere", "memory: takes nothing after the colon")
}

func TestParseMetadata(t *testing.T) {
	for _, s := range []string{"postgres://usaged@h:5432/usaged?sslmode=disable", "postgresql://u@h/db"} {
		l, err := open.ParseMetadata(s)
		if err != nil || l.Scheme != open.SchemePostgres {
			t.Fatalf("ParseMetadata(%q) = %+v, %v", s, l, err)
		}
	}
	for _, s := range []string{"", "pebble:dir", "postgres:nothing", "mysql://h/db"} {
		if l, err := open.ParseMetadata(s); err == nil || !strings.Contains(err.Error(), "want a PostgreSQL URL") {
			t.Fatalf("ParseMetadata(%q) = %+v, %v; want an error asking for a PostgreSQL URL", s, l, err)
		}
	}
}

func TestClickHouseNeedsMetadata(t *testing.T) {
	l, err := open.Parse("clickhouse://127.0.0.1:1/usaged")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open.Open(t.Context(), l, open.Config{}); err == nil || !strings.Contains(err.Error(), "--metadata") {
		t.Fatalf("Open of a clickhouse store without metadata = %v, want an error naming --metadata", err)
	}
}

func TestDefaultKeepsTheDataDirectoryLayout(t *testing.T) {
	data := t.TempDir()
	l := open.Default(data)
	if want := "pebble:" + filepath.Join(data, "store"); l.String() != want {
		t.Fatalf("Default(%q) = %s, want %s", data, l, want)
	}
	s, err := open.Open(t.Context(), l, open.Config{Pebble: pebble.Config{FilterCapacity: 1024}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Usage.(*pebble.DB); !ok || s.Usage != store.Usage(s.Metadata.(*pebble.DB)) {
		t.Fatalf("a pebble location opened %T and %T, want one *pebble.DB as both", s.Usage, s.Metadata)
	}
	if _, ok := s.Usage.(interface {
		store.Health
		store.DiskUser
		store.DedupeExpirer
	}); !ok {
		t.Fatalf("%T lacks an optional interface of package store", s.Usage)
	}
	if err := s.Metadata.PutOrganization(t.Context(), usage.Organization{ID: "o"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(data, "store", "LOCK")); err != nil {
		t.Fatalf("the store is not in <data>/store: %v", err)
	}
	// Reopened, the same data is there.
	s, err = open.Open(t.Context(), l, open.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Metadata.Organization(t.Context(), "o"); err != nil {
		t.Fatalf("after reopening: %v", err)
	}
}

func TestOpenMemory(t *testing.T) {
	l, err := open.Parse("memory:")
	if err != nil {
		t.Fatal(err)
	}
	s, err := open.Open(t.Context(), l, open.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Metadata.PutOrganization(t.Context(), usage.Organization{ID: "o"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Usage.(store.DedupeExpirer); !ok {
		t.Fatalf("%T is no store.DedupeExpirer", s.Usage)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err == nil {
		t.Fatal("a second Close succeeded; want an error")
	}
}

func TestOpenUnknownScheme(t *testing.T) {
	if _, err := open.Open(t.Context(), open.Location{Scheme: "nosuch"}, open.Config{}); err == nil || !strings.Contains(err.Error(), "names no backend") {
		t.Fatalf("Open(nosuch:) = %v; want an error naming the backends", err)
	}
}
