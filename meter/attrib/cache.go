package attrib

import (
	"container/list"
	"crypto/sha256"
	"time"
)

// tokenKey is the SHA-256 of a token: caches do not keep tokens.
type tokenKey [sha256.Size]byte

// entry is a remembered answer about a token.
type entry struct {
	key     tokenKey
	id      Identity
	ok      bool
	expires time.Time
}

// tokenCache remembers answers about tokens until each one expires,
// forgetting the oldest past its bound. Its owner locks it.
type tokenCache struct {
	max     int
	entries map[tokenKey]*list.Element // of *entry
	order   *list.List                 // entries, oldest first
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, entries: make(map[tokenKey]*list.Element), order: list.New()}
}

// get returns the answer about key if it still holds at now; an expired
// one is forgotten.
func (c *tokenCache) get(key tokenKey, now time.Time) (*entry, bool) {
	el, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*entry)
	if now.Before(e.expires) {
		return e, true
	}
	c.order.Remove(el)
	delete(c.entries, key)
	return nil, false
}

// put remembers e, in place of an earlier answer about the same token.
func (c *tokenCache) put(e *entry) {
	if el, ok := c.entries[e.key]; ok {
		el.Value = e
		c.order.MoveToBack(el)
		return
	}
	for c.order.Len() >= c.max {
		oldest := c.order.Front()
		delete(c.entries, oldest.Value.(*entry).key)
		c.order.Remove(oldest)
	}
	c.entries[e.key] = c.order.PushBack(e)
}
