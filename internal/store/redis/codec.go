package redis

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"smessenger/internal/store"
)

// errNoAcct is the script code for a missing account, used without a round
// trip when an id cannot exist.
var (
	errNoAcct = errors.New("NOACCT")
	errNoMbox = errors.New("NOMBOX")
	errNoMsg  = errors.New("NOMSG")
)

// Limits on names; they keep keys and event records small and parseable.
const (
	maxAddress = 320
	maxMailbox = 1000
	maxFlag    = 200
	maxFlags   = 100
	maxName    = 200
)

func invalid(what string, v any) error {
	return fmt.Errorf("redis: invalid %s %q: %w", what, v, store.ErrInvalid)
}

// validAccountID accepts what newAccountID makes (lower-case hex) so a
// caller's id can never smuggle a hash tag or key separator into a key name.
func validAccountID(id store.AccountID) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// plainText reports whether s is valid UTF-8 without control characters or
// spaces when noSpace is set; such text is safe in our tab- and
// space-separated records.
func plainText(s string, noSpace bool) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (noSpace && r == ' ') {
			return false
		}
	}
	return true
}

// normAddress lower-cases and checks an address: local@domain, no spaces or
// control characters.
func normAddress(a string) (string, error) {
	a = store.NormalizeAddress(strings.TrimSpace(a))
	at := strings.LastIndexByte(a, '@')
	if len(a) > maxAddress || at < 1 || at == len(a)-1 || !plainText(a, true) {
		return "", invalid("address", a)
	}
	return a, nil
}

// normMailbox normalises INBOX and checks a mailbox name.
func normMailbox(name string) (string, error) {
	name = store.NormalizeMailbox(name)
	if name == "" || len(name) > maxMailbox || !plainText(name, false) ||
		strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.Contains(name, "//") {
		return "", invalid("mailbox name", name)
	}
	return name, nil
}

// systemFlags maps lower-cased system flags to their canonical spelling
// (RFC 9051 section 2.3.2: flags are case-insensitive).
var systemFlags = map[string]string{
	`\seen`: `\Seen`, `\answered`: `\Answered`, `\flagged`: `\Flagged`,
	`\deleted`: `\Deleted`, `\draft`: `\Draft`, `\recent`: `\Recent`,
}

// normFlags canonicalises, checks, sorts and deduplicates flags.
func normFlags(flags []string) ([]string, error) {
	if len(flags) > maxFlags {
		return nil, invalid("flag count", len(flags))
	}
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		if c, ok := systemFlags[strings.ToLower(f)]; ok {
			f = c
		}
		if f == "" || len(f) > maxFlag || !plainText(f, true) || strings.ContainsAny(f, `(){%*"]`) ||
			strings.LastIndexByte(f, '\\') > 0 {
			return nil, invalid("flag", f)
		}
		out = append(out, f)
	}
	return sortFlags(out), nil
}

// sortFlags sorts and deduplicates in place (Redis's Lua sort may use
// another collation, so every decode sorts again).
func sortFlags(f []string) []string {
	sort.Strings(f)
	out := f[:0]
	for i, x := range f {
		if i == 0 || x != f[i-1] {
			out = append(out, x)
		}
	}
	return out
}

func splitFlags(s string) []string { return sortFlags(strings.Fields(s)) }

func nanos(t time.Time) string { return strconv.FormatInt(t.UnixNano(), 10) }

func parseNanos(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// num parses a decimal reply field; bad data reads as 0 rather than
// panicking, and the callers' invariants make it visible in tests.
func num(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// strs converts a script's array reply.
func strs(v any) []string {
	arr, _ := v.([]any)
	out := make([]string, len(arr))
	for i, x := range arr {
		switch x := x.(type) {
		case string:
			out[i] = x
		case int64:
			out[i] = strconv.FormatInt(x, 10)
		}
	}
	return out
}

// decodeMeta reads the packed records of the prelude's putMeta: id, uid,
// flags, date, size, modseq, hlen, blen, mailbox id, tab-separated.
func decodeMeta(recs []string) []store.MessageMeta {
	out := make([]store.MessageMeta, 0, len(recs))
	var r [9]string
	for _, rec := range recs {
		if !splitN(rec, r[:]) {
			continue // a message removed between ZRANGE and HMGET cannot happen in one script; skip defensively
		}
		out = append(out, store.MessageMeta{
			ID:           store.MessageID(num(r[0])),
			UID:          uint32(num(r[1])),
			Flags:        splitFlags(r[2]),
			InternalDate: parseNanos(r[3]),
			Size:         num(r[4]),
			ModSeq:       uint64(num(r[5])),
			HeaderLen:    int(num(r[6])),
			BodyLen:      int(num(r[7])),
			MailboxID:    uint64(num(r[8])),
		})
	}
	return out
}

// splitN splits a tab-separated record into exactly len(dst) fields without
// allocating a slice; false if the count differs.
func splitN(rec string, dst []string) bool {
	for i := range dst {
		if i == len(dst)-1 {
			if strings.IndexByte(rec, '\t') >= 0 {
				return false
			}
			dst[i] = rec
			return true
		}
		j := strings.IndexByte(rec, '\t')
		if j < 0 {
			return false
		}
		dst[i], rec = rec[:j], rec[j+1:]
	}
	return len(dst) > 0
}

// decodeEvent parses one event record written by the prelude's event helper.
func decodeEvent(rec string) (store.Event, error) {
	f := strings.Split(rec, "\t")
	if len(f) != 11 {
		return store.Event{}, fmt.Errorf("redis: corrupt event record (%d fields)", len(f))
	}
	return store.Event{
		Seq:        uint64(num(f[0])),
		Kind:       store.EventKind(num(f[1])),
		Time:       parseNanos(f[2]),
		Mailbox:    f[3],
		OldName:    f[4],
		MailboxID:  uint64(num(f[5])),
		UID:        uint32(num(f[6])),
		MessageID:  store.MessageID(num(f[7])),
		Flags:      splitFlags(f[8]),
		ModSeq:     uint64(num(f[9])),
		Subscribed: f[10] == "1",
	}, nil
}
