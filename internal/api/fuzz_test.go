package api

import (
	"bytes"
	"testing"
)

// Each fuzz target checks that a decoder never panics and that an accepted
// request satisfies the invariants the handlers rely on.

func FuzzDecodeMailboxRequest(f *testing.F) {
	for _, s := range []string{`{"name":"INBOX"}`, `{"name":""}`, `{"name":"a/b"}`, `{`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := DecodeMailboxRequest(b); err == nil && checkMailbox("", r.Name) != nil {
			t.Fatalf("accepted invalid name %q", r.Name)
		}
	})
}

func FuzzDecodeRenameRequest(f *testing.F) {
	f.Add([]byte(`{"old":"a","new":"b"}`))
	f.Add([]byte(`{"old":"a"}`))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = DecodeRenameRequest(b) })
}

func FuzzDecodeSubscribeRequest(f *testing.F) {
	f.Add([]byte(`{"name":"a","subscribed":true}`))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = DecodeSubscribeRequest(b) })
}

func FuzzDecodeListMessagesRequest(f *testing.F) {
	f.Add([]byte(`{"mailbox":"INBOX","since_uid":1}`))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = DecodeListMessagesRequest(b) })
}

func FuzzDecodeHeaderBlobsRequest(f *testing.F) {
	f.Add([]byte(`{"ids":[1,2,3]}`))
	f.Add([]byte(`{"ids":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := DecodeHeaderBlobsRequest(b); err == nil && (len(r.IDs) == 0 || len(r.IDs) > MaxBatch) {
			t.Fatalf("accepted batch of %d", len(r.IDs))
		}
	})
}

func FuzzDecodeFlagsRequest(f *testing.F) {
	f.Add([]byte(`{"mailbox":"INBOX","uids":[1],"op":1,"flags":["\\Seen"]}`))
	f.Add([]byte(`{"mailbox":"INBOX","uids":[0],"op":9,"flags":["a b"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := DecodeFlagsRequest(b); err == nil && checkFlags(r.Flags) != nil {
			t.Fatalf("accepted bad flags %q", r.Flags)
		}
	})
}

func FuzzDecodeCopyRequest(f *testing.F) {
	f.Add([]byte(`{"src":"INBOX","uids":[1,2],"dst":"Archive"}`))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = DecodeCopyRequest(b) })
}

func FuzzDecodeExpungeRequest(f *testing.F) {
	f.Add([]byte(`{"mailbox":"INBOX","uids":null}`))
	f.Add([]byte(`{"mailbox":"INBOX","uids":[3]}`))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = DecodeExpungeRequest(b) })
}

func FuzzDecodeAppendRequest(f *testing.F) {
	f.Add(frames([]byte(`{"mailbox":"Drafts","flags":["\\Draft"],"size":5}`), []byte("h"), []byte("b")))
	f.Add(frames([]byte(`{"mailbox":"x"}`), []byte("h")))
	f.Add([]byte{0, 0, 0, 9, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, m, err := DecodeAppendRequest(b); err == nil && (len(m.HeaderBlob) == 0 || len(m.BodyBlob) == 0 || m.Size < 0) {
			t.Fatalf("accepted bad message %+v", m)
		}
	})
}

func FuzzDecodeDeliverRequest(f *testing.F) {
	f.Add(frames([]byte(`{"recipients":[{"address":"bob@example.org","size":1}]}`), []byte("h"), []byte("b")))
	f.Add(frames([]byte(`{"recipients":[]}`)))
	f.Add(frames([]byte(`{"recipients":[{"address":"bob@example.org","size":1}],"copy":{"mailbox":"Sent","flags":["\\Seen"],"size":1}}`),
		[]byte("h"), []byte("b"), []byte("ch"), []byte("cb")))
	f.Add(frames([]byte(`{"recipients":[{"address":"a@example.org","size":1},{"address":"b@example.org","size":1,"blobs_of":1}],`+
		`"copy":{"mailbox":"Sent","size":1},"copy_blobs_of":1}`), []byte("h"), []byte("b")))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := DecodeDeliverRequest(b)
		if err == nil {
			for _, d := range req.Deliveries {
				if CheckAddress(d.Recipient) != nil || len(d.HeaderBlob) == 0 || len(d.BodyBlob) == 0 {
					t.Fatalf("accepted bad delivery %+v", d)
				}
			}
			if c := req.Copy; c != nil && (len(c.HeaderBlob) == 0 || len(c.BodyBlob) == 0 || checkMailbox("mailbox", req.CopyMailbox) != nil) {
				t.Fatalf("accepted bad copy %+v", c)
			}
		}
	})
}

func FuzzDecodeSubmitRequest(f *testing.F) {
	f.Add(frames([]byte(`{"from":"a@example.org","recipients":["x@other.net"]}`), []byte("payload")))
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, p, err := DecodeSubmitRequest(b); err == nil && (len(p) == 0 || CheckAddress(m.From) != nil) {
			t.Fatal("accepted bad submission")
		}
	})
}

func FuzzDecodeFrames(f *testing.F) {
	f.Add(frames([]byte("a"), []byte("bc")), 2)
	f.Add([]byte{0, 0, 0, 200}, 1)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if n < 0 || n > 50 {
			return
		}
		got, err := DecodeFrames(bytes.NewReader(b), n, 1<<16)
		if err == nil && len(got) != n {
			t.Fatalf("got %d frames, want %d", len(got), n)
		}
	})
}
