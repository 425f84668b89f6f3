package clustertest

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Claim reads, as docs/scale-out.md lays claims out, the claim of an event
// id of kind ('e' or 'a') in scope whose 12-byte hash is hash, in the
// claim store of the cluster database db: the field hash of the id's
// bucket (its hash's first 6 bits) in whichever generation holds it. It
// returns the key of that hash and the value, or redis.Nil.
func Claim(ctx context.Context, rdb *redis.Client, db string, kind byte, scope string, hash [12]byte) (key, value string, err error) {
	pattern := fmt.Sprintf("usaged:%s:%c:%s:g*:%02x", db, kind, scope, hash[0]>>2)
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		v, err := rdb.HGet(ctx, iter.Val(), string(hash[:])).Result()
		if err == nil {
			return iter.Val(), v, nil
		}
		if err != redis.Nil {
			return "", "", err
		}
	}
	if err := iter.Err(); err != nil {
		return "", "", err
	}
	return "", "", redis.Nil
}
