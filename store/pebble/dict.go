package pebble

import (
	"encoding/binary"
	"sync"

	pebbledb "github.com/cockroachdb/pebble/v2"
)

// Dictionary kinds: each dimension has its own id space.
const (
	kindOrg byte = iota + 1
	kindClient
	kindUser
	kindTemplate
	kindMethod
	kindPlatform
	numKinds
)

// dict interns dimension values to dense uint32 ids, and remembers the latest
// name recorded for each client. Only Append writes it (holding DB.mu); queries
// read it under mu's read lock. The whole dictionary is loaded at Open: its
// size is the number of distinct values, not of events.
type dict struct {
	mu    sync.RWMutex
	ids   [numKinds]map[string]uint32
	strs  [numKinds][]string   // strs[k][id]; id 0 is ""
	names map[[2]uint32]string // (org, client) → latest name, for every pair with an event
}

func newDict() *dict {
	d := &dict{names: make(map[[2]uint32]string)}
	for k := range d.ids {
		d.ids[k] = map[string]uint32{"": 0}
		d.strs[k] = []string{""}
	}
	return d
}

// load reads every dictionary entry and client name.
func (d *dict) load(db *pebbledb.DB) error {
	it, err := db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{famDict}, UpperBound: []byte{famDict + 1}})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		k, v := it.Key(), it.Value()
		if len(k) < 2 || k[1] == 0 || k[1] >= numKinds || len(v) != 4 {
			it.Close()
			return errCorrupt
		}
		kind, s, id := k[1], string(k[2:]), binary.BigEndian.Uint32(v)
		d.ids[kind][s] = id
		for uint32(len(d.strs[kind])) <= id {
			d.strs[kind] = append(d.strs[kind], "")
		}
		d.strs[kind][id] = s
	}
	if err := it.Close(); err != nil {
		return err
	}
	it, err = db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{famName}, UpperBound: []byte{famName + 1}})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != 9 {
			continue
		}
		d.names[[2]uint32{binary.BigEndian.Uint32(k[1:]), binary.BigEndian.Uint32(k[5:])}] = string(it.Value())
	}
	return it.Close()
}

// intern returns the id of s, assigning one and writing it to b if s is new.
// The caller holds DB.mu, so lookups need no lock.
func (d *dict) intern(kind byte, s string, b *pebbledb.Batch) uint32 {
	if id, ok := d.ids[kind][s]; ok {
		return id
	}
	d.mu.Lock()
	id := uint32(len(d.strs[kind]))
	d.ids[kind][s] = id
	d.strs[kind] = append(d.strs[kind], s)
	d.mu.Unlock()
	b.Set(dictKey(kind, s), binary.BigEndian.AppendUint32(nil, id), nil)
	return id
}

// setName records name as the latest name of client, writing it to b on the
// client's first event in org and whenever it changes. The first event always
// writes, even an empty name, so that the 'n' keys also list the clients whose
// events carry no name: they are how ClientNames knows every client of an
// organization. Stores written before this rule have no key for a client none
// of whose events carried a name; such a client is missing from ClientNames
// until its next event writes one. That is accepted rather than migrated: the
// client only goes unlisted, and its counts are unaffected.
func (d *dict) setName(org, client uint32, name string, b *pebbledb.Batch) {
	k := [2]uint32{org, client}
	if old, ok := d.names[k]; ok && old == name {
		return
	}
	d.mu.Lock()
	d.names[k] = name
	d.mu.Unlock()
	b.Set(nameKey(org, client), []byte(name), nil)
}

// lookup returns the id of s, if interned. The caller holds mu for reading.
func (d *dict) lookup(kind byte, s string) (uint32, bool) {
	id, ok := d.ids[kind][s]
	return id, ok
}

// str returns the value of id. The caller holds mu for reading.
func (d *dict) str(kind byte, id uint32) string {
	if int(id) < len(d.strs[kind]) {
		return d.strs[kind][id]
	}
	return ""
}
