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

// refusedCache remembers tokens usaged refused, until each refusal
// expires, forgetting the oldest past its bound. Every refusal is kept for
// the same time, so the oldest is also the first to expire: a queue in
// order of arrival is enough, and expired refusals leave from its front.
// Its owner locks it.
type refusedCache struct {
	max   int
	until map[tokenKey]time.Time
	queue []refusal // oldest first, from head
	head  int
}

type refusal struct {
	key   tokenKey
	until time.Time
}

func newRefusedCache(max int) *refusedCache {
	return &refusedCache{max: max, until: make(map[tokenKey]time.Time)}
}

// has reports whether key was refused and the refusal holds at now.
func (c *refusedCache) has(key tokenKey, now time.Time) bool {
	until, ok := c.until[key]
	return ok && now.Before(until)
}

// add remembers that key was refused, until until.
func (c *refusedCache) add(key tokenKey, until, now time.Time) {
	for c.head < len(c.queue) && (len(c.until) >= c.max || !now.Before(c.queue[c.head].until)) {
		c.drop()
	}
	c.until[key] = until
	c.queue = append(c.queue, refusal{key, until})
	// Reuse the queue's space once most of it is behind the head.
	if c.head > len(c.queue)/2 {
		c.queue = append(c.queue[:0], c.queue[c.head:]...)
		c.head = 0
	}
}

// drop forgets the oldest refusal, unless the token was refused again
// since, with a later expiry of its own further on in the queue.
func (c *refusedCache) drop() {
	r := c.queue[c.head]
	c.queue[c.head] = refusal{}
	c.head++
	if c.until[r.key].Equal(r.until) {
		delete(c.until, r.key)
	}
}
