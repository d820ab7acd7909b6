package redis

import (
	"strings"
	"testing"
)

// FuzzParseURL: any configured URL yields options or an error, never a panic,
// and an accepted URL is exactly one of the two modes.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"redis://127.0.0.1:6379/0", "unix:///tmp/r.sock", "redis+cluster://a:1,b:2",
		"a:1,b:2", "", "http://x", "redis://h:1/x/y", "rediss://u:p@h:1/3", "a:,b", "redis+cluster://"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		single, cluster, err := parseURL(s)
		if err == nil && (single == nil) == (cluster == nil) {
			t.Fatalf("parseURL(%q): single=%v cluster=%v", s, single, cluster)
		}
	})
}

// FuzzDecodeEvent: stored event records are parsed without panics, and a
// record that parses keeps its mailbox name.
func FuzzDecodeEvent(f *testing.F) {
	f.Add("1\t1\t1700000000000000000\tINBOX\t\t1\t1\t1\t\\Seen\t1\t0")
	f.Add("7\t5\t0\tNew\tOld\t3\t0\t0\t\t0\t0")
	f.Add("")
	f.Add("\t\t\t")
	f.Fuzz(func(t *testing.T, rec string) {
		ev, err := decodeEvent(rec)
		if err == nil && ev.Mailbox != strings.Split(rec, "\t")[3] {
			t.Fatalf("mailbox %q lost in %q", ev.Mailbox, rec)
		}
	})
}

// FuzzDecodeMeta: packed metadata records never panic and flags come out
// sorted and unique.
func FuzzDecodeMeta(f *testing.F) {
	f.Add("1\t1\t\\Seen foo\t1700000000000000000\t100\t3\t10\t20\t1")
	f.Add("1\t2\t\t0\t0\t0\t0\t0\t1")
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, rec string) {
		for _, m := range decodeMeta([]string{rec}) {
			for i := 1; i < len(m.Flags); i++ {
				if m.Flags[i] <= m.Flags[i-1] {
					t.Fatalf("flags %q not sorted/unique", m.Flags)
				}
			}
		}
	})
}

// FuzzNames: caller-supplied names, addresses and flags are either rejected
// or safe inside our tab- and space-separated records.
func FuzzNames(f *testing.F) {
	for _, s := range []string{"INBOX", "inbox/Sub", "a\tb", "", "/x", "x//y", "\\Seen", "$Label", "a b",
		"user@example.org", "@x", "x@", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := normMailbox(s); err == nil && strings.ContainsAny(n, "\t\r\n") {
			t.Fatalf("mailbox %q accepted with a control character", n)
		}
		if a, err := normAddress(s); err == nil && strings.ContainsAny(a, " \t\r\n") {
			t.Fatalf("address %q accepted with a separator", a)
		}
		if fl, err := normFlags([]string{s, s}); err == nil {
			if len(fl) != 1 || strings.ContainsAny(fl[0], " \t\r\n") {
				t.Fatalf("flags %q from %q", fl, s)
			}
		}
	})
}
