package redis

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"smessenger/internal/store"
)

// blobBatch bounds the messages per blob script call; a pipeline sends all
// batches in one round trip per node, and each reply stays a few MB.
const blobBatch = 500

// Append stores a message with the next UID in one atomic MULTI/EXEC
// transaction around one script (UID, message, counters, quota, event; see
// appendTx), acknowledged only once Redis has written it to its append-only
// file.
func (s *Store) Append(ctx context.Context, id store.AccountID, mailbox string, msg store.NewMessage) (store.MessageMeta, error) {
	name, err := normMailbox(mailbox)
	if err != nil {
		return store.MessageMeta{}, err
	}
	flags, err := normFlags(msg.Flags)
	if err != nil {
		return store.MessageMeta{}, err
	}
	if msg.Size < 0 {
		return store.MessageMeta{}, invalid("size", msg.Size)
	}
	date := msg.InternalDate
	if date.IsZero() {
		date = time.Now()
	}
	date = parseNanos(nanos(date))
	if !validAccountID(id) {
		return store.MessageMeta{}, mapErr("append", errNoAcct)
	}
	v, err := s.appendTx(ctx, id, msg, name, nanos(time.Now()), nanos(date), msg.Size, joinFlags(flags),
		len(msg.HeaderBlob), len(msg.BodyBlob))
	if err != nil {
		return store.MessageMeta{}, err
	}
	r := strs(v)
	if len(r) != 4 {
		return store.MessageMeta{}, fmt.Errorf("redis: append: short reply")
	}
	return store.MessageMeta{
		ID: store.MessageID(num(r[0])), UID: uint32(num(r[1])), ModSeq: uint64(num(r[2])), MailboxID: uint64(num(r[3])),
		Flags: flags, InternalDate: date, Size: msg.Size, HeaderLen: len(msg.HeaderBlob), BodyLen: len(msg.BodyBlob),
	}, nil
}

// stageKey is the account's staging hash for Append's blobs. It exists only
// inside one MULTI/EXEC transaction, which serialises it, so one name per
// account is enough.
func stageKey(id store.AccountID) string { return acctPrefix(id) + "stage" }

// appendTx runs one append as a single MULTI/EXEC transaction: HSET the blobs
// into the staging hash, the append script (which renames the staging hash
// into place as the message hash), then DEL of the staging hash. The blobs
// thus reach Redis as plain command arguments and never enter Lua, where
// every string is copied and hashed byte by byte; the trailing DEL runs
// whatever the script did (EXEC does not stop at a failed command), so a
// rejected append leaves nothing behind. Redis answers EXEC only after the
// whole transaction is in the fsynced append-only file.
func (s *Store) appendTx(ctx context.Context, id store.AccountID, msg store.NewMessage, args ...any) (any, error) {
	keys := []string{acctKey(id), stageKey(id)}
	for attempt := 0; ; attempt++ {
		var run *goredis.Cmd
		_, txErr := s.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.HSet(ctx, keys[1], "h", msg.HeaderBlob, "b", msg.BodyBlob)
			run = scAppend.EvalSha(ctx, p, keys, args...)
			p.Del(ctx, keys[1])
			return nil
		})
		v, err := run.Result()
		if err == nil && txErr != nil {
			err = txErr
		}
		// A server that lost its script cache (restart, SCRIPT FLUSH) ran
		// only the HSET and DEL: load the script and try once more.
		if attempt == 0 && goredis.HasErrorPrefix(err, "NOSCRIPT") {
			if lerr := scAppend.Load(ctx, s.rdb).Err(); lerr != nil {
				return nil, mapErr("append", lerr)
			}
			continue
		}
		return v, mapErr("append", err)
	}
}

func joinFlags(f []string) string {
	out := ""
	for i, x := range f {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out
}

// ListMessages returns the metadata of messages with UID >= sinceUID, in UID
// order, in one script call (one round trip for any mailbox size).
func (s *Store) ListMessages(ctx context.Context, id store.AccountID, mailbox string, sinceUID uint32) ([]store.MessageMeta, error) {
	name, err := normMailbox(mailbox)
	if err != nil {
		return nil, err
	}
	v, err := s.acct(ctx, "list messages", scList, id, name, sinceUID, "+inf")
	if err != nil {
		return nil, err
	}
	return decodeMeta(strs(v)), nil
}

// GetMessage returns one message's metadata by UID.
func (s *Store) GetMessage(ctx context.Context, id store.AccountID, mailbox string, uid uint32) (store.MessageMeta, error) {
	name, err := normMailbox(mailbox)
	if err != nil {
		return store.MessageMeta{}, err
	}
	v, err := s.acct(ctx, "get message", scList, id, name, uid, uid)
	if err != nil {
		return store.MessageMeta{}, err
	}
	ms := decodeMeta(strs(v))
	if len(ms) != 1 || uid == 0 {
		return store.MessageMeta{}, mapErr("get message", errNoMsg)
	}
	return ms[0], nil
}

// HeaderBlobs returns header blobs in the order asked; batches of blobBatch
// messages go out in one pipeline.
func (s *Store) HeaderBlobs(ctx context.Context, id store.AccountID, msgs []store.MessageID) ([][]byte, error) {
	if !validAccountID(id) {
		return nil, mapErr("header blobs", errNoAcct)
	}
	if len(msgs) == 0 {
		if _, err := s.acct(ctx, "header blobs", scExists, id); err != nil {
			return nil, err
		}
		return [][]byte{}, nil
	}
	if err := scBlobs.Load(ctx, s.rdb).Err(); err != nil {
		return nil, mapErr("header blobs", err)
	}
	var cmds []*goredis.Cmd
	_, _ = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for start := 0; start < len(msgs); start += blobBatch {
			batch := msgs[start:min(start+blobBatch, len(msgs))]
			args := make([]any, 0, len(batch)+1)
			args = append(args, "h")
			for _, m := range batch {
				args = append(args, uint64(m))
			}
			cmds = append(cmds, scBlobs.EvalSha(ctx, p, []string{acctKey(id)}, args...))
		}
		return nil
	})
	out := make([][]byte, 0, len(msgs))
	for _, c := range cmds {
		v, err := c.Result()
		if err != nil {
			return nil, mapErr("header blobs", err)
		}
		for _, b := range strs(v) {
			out = append(out, []byte(b))
		}
	}
	return out, nil
}

// BodyBlob returns one message's body blob.
func (s *Store) BodyBlob(ctx context.Context, id store.AccountID, msg store.MessageID) ([]byte, error) {
	v, err := s.acct(ctx, "body blob", scBlobs, id, "b", uint64(msg))
	if err != nil {
		return nil, err
	}
	r := strs(v)
	if len(r) != 1 {
		return nil, mapErr("body blob", errNoMsg)
	}
	return []byte(r[0]), nil
}

var flagOps = map[store.FlagOp]string{store.FlagsSet: "set", store.FlagsAdd: "add", store.FlagsRemove: "remove"}

// StoreFlags changes flags in one script; each changed message bumps the
// mailbox modseq and logs EventFlagsChanged.
func (s *Store) StoreFlags(ctx context.Context, id store.AccountID, mailbox string, uids []uint32, op store.FlagOp, flags []string) ([]store.MessageMeta, error) {
	name, err := normMailbox(mailbox)
	if err != nil {
		return nil, err
	}
	ops, ok := flagOps[op]
	if !ok {
		return nil, invalid("flag operation", int(op))
	}
	fl, err := normFlags(flags)
	if err != nil {
		return nil, err
	}
	args := []any{name, nanos(time.Now()), ops, joinFlags(fl)}
	args = append(args, uidArgs(uids)...)
	v, err := s.acct(ctx, "store flags", scStoreFlags, id, args...)
	if err != nil {
		return nil, err
	}
	return decodeMeta(strs(v)), nil
}

// uidArgs sorts and deduplicates UIDs (UID 0 never exists).
func uidArgs(uids []uint32) []any {
	u := slices.Clone(uids)
	slices.Sort(u)
	u = slices.Compact(u)
	out := make([]any, 0, len(u))
	for _, x := range u {
		if x != 0 {
			out = append(out, x)
		}
	}
	return out
}

// Copy copies messages to dst (new ids, copied blobs) in one script.
func (s *Store) Copy(ctx context.Context, id store.AccountID, src string, uids []uint32, dst string) ([]store.UIDPair, error) {
	return s.transfer(ctx, "copy", id, src, uids, dst)
}

// Move moves messages to dst (same ids, new UIDs) in one script.
func (s *Store) Move(ctx context.Context, id store.AccountID, src string, uids []uint32, dst string) ([]store.UIDPair, error) {
	return s.transfer(ctx, "move", id, src, uids, dst)
}

func (s *Store) transfer(ctx context.Context, op string, id store.AccountID, src string, uids []uint32, dst string) ([]store.UIDPair, error) {
	sn, err := normMailbox(src)
	if err != nil {
		return nil, err
	}
	dn, err := normMailbox(dst)
	if err != nil {
		return nil, err
	}
	args := append([]any{op, sn, dn, nanos(time.Now())}, uidArgs(uids)...)
	v, err := s.acct(ctx, op, scTransfer, id, args...)
	if err != nil {
		return nil, err
	}
	f := strs(v)
	out := make([]store.UIDPair, 0, len(f)/2)
	for i := 0; i+1 < len(f); i += 2 {
		out = append(out, store.UIDPair{Src: uint32(num(f[i])), Dst: uint32(num(f[i+1]))})
	}
	return out, nil
}

// Expunge removes the given UIDs, or every \Deleted message when uids is nil.
func (s *Store) Expunge(ctx context.Context, id store.AccountID, mailbox string, uids []uint32) ([]uint32, error) {
	name, err := normMailbox(mailbox)
	if err != nil {
		return nil, err
	}
	mode := "uids"
	if uids == nil {
		mode = "deleted"
	}
	args := append([]any{name, nanos(time.Now()), mode}, uidArgs(uids)...)
	v, err := s.acct(ctx, "expunge", scExpunge, id, args...)
	if err != nil {
		return nil, err
	}
	f := strs(v)
	out := make([]uint32, 0, len(f))
	for _, x := range f {
		n, _ := strconv.ParseUint(x, 10, 32)
		out = append(out, uint32(n))
	}
	slices.Sort(out)
	return out, nil
}
