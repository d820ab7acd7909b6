package imapd

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"

	"smessenger/pgp"
)

// seedMessages are the fixtures plus every .eml under testdata.
func seedMessages(f *testing.F) [][]byte {
	seeds := [][]byte{[]byte(simpleMsg), []byte(multipartMsg),
		[]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n--b--\r\n"),
		[]byte("Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\nx"), {}}
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "*", "*.eml"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			seeds = append(seeds, b)
		}
	}
	return seeds
}

// checkStructure asserts what imapserver's writer relies on: extension data
// everywhere, at least one child per multipart, a body inside message/rfc822.
func checkStructure(t *testing.T, bs imap.BodyStructure, depth int) {
	if depth > maxDepth+2 {
		t.Fatalf("structure deeper than %d", maxDepth)
	}
	switch b := bs.(type) {
	case *imap.BodyStructureMultiPart:
		if b.Extended == nil || len(b.Children) == 0 {
			t.Fatalf("multipart without extension data or children: %+v", b)
		}
		for _, c := range b.Children {
			checkStructure(t, c, depth+1)
		}
	case *imap.BodyStructureSinglePart:
		if b.Extended == nil || b.Type == "" || b.Subtype == "" {
			t.Fatalf("single part incomplete: %+v", b)
		}
		if b.MessageRFC822 != nil {
			if b.MessageRFC822.BodyStructure == nil {
				t.Fatal("message/rfc822 without body")
			}
			checkStructure(t, b.MessageRFC822.BodyStructure, depth+1)
		}
	default:
		t.Fatalf("unknown body structure %T", bs)
	}
}

// FuzzConvertSummary feeds arbitrary messages through the summary (as the
// bridge caches it) and the conversion to BODYSTRUCTURE/ENVELOPE, and a
// hand-built deep tree from the fuzz bytes.
func FuzzConvertSummary(f *testing.F) {
	for _, s := range seedMessages(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		sum := summarize(raw)
		checkStructure(t, bodyStructureOf(sum, nil), 0)
		_ = envelopeOf(sum, nil)
		checkStructure(t, bodyStructureOf(nil, raw), 0)
		// A tree shaped by the bytes: each byte picks a type and nesting.
		root := pgp.Part{Type: "multipart"}
		cur := &root
		for _, b := range raw[:min(len(raw), 200)] {
			switch b % 4 {
			case 0:
				cur.Children = append(cur.Children, pgp.Part{Type: "multipart", Size: -int64(b)})
				cur = &cur.Children[len(cur.Children)-1]
			case 1:
				inner := pgp.Part{Type: "message", Subtype: "rfc822"}
				cur.Children = append(cur.Children, pgp.Part{Type: "message", Subtype: "rfc822", Inner: &inner, Lines: -1})
			case 2:
				cur.Children = append(cur.Children, pgp.Part{Type: string(raw[:min(len(raw), int(b%7))])})
			default:
				cur.Children = append(cur.Children, pgp.Part{Type: "message", Subtype: "rfc822"})
			}
		}
		checkStructure(t, convertPart(&root, 0), 0)
	})
}

// FuzzSearchMatcher runs the matcher over arbitrary messages and needles and
// checks containsFold against a plain reference for ASCII input.
func FuzzSearchMatcher(f *testing.F) {
	for _, s := range seedMessages(f) {
		f.Add(s, "usual")
		f.Add(s, "CAFÉ")
	}
	f.Add([]byte("Subject: x\r\n\r\naaaaAAAab"), "AAB")
	f.Fuzz(func(t *testing.T, raw []byte, needle string) {
		c := &candidate{seq: 1, msg: msgMeta{UID: 1, Size: int64(len(raw))}, sum: summarize(raw)}
		m := &matcher{body: func(uint32) ([]byte, error) { return raw, nil }}
		cr := &imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{
			{Text: []string{needle}},
			{Not: []imap.SearchCriteria{{Body: []string{needle}, Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: needle}}}}},
		}}}
		m.match(c, cr)
		if isASCII(needle) && isASCII(string(raw)) {
			want := strings.Contains(strings.ToLower(string(raw)), strings.ToLower(needle))
			if got := containsFold(raw, needle); got != want {
				t.Fatalf("containsFold(%q, %q) = %v, want %v", raw, needle, got, want)
			}
		}
		if needle != "" && !bytes.Contains(raw, []byte(needle)) && containsFold(raw, needle) && isASCII(needle) &&
			!strings.Contains(strings.ToLower(string(raw)), strings.ToLower(needle)) {
			t.Fatal("containsFold matched what is not there")
		}
	})
}

// FuzzHierarchyNames checks the name arithmetic of LIST's missing parents
// and of RENAME's re-keying on arbitrary names: parents are proper
// prefixes cut at a delimiter, outermost first; a rename moves a name and
// its children only, and renaming back restores it.
func FuzzHierarchyNames(f *testing.F) {
	for _, s := range [][3]string{{"a/b/c", "a", "x"}, {"a/b", "a/b", "Done"}, {"older", "old", "new"},
		{"//x//", "/", "y"}, {"INBOX/Sub", "INBOX", "Other"}, {"", "", ""}, {"é/ü", "é", "e"}} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, name, oldName, newName string) {
		prev := ""
		for _, p := range ancestors(name) {
			if p == "" || len(p) <= len(prev) || !strings.HasPrefix(name, p+"/") || strings.HasSuffix(p, "/") {
				t.Fatalf("ancestors(%q) gave %q after %q", name, p, prev)
			}
			prev = p
		}
		to, ok := renamedName(name, oldName, newName)
		if !ok {
			if to != name {
				t.Fatalf("renamedName(%q) changed an unrelated name to %q", name, to)
			}
			return
		}
		if name != oldName && !strings.HasPrefix(name, oldName+"/") {
			t.Fatalf("renamedName moved %q, which is not under %q", name, oldName)
		}
		if back, ok := renamedName(to, newName, oldName); !ok || back != name {
			t.Fatalf("renaming %q back gave %q", to, back)
		}
	})
}
