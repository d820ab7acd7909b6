// Package redis is the Redis implementation of store.Store, for standalone
// Redis and Redis Cluster, so that several server nodes can share one store.
//
// # Durability
//
// store.Store promises that a change is durable when a method returns. With
// Redis that holds only when every master runs with
//
//	appendonly yes
//	appendfsync always
//
// Redis then writes and fsyncs the append-only file before it answers a
// write, and it group-commits: the writes of all clients served in one event
// loop iteration share one fsync, so many concurrent writers stay fast.
// CheckDurability reports servers that do not run these settings; the server
// should refuse to start, or at least warn, when it returns warnings.
//
// # Key layout
//
// Every key of one account carries the hash tag {a:<account id>}, so an
// account lives in one Cluster slot and each multi-key change (UID
// allocation, message, mailbox counters, event) is one Lua script, atomic on
// one node. The directory (accounts list, address → account, device key →
// account, enrolment tokens) lives under the tag {d}, the outbound queue under
// {q}. Changes that touch the directory and an account cannot be one atomic
// step in a Cluster; their order is chosen so that a crash between the steps
// leaves at worst unreachable garbage, never a directory entry that points to
// a missing or wrong account (see the comments in accounts.go).
//
// Append, the hot path, sends its blobs as plain HSET arguments to the
// account's staging hash {a:<id>}:stage and runs its script in the same
// MULTI/EXEC transaction; the script renames the staging hash into place as
// the message hash. Strings that enter Lua are copied and hashed byte by byte,
// so keeping the blobs out of the script is most of what makes the append
// cheap. The staging hash never outlives its transaction.
//
// # Events
//
// Each script that logs events publishes the account's newest event number on
// the channel "smsg:ev:<account id>". One pattern subscription per Store fans
// the notifications out to WaitEvents callers in memory; PUBLISH reaches
// subscribers on every node of a Cluster.
//
// The package implements no wire protocol itself; it speaks RESP (the Redis
// protocol) through go-redis. Mailbox semantics follow RFC 9051 (UIDs,
// UIDVALIDITY) and RFC 7162 (per-mailbox MODSEQ).
package redis

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"smessenger/internal/store"
)

// poolSize is large enough for many concurrent appenders: Redis group-commits
// the fsyncs of all clients it serves in one loop iteration, so throughput
// grows with the number of connections in flight.
const poolSize = 64

// Store is a store.Store on Redis. It is safe for concurrent use.
type Store struct {
	rdb     goredis.UniversalClient
	cluster *goredis.ClusterClient // nil for a standalone server
	hub     *hub

	closeOnce sync.Once
}

var _ store.Store = (*Store)(nil)

// Open connects to Redis. url is one of
//
//	redis://host:port/db         standalone server over TCP
//	unix:///path/to/redis.sock   standalone server over a unix socket
//	redis+cluster://h1:p1,h2:p2  Redis Cluster (seed nodes)
//	h1:p1,h2:p2                  Redis Cluster (seed nodes)
//
// It pings the server before it returns.
func Open(ctx context.Context, url string) (*Store, error) {
	s := &Store{}
	single, cluster, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	if cluster != nil {
		s.cluster = goredis.NewClusterClient(cluster)
		s.rdb = s.cluster
	} else {
		s.rdb = goredis.NewClient(single)
	}
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		s.rdb.Close()
		return nil, fmt.Errorf("redis: connect: %w", err)
	}
	s.hub = newHub(s)
	return s, nil
}

// Connection settings shared by both modes.
const (
	minIdle = 4
	ioWait  = 10 * time.Second
)

// parseURL turns the accepted URL forms into client options: exactly one of
// the results is non-nil on success.
func parseURL(raw string) (*goredis.Options, *goredis.ClusterOptions, error) {
	raw = strings.TrimSpace(raw)
	switch {
	case raw == "":
		return nil, nil, fmt.Errorf("redis: empty URL: %w", store.ErrInvalid)
	case strings.HasPrefix(raw, "redis+cluster://"):
		rest := strings.TrimPrefix(raw, "redis+cluster://")
		rest, _, _ = strings.Cut(rest, "/")
		c, err := clusterOpts(strings.Split(rest, ","))
		return nil, c, err
	case strings.HasPrefix(raw, "redis://"), strings.HasPrefix(raw, "rediss://"), strings.HasPrefix(raw, "unix://"):
		o, err := goredis.ParseURL(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("redis: bad URL %q: %w", redactURL(raw), store.ErrInvalid)
		}
		o.PoolSize, o.MinIdleConns = poolSize, minIdle
		o.ReadTimeout, o.WriteTimeout = ioWait, ioWait
		return o, nil, nil
	case !strings.Contains(raw, "://"):
		c, err := clusterOpts(strings.Split(raw, ","))
		return nil, c, err
	}
	return nil, nil, fmt.Errorf("redis: unsupported URL scheme in %q: %w", redactURL(raw), store.ErrInvalid)
}

func clusterOpts(addrs []string) (*goredis.ClusterOptions, error) {
	o := &goredis.ClusterOptions{
		PoolSize: poolSize, MinIdleConns: minIdle,
		ReadTimeout: ioWait, WriteTimeout: ioWait,
	}
	for _, a := range addrs {
		a = strings.TrimSpace(a)
		if _, port, ok := strings.Cut(a, ":"); !ok || port == "" {
			return nil, fmt.Errorf("redis: bad cluster node %q: %w", a, store.ErrInvalid)
		}
		o.Addrs = append(o.Addrs, a)
	}
	return o, nil
}

// redactURL drops credentials before a URL goes into an error message.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	u.User = nil
	return u.String()
}

// Close stops the event subscription and closes the connections.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.hub.close()
		err = s.rdb.Close()
	})
	return err
}

// Key names. Account keys share the tag {a:<id>}; see the package comment.
func acctPrefix(id store.AccountID) string { return "{a:" + string(id) + "}:" }
func acctKey(id store.AccountID) string    { return acctPrefix(id) + "acct" }

const (
	dirAccounts = "{d}:accounts"
	dirAddr     = "{d}:addr:"
	dirDev      = "{d}:dev:"
	dirTok      = "{d}:tok:"
	evChannel   = "smsg:ev:"
)

// Script errors travel as error replies whose text is one of these codes; the
// Go side maps them to store sentinels so nothing of Redis leaks to callers.
var scriptErrors = map[string]error{
	"NOACCT":    store.ErrAccountNotFound,
	"NOMBOX":    store.ErrMailboxNotFound,
	"MBEXISTS":  store.ErrMailboxExists,
	"PROTECTED": store.ErrMailboxProtected,
	"NOMSG":     store.ErrMessageNotFound,
	"QUOTA":     store.ErrQuotaExceeded,
	"LEASELOST": store.ErrLeaseLost,
	"NOTFOUND":  store.ErrNotFound,
	"EMPTY":     store.ErrQueueEmpty,
	"TAKEN":     store.ErrAddressTaken,
	"INVALID":   store.ErrInvalid,
	"NODEV":     store.ErrDeviceNotFound,
}

// mapErr turns a script error code into its sentinel, and wraps anything else.
func mapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, goredis.Nil) {
		return fmt.Errorf("redis: %s: %w", op, store.ErrNotFound)
	}
	msg := err.Error()
	code, _, _ := strings.Cut(msg, " ")
	if s, ok := scriptErrors[code]; ok {
		return fmt.Errorf("redis: %s: %w", op, s)
	}
	return fmt.Errorf("redis: %s: %w", op, err)
}
