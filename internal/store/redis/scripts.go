package redis

import (
	"context"
	"embed"

	goredis "github.com/redis/go-redis/v9"

	"smessenger/internal/store"
)

//go:embed lua/*.lua
var luaFS embed.FS

// Account scripts get the shared prelude; directory and queue scripts stand
// alone because their keys are not an account's.
var (
	scCreateAccount = accountScript("create_account")
	scDeleteAccount = accountScript("delete_account")
	scGetAccount    = accountScript("get_account")
	scSetField      = accountScript("set_field")
	scGetKey        = accountScript("get_key")
	scExists        = accountScript("exists")
	scAlias         = accountScript("alias")
	scDevice        = accountScript("device")
	scMailboxes     = accountScript("mailboxes")
	scRename        = accountScript("rename_mailbox")
	scDeleteMailbox = accountScript("delete_mailbox")
	scAppend        = accountScript("append")
	scList          = accountScript("list_messages")
	scBlobs         = accountScript("blobs")
	scStoreFlags    = accountScript("store_flags")
	scTransfer      = accountScript("transfer")
	scExpunge       = accountScript("expunge")
	scEvents        = accountScript("events")
	scDir           = plainScript("dir")
	scQueue         = plainScript("queue")
)

func luaSource(name string) string {
	b, err := luaFS.ReadFile("lua/" + name + ".lua")
	if err != nil {
		panic("redis: missing embedded script " + name) // a build defect, caught by every test
	}
	return string(b)
}

func accountScript(name string) *goredis.Script {
	return goredis.NewScript(luaSource("prelude") + "\n" + luaSource(name))
}

func plainScript(name string) *goredis.Script { return goredis.NewScript(luaSource(name)) }

// acct runs an account script; KEYS[1] is the account hash, whose hash tag
// routes the call to the account's node.
func (s *Store) acct(ctx context.Context, op string, sc *goredis.Script, id store.AccountID, args ...any) (any, error) {
	if !validAccountID(id) {
		return nil, mapErr(op, errNoAcct)
	}
	v, err := sc.Run(ctx, s.rdb, []string{acctKey(id)}, args...).Result()
	return v, mapErr(op, err)
}

// queue runs the queue script.
func (s *Store) queue(ctx context.Context, op string, args ...any) (any, error) {
	v, err := scQueue.Run(ctx, s.rdb, []string{qDue, qDead, qSeq}, append([]any{op}, args...)...).Result()
	return v, mapErr("queue "+op, err)
}

// dir runs the directory script on keys (all tagged {d}).
func (s *Store) dir(ctx context.Context, op, value string, keys ...string) (int64, error) {
	v, err := scDir.Run(ctx, s.rdb, keys, op, value).Int64()
	return v, mapErr("directory "+op, err)
}
