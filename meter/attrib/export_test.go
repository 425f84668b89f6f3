package attrib

import (
	"crypto/sha256"
	"time"
)

// CachedUntil reports until when j takes tok on trust without verifying
// it again, if it remembers it.
func (j *JWT) CachedUntil(tok string) (time.Time, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	e, ok := j.cache.entries[tokenKey(sha256.Sum256([]byte(tok)))]
	if !ok {
		return time.Time{}, false
	}
	return e.Value.(*entry).expires, true
}
