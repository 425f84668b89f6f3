package clickhouse_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/usaged/usaged/internal/clustertest"
)

// TestClaimShapesCost measures what the claim store spends per claim, its
// append-only file's rewrites included, for usaged's claims (fields of
// hashes, a batch's in one script call, looked for in two generations the
// older of which is as full as the one written) and for three shapes of a
// key per claim: SET … NX GET PXAT (how usaged claimed before), the same
// without a TTL per key (the cost of expiring key by key), and HSETNX into
// 4,096 hashes per organization, a command per claim. Each shape writes
// the same number of new claims, four batches at a time (the key-per-claim
// shapes a batch in one MULTI … EXEC), and the Redis of the test cluster
// is emptied of them at the end. It measures; it checks nothing.
func TestClaimShapesCost(t *testing.T) {
	if os.Getenv("USAGED_CLAIM_COST") != "1" {
		t.Skip("set USAGED_CLAIM_COST=1 to measure (it writes millions of keys into the test Redis)")
	}
	opts, err := redis.ParseURL(clustertest.Redis(t))
	if err != nil {
		t.Fatal(err)
	}
	opts.DB, opts.PoolSize = 15, 8
	rc := redis.NewClient(opts)
	defer rc.Close()
	ctx := context.Background()
	batches, _ := strconv.Atoi(os.Getenv("USAGED_CLAIM_COST_BATCHES"))
	if batches == 0 {
		batches = 200
	}
	const perBatch, inFlight = 27_000, 4
	org := "3f2a6c1e-9b7d-4e21-8a55-0c1d2e3f4a5b" // as long as an organization's UUID
	perKey := func(add func(p redis.Pipeliner, hash []byte, value string, expiry int64)) func() error {
		return func() error {
			batch := make([]byte, 16)
			rand.Read(batch)
			value := "p|" + hex.EncodeToString(batch) + "|" + strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10) +
				"|" + strconv.FormatInt(time.Now().Truncate(time.Hour).Unix(), 10)
			expiry := time.Now().Add(26 * time.Hour).UnixMilli()
			p := rc.TxPipeline()
			h := make([]byte, 12)
			for range perBatch {
				rand.Read(h)
				add(p, h, value, expiry)
			}
			if _, err := p.Exec(ctx); err != nil && err != redis.Nil {
				return err
			}
			return nil
		}
	}
	s := openNode(t, testConfig(t))
	shapes := []struct {
		name    string
		prepare func() // before the measure: what the shape reads but does not write
		batch   func() error
	}{
		{"SET NX GET PXAT (before)", nil, perKey(func(p redis.Pipeliner, h []byte, v string, exp int64) {
			p.Do(ctx, "SET", "usaged:cost:e:"+org+":"+hex.EncodeToString(h), v, "NX", "GET", "PXAT", exp)
		})},
		{"SET NX GET, no TTL", nil, perKey(func(p redis.Pipeliner, h []byte, v string, _ int64) {
			p.Do(ctx, "SET", "usaged:cost:e:"+org+":"+hex.EncodeToString(h), v, "NX", "GET")
		})},
		{"HSETNX, 4,096 hashes", nil, perKey(func(p redis.Pipeliner, h []byte, v string, _ int64) {
			p.HSetNX(ctx, "usaged:cost:e:"+org+":"+hex.EncodeToString(h[:2])[:3], hex.EncodeToString(h[1:]), v)
		})},
		{"usaged: script, hashes", func() {
			gen, err := s.ClaimRandom(ctx, org, 1, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			for range batches {
				if _, err := s.ClaimRandom(ctx, org, perBatch, time.Now().Add(-gen)); err != nil {
					t.Fatal(err)
				}
			}
		}, func() error {
			_, err := s.ClaimRandom(ctx, org, perBatch, time.Now())
			return err
		}},
	}
	for _, shape := range shapes {
		if err := rc.FlushDB(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if shape.prepare != nil {
			shape.prepare()
		}
		awaitRewrite(t, rc)
		cpu0, kids0, mem0 := redisUsage(t, rc)
		start := time.Now()
		work := make(chan int)
		var wg sync.WaitGroup
		for range inFlight {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range work {
					if err := shape.batch(); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		for n := range batches {
			work <- n
		}
		close(work)
		wg.Wait()
		took := time.Since(start)
		awaitRewrite(t, rc)
		cpu1, kids1, mem1 := redisUsage(t, rc)
		n := float64(batches * perBatch)
		t.Logf("%-26s %9.0f claims/s; Redis CPU %.2f µs per claim, its rewrites' %.2f more; %.0f B of memory per claim",
			shape.name, n/took.Seconds(), (cpu1-cpu0)/n*1e6, (kids1-kids0)/n*1e6, (mem1-mem0)/n)
	}
	if err := rc.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
}

// awaitRewrite waits for the append-only file's rewrite under way, if any,
// to end.
func awaitRewrite(t *testing.T, rc *redis.Client) {
	for range 600 {
		info := rc.InfoMap(context.Background(), "persistence")
		if err := info.Err(); err != nil {
			t.Fatal(err)
		}
		if info.Item("Persistence", "aof_rewrite_in_progress") != "1" {
			return
		}
		time.Sleep(time.Second)
	}
	t.Fatal("the append-only file's rewrite did not end in ten minutes")
}

// redisUsage returns the CPU seconds of the Redis server and of its
// children (the rewrites), and the bytes of its data set.
func redisUsage(t *testing.T, rc *redis.Client) (cpu, children, memory float64) {
	info := rc.InfoMap(context.Background(), "cpu", "memory")
	if err := info.Err(); err != nil {
		t.Fatal(err)
	}
	field := func(section, name string) float64 {
		f, err := strconv.ParseFloat(info.Item(section, name), 64)
		if err != nil {
			t.Fatalf("INFO %s %s: %v", section, name, err)
		}
		return f
	}
	return field("CPU", "used_cpu_user") + field("CPU", "used_cpu_sys"),
		field("CPU", "used_cpu_user_children") + field("CPU", "used_cpu_sys_children"), field("Memory", "used_memory")
}
