package redis

import (
	"context"
	"fmt"
	"strings"
	"sync"

	goredis "github.com/redis/go-redis/v9"
)

// CheckDurability reads appendonly and appendfsync on the server (on every
// master of a Cluster) and returns one human-readable warning per setting
// that breaks the store's durability promise. No warnings means every
// acknowledged change survives a crash of Redis or of its machine.
func (s *Store) CheckDurability(ctx context.Context) ([]string, error) {
	var (
		mu       sync.Mutex
		warnings []string
	)
	check := func(ctx context.Context, c *goredis.Client) error {
		w, err := durabilityWarnings(ctx, c)
		mu.Lock()
		warnings = append(warnings, w...)
		mu.Unlock()
		return err
	}
	var err error
	if s.cluster != nil {
		err = s.cluster.ForEachMaster(ctx, check)
	} else if c, ok := s.rdb.(*goredis.Client); ok {
		err = check(ctx, c)
	}
	if err != nil {
		return nil, fmt.Errorf("redis: check durability: %w", err)
	}
	return warnings, nil
}

func durabilityWarnings(ctx context.Context, c *goredis.Client) ([]string, error) {
	cfg, err := c.ConfigGet(ctx, "append*").Result()
	if err != nil {
		return nil, err
	}
	node := c.Options().Addr
	var w []string
	if v := strings.ToLower(cfg["appendonly"]); v != "yes" {
		w = append(w, fmt.Sprintf("redis %s: appendonly is %q, want \"yes\": acknowledged mail can be lost in a crash", node, v))
	}
	if v := strings.ToLower(cfg["appendfsync"]); v != "always" {
		w = append(w, fmt.Sprintf("redis %s: appendfsync is %q, want \"always\": up to a second of acknowledged mail can be lost in a crash", node, v))
	}
	return w, nil
}
