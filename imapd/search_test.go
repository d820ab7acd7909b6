package imapd

import (
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

func TestSearchCriteria(t *testing.T) {
	env := newTestEnv(t, nil)
	v := env.view
	v.deliver("INBOX", simpleMsg, `\Seen`)                         // 1
	v.deliver("INBOX", multipartMsg, `\Flagged`)                   // 2
	v.deliver("INBOX", "Subject: tiny\nFrom: x@y.test\n\nsmall\n") // 3
	v.deliver("INBOX", simpleMsg, `\Deleted`, "$Work")             // 4
	// Message 5 has an old internal date.
	old := time.Date(2020, 1, 15, 23, 0, 0, 0, time.UTC)
	if _, _, err := v.Append(t.Context(), "INBOX", []byte("Subject: old\r\n\r\nancient\r\n"), nil, old); err != nil {
		t.Fatal(err)
	}
	c := env.client(nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	cases := []struct {
		name string
		cr   imap.SearchCriteria
		want []uint32
	}{
		{"ALL", imap.SearchCriteria{}, []uint32{1, 2, 3, 4, 5}},
		{"SEEN", imap.SearchCriteria{Flag: []imap.Flag{imap.FlagSeen}}, []uint32{1}},
		{"UNSEEN", imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, []uint32{2, 3, 4, 5}},
		{"KEYWORD $work (any case)", imap.SearchCriteria{Flag: []imap.Flag{"$work"}}, []uint32{4}},
		{"FROM bob", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: "BOB"}}}, []uint32{1, 4}},
		{"SUBJECT encoded word", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "résumé"}}}, []uint32{2}},
		{"HEADER In-Reply-To exists", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "In-Reply-To"}}}, []uint32{2}},
		{"CC dave", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Cc", Value: "dave"}}}, []uint32{2}},
		{"BODY usual (case)", imap.SearchCriteria{Body: []string{"usual place"}}, []uint32{1, 4}},
		{"BODY not in header", imap.SearchCriteria{Body: []string{"Lunch"}}, nil},
		{"TEXT in header", imap.SearchCriteria{Text: []string{"lunch"}}, []uint32{1, 2, 4}},
		{"BODY quoted-printable decoded", imap.SearchCriteria{Body: []string{"café"}}, []uint32{2}},
		{"LARGER", imap.SearchCriteria{Larger: 500}, []uint32{2}},
		{"SMALLER", imap.SearchCriteria{Smaller: 60}, []uint32{3, 5}},
		{"BEFORE 2021", imap.SearchCriteria{Before: day(2021, 1, 1)}, []uint32{5}},
		{"ON 15-Jan-2020", imap.SearchCriteria{Since: day(2020, 1, 15), Before: day(2020, 1, 16)}, []uint32{5}},
		{"SENTBEFORE 2006-01-03", imap.SearchCriteria{SentBefore: day(2006, 1, 3)}, []uint32{1, 4}},
		{"SENTSINCE 2006-01-03", imap.SearchCriteria{SentSince: day(2006, 1, 3), SentBefore: day(2007, 1, 1)}, []uint32{2}},
		{"NOT DELETED", imap.SearchCriteria{Not: []imap.SearchCriteria{{Flag: []imap.Flag{imap.FlagDeleted}}}}, []uint32{1, 2, 3, 5}},
		{"OR SEEN FLAGGED", imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{{Flag: []imap.Flag{imap.FlagSeen}}, {Flag: []imap.Flag{imap.FlagFlagged}}}}}, []uint32{1, 2}},
		{"seq 2:*", imap.SearchCriteria{SeqNum: []imap.SeqSet{{{Start: 2, Stop: 0}}}}, []uint32{2, 3, 4, 5}},
		{"UID 4:*", imap.SearchCriteria{UID: []imap.UIDSet{{{Start: 4, Stop: 0}}}}, []uint32{4, 5}},
		{"RECENT never", imap.SearchCriteria{Flag: []imap.Flag{`\Recent`}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data, err := c.UIDSearch(&tc.cr, nil).Wait()
			if err != nil {
				t.Fatal(err)
			}
			var got []uint32
			for _, u := range data.AllUIDs() {
				got = append(got, uint32(u))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	// ESEARCH: MIN, MAX, COUNT.
	data, err := c.Search(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, &imap.SearchOptions{ReturnMin: true, ReturnMax: true, ReturnCount: true}).Wait()
	if err != nil || data.Min != 2 || data.Max != 5 || data.Count != 4 {
		t.Errorf("ESEARCH: %+v %v", data, err)
	}
}
