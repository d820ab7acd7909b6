package imapd

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// TestFetchSections checks every section and partial form against the raw
// message, cut independently with go-imap's reference helpers or by hand.
func TestFetchSections(t *testing.T) {
	env := newTestEnv(t, nil)
	uid := env.view.deliver("INBOX", multipartMsg)
	raw := []byte(strings.ReplaceAll(multipartMsg, "\n", "\r\n"))
	c := env.client(nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	ref := func(bs *imap.FetchItemBodySection) []byte {
		return imapserver.ExtractBodySection(bytes.NewReader(raw), bs)
	}
	cases := []struct {
		name string
		bs   *imap.FetchItemBodySection
		want []byte
	}{
		{"BODY[]", &imap.FetchItemBodySection{Peek: true}, raw},
		{"BODY[]<5.20>", &imap.FetchItemBodySection{Peek: true, Partial: &imap.SectionPartial{Offset: 5, Size: 20}}, raw[5:25]},
		{"BODY[]<beyond>", &imap.FetchItemBodySection{Peek: true, Partial: &imap.SectionPartial{Offset: int64(len(raw)) + 10, Size: 5}}, nil},
		{"BODY[TEXT]", &imap.FetchItemBodySection{Peek: true, Specifier: imap.PartSpecifierText}, raw[headerEnd(raw):]},
		{"BODY[HEADER.FIELDS.NOT (Subject)]", &imap.FetchItemBodySection{Peek: true, Specifier: imap.PartSpecifierHeader, HeaderFieldsNot: []string{"Subject"}}, nil},
		{"BODY[1]", &imap.FetchItemBodySection{Peek: true, Part: []int{1}}, []byte("The numbers are in the attachment. Caf=C3=A9 secretword.")},
		{"BODY[1.MIME]", &imap.FetchItemBodySection{Peek: true, Part: []int{1}, Specifier: imap.PartSpecifierMIME}, nil},
		{"BODY[2]<0.10>", &imap.FetchItemBodySection{Peek: true, Part: []int{2}, Partial: &imap.SectionPartial{Offset: 0, Size: 10}}, []byte("JVBERi0xLj")},
		{"BODY[3.HEADER]", &imap.FetchItemBodySection{Peek: true, Part: []int{3}, Specifier: imap.PartSpecifierHeader}, []byte("From: Eve <eve@example.test>\r\nSubject: Inner message\r\n\r\n")},
		{"BODY[3.TEXT]", &imap.FetchItemBodySection{Peek: true, Part: []int{3}, Specifier: imap.PartSpecifierText}, []byte("Inner body text.")},
		{"BODY[9]", &imap.FetchItemBodySection{Peek: true, Part: []int{9}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			if want == nil {
				want = ref(tc.bs)
			}
			m := collectBody(t, c, imap.UID(uid), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{tc.bs}})
			got := m.FindBodySection(tc.bs)
			if !bytes.Equal(got, want) {
				t.Errorf("got %q\nwant %q", got, want)
			}
		})
	}
	t.Run("BINARY", func(t *testing.T) {
		bs := &imap.FetchItemBinarySection{Part: []int{1}, Peek: true}
		m := collectBody(t, c, imap.UID(uid), &imap.FetchOptions{BinarySection: []*imap.FetchItemBinarySection{bs},
			BinarySectionSize: []*imap.FetchItemBinarySectionSize{{Part: []int{1}}}})
		got := m.FindBinarySection(bs)
		if want := "The numbers are in the attachment. Café secretword."; string(got) != want {
			t.Errorf("BINARY[1] = %q, want %q", got, want)
		}
		if len(m.BinarySectionSize) != 1 || m.BinarySectionSize[0].Size != uint32(len(got)) {
			t.Errorf("BINARY.SIZE[1] = %+v, want %d", m.BinarySectionSize, len(got))
		}
	})
	t.Run("non-PEEK sets Seen", func(t *testing.T) {
		bs := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierText}
		m := collectBody(t, c, imap.UID(uid), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{bs}})
		if !slices.Contains(m.Flags, imap.FlagSeen) {
			t.Errorf("FETCH BODY[TEXT] answered flags %v without \\Seen", m.Flags)
		}
		msgs, _ := env.view.Messages(t.Context(), "INBOX")
		if !hasFlag(msgs[0].Flags, `\Seen`) {
			t.Error("\\Seen not stored in the view")
		}
	})
}

// TestFetchByBodyOncePerMessage checks that several body items of one
// message cost one View.Body call.
func TestFetchByBodyOncePerMessage(t *testing.T) {
	env := newTestEnv(t, nil)
	for range 3 {
		env.view.deliver("INBOX", multipartMsg)
	}
	c := env.client(nil)
	if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	env.view.bodyCalls.Store(0)
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2, 3), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{
		{Part: []int{1}}, {Part: []int{2}}, {Specifier: imap.PartSpecifierText}}}).Collect()
	if err != nil || len(msgs) != 3 {
		t.Fatalf("fetch: %v %d", err, len(msgs))
	}
	if n := env.view.bodyCalls.Load(); n != 3 {
		t.Errorf("View.Body called %d times for 3 messages", n)
	}
	// EXAMINE is read-only: a non-PEEK fetch must not set \Seen.
	got, _ := env.view.Messages(t.Context(), "INBOX")
	if hasFlag(got[0].Flags, `\Seen`) {
		t.Error("FETCH in an EXAMINEd mailbox set \\Seen")
	}
}
