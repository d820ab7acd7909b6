package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"smessenger/internal/store"
)

func frames(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = appendFrame(b, p)
	}
	return b
}

func TestDecodeControlRequests(t *testing.T) {
	long := strings.Repeat("a", MaxMailboxName+1)
	cases := []struct {
		name string
		fn   func([]byte) error
		body string
		ok   bool
	}{
		{"mailbox ok", wrap(DecodeMailboxRequest), `{"name":"Work/2024"}`, true},
		{"mailbox empty", wrap(DecodeMailboxRequest), `{"name":""}`, false},
		{"mailbox too long", wrap(DecodeMailboxRequest), `{"name":"` + long + `"}`, false},
		{"mailbox control char", wrap(DecodeMailboxRequest), `{"name":"a\u0000b"}`, false},
		{"mailbox empty level", wrap(DecodeMailboxRequest), `{"name":"a//b"}`, false},
		{"mailbox unknown field", wrap(DecodeMailboxRequest), `{"name":"x","account":"bob"}`, false},
		{"mailbox trailing", wrap(DecodeMailboxRequest), `{"name":"x"}{}`, false},
		{"mailbox not json", wrap(DecodeMailboxRequest), `name=x`, false},
		{"rename ok", wrap(DecodeRenameRequest), `{"old":"a","new":"b"}`, true},
		{"rename missing new", wrap(DecodeRenameRequest), `{"old":"a"}`, false},
		{"subscribe ok", wrap(DecodeSubscribeRequest), `{"name":"a","subscribed":true}`, true},
		{"list ok", wrap(DecodeListMessagesRequest), `{"mailbox":"INBOX","since_uid":3}`, true},
		{"list negative uid", wrap(DecodeListMessagesRequest), `{"mailbox":"INBOX","since_uid":-1}`, false},
		{"headers ok", wrap(DecodeHeaderBlobsRequest), `{"ids":[1,2,3]}`, true},
		{"headers empty", wrap(DecodeHeaderBlobsRequest), `{"ids":[]}`, false},
		{"flags ok", wrap(DecodeFlagsRequest), `{"mailbox":"INBOX","uids":[1],"op":1,"flags":["\\Seen","$Label1"]}`, true},
		{"flags bad op", wrap(DecodeFlagsRequest), `{"mailbox":"INBOX","uids":[1],"op":7,"flags":[]}`, false},
		{"flags uid zero", wrap(DecodeFlagsRequest), `{"mailbox":"INBOX","uids":[0],"op":0,"flags":[]}`, false},
		{"flags bad atom", wrap(DecodeFlagsRequest), `{"mailbox":"INBOX","uids":[1],"op":0,"flags":["a b"]}`, false},
		{"flags inner backslash", wrap(DecodeFlagsRequest), `{"mailbox":"INBOX","uids":[1],"op":0,"flags":["a\\b"]}`, false},
		{"copy ok", wrap(DecodeCopyRequest), `{"src":"INBOX","uids":[1,2],"dst":"Archive"}`, true},
		{"copy no dst", wrap(DecodeCopyRequest), `{"src":"INBOX","uids":[1]}`, false},
		{"expunge null", wrap(DecodeExpungeRequest), `{"mailbox":"INBOX","uids":null}`, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.fn([]byte(c.body))
			if c.ok && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !c.ok {
				if err == nil {
					t.Fatal("accepted bad input")
				}
				if !errors.Is(err, store.ErrInvalid) {
					t.Fatalf("error %v is not store.ErrInvalid", err)
				}
			}
		})
	}
}

func wrap[T any](f func([]byte) (T, error)) func([]byte) error {
	return func(b []byte) error { _, err := f(b); return err }
}

func TestDecodeHeaderBatchLimit(t *testing.T) {
	ids := make([]store.MessageID, MaxBatch+1)
	for i := range ids {
		ids[i] = store.MessageID(i + 1)
	}
	b, _ := json.Marshal(HeaderBlobsRequest{IDs: ids})
	if _, err := DecodeHeaderBlobsRequest(b); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("batch of %d accepted: %v", len(ids), err)
	}
	b, _ = json.Marshal(HeaderBlobsRequest{IDs: ids[:MaxBatch]})
	if _, err := DecodeHeaderBlobsRequest(b); err != nil {
		t.Fatalf("batch of %d refused: %v", MaxBatch, err)
	}
}

func TestDecodeAppend(t *testing.T) {
	meta, _ := json.Marshal(AppendMeta{Mailbox: "Drafts", Flags: []string{`\Draft`}, Size: 42, InternalDate: time.Unix(1e9, 0)})
	mb, msg, err := DecodeAppendRequest(frames(meta, []byte("H"), []byte("BODY")))
	if err != nil {
		t.Fatal(err)
	}
	if mb != "Drafts" || string(msg.HeaderBlob) != "H" || string(msg.BodyBlob) != "BODY" || msg.Size != 42 || msg.Flags[0] != `\Draft` {
		t.Fatalf("decoded %q %+v", mb, msg)
	}
	bad := map[string][]byte{
		"two frames":     frames(meta, []byte("H")),
		"four frames":    frames(meta, []byte("H"), []byte("B"), []byte("x")),
		"empty header":   frames(meta, nil, []byte("B")),
		"truncated":      frames(meta, []byte("H"), []byte("BODY"))[:len(meta)+10],
		"huge length":    append([]byte{0xff, 0xff, 0xff, 0xff}, meta...),
		"short header":   {0, 0},
		"bad meta":       frames([]byte("{"), []byte("H"), []byte("B")),
		"negative size":  frames([]byte(`{"mailbox":"INBOX","size":-1}`), []byte("H"), []byte("B")),
		"bad mailbox":    frames([]byte(`{"mailbox":""}`), []byte("H"), []byte("B")),
		"unknown fields": frames([]byte(`{"mailbox":"INBOX","account":"x"}`), []byte("H"), []byte("B")),
	}
	for name, b := range bad {
		if _, _, err := DecodeAppendRequest(b); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: got %v, want store.ErrInvalid", name, err)
		}
	}
}

func TestDecodeDeliver(t *testing.T) {
	meta := []byte(`{"recipients":[{"address":"bob@example.org","size":10},{"address":"carol@example.org","size":20}]}`)
	req, err := DecodeDeliverRequest(frames(meta, []byte("h1"), []byte("b1"), []byte("h2"), []byte("b2")))
	if err != nil {
		t.Fatal(err)
	}
	ds := req.Deliveries
	if req.Copy != nil {
		t.Fatal("a copy decoded from a call without one")
	}
	if len(ds) != 2 || ds[1].Recipient != "carol@example.org" || string(ds[1].BodyBlob) != "b2" || ds[0].Size != 10 {
		t.Fatalf("decoded %+v", ds)
	}
	bad := map[string][]byte{
		"missing blobs": frames(meta, []byte("h1"), []byte("b1")),
		"no recipients": frames([]byte(`{"recipients":[]}`)),
		"bad address":   frames([]byte(`{"recipients":[{"address":"bob","size":1}]}`), []byte("h"), []byte("b")),
		"empty":         nil,
		"copy without its blobs": frames([]byte(`{"recipients":[{"address":"bob@example.org","size":1}],"copy":{"mailbox":"Sent","size":1}}`),
			[]byte("h"), []byte("b")),
		"copy to a bad mailbox": frames([]byte(`{"recipients":[{"address":"bob@example.org","size":1}],"copy":{"mailbox":"","size":1}}`),
			[]byte("h"), []byte("b"), []byte("ch"), []byte("cb")),
		"blobs of itself": frames([]byte(`{"recipients":[{"address":"bob@example.org","size":1,"blobs_of":1}]}`)),
		"blobs of a later recipient": frames([]byte(`{"recipients":[{"address":"bob@example.org","size":1,"blobs_of":2},`+
			`{"address":"carol@example.org","size":1}]}`), []byte("h"), []byte("b")),
		"blobs of a recipient without its own": frames([]byte(`{"recipients":[{"address":"a@example.org","size":1},`+
			`{"address":"b@example.org","size":1,"blobs_of":1},{"address":"c@example.org","size":1,"blobs_of":2}]}`), []byte("h"), []byte("b")),
		"negative blobs_of": frames([]byte(`{"recipients":[{"address":"a@example.org","size":1},{"address":"b@example.org","size":1,"blobs_of":-1}]}`),
			[]byte("h"), []byte("b")),
		"shared blobs sent anyway": frames([]byte(`{"recipients":[{"address":"a@example.org","size":1},{"address":"b@example.org","size":1,"blobs_of":1}]}`),
			[]byte("h"), []byte("b"), []byte("h"), []byte("b")),
		"copy_blobs_of without a copy": frames([]byte(`{"recipients":[{"address":"a@example.org","size":1}],"copy_blobs_of":1}`),
			[]byte("h"), []byte("b")),
		"copy_blobs_of out of range": frames([]byte(`{"recipients":[{"address":"a@example.org","size":1}],"copy":{"mailbox":"Sent","size":1},"copy_blobs_of":2}`),
			[]byte("h"), []byte("b")),
	}
	// Shared blobs: sent once, decoded for every recipient and the copy.
	shared := frames([]byte(`{"recipients":[{"address":"a@example.org","size":3},{"address":"b@example.org","size":3,"blobs_of":1},`+
		`{"address":"c@example.org","size":4}],"copy":{"mailbox":"Sent","size":3},"copy_blobs_of":1}`),
		[]byte("h1"), []byte("b1"), []byte("h3"), []byte("b3"))
	if req, err := DecodeDeliverRequest(shared); err != nil || len(req.Deliveries) != 3 || req.Copy == nil ||
		string(req.Deliveries[1].BodyBlob) != "b1" || string(req.Deliveries[1].HeaderBlob) != "h1" ||
		string(req.Deliveries[2].BodyBlob) != "b3" || string(req.Copy.BodyBlob) != "b1" || string(req.Copy.HeaderBlob) != "h1" {
		t.Fatalf("shared blobs decoded as %+v, %v", req, err)
	}
	// The encoder sends equal blobs once, and what it sends decodes back.
	ds = []Delivery{{Recipient: "a@example.org", Size: 3, HeaderBlob: []byte("hx"), BodyBlob: []byte("bx")},
		{Recipient: "b@example.org", Size: 3, HeaderBlob: []byte("hx"), BodyBlob: []byte("bx")},
		{Recipient: "c@example.org", Size: 3, HeaderBlob: []byte("hx"), BodyBlob: []byte("other")}}
	enc := deliverBody(ds, "Sent", &store.NewMessage{Size: 3, HeaderBlob: []byte("hx"), BodyBlob: []byte("bx")})
	if n := bytes.Count(enc, []byte("bx")); n != 1 {
		t.Fatalf("encoded body carries the shared blob %d times, want once", n)
	}
	if req, err := DecodeDeliverRequest(enc); err != nil || string(req.Deliveries[1].BodyBlob) != "bx" ||
		string(req.Deliveries[2].BodyBlob) != "other" || string(req.Copy.BodyBlob) != "bx" {
		t.Fatalf("encoded shared call decoded as %+v, %v", req, err)
	}
	withCopy := frames([]byte(`{"recipients":[{"address":"bob@example.org","size":1}],"copy":{"mailbox":"Sent","flags":["\\Seen"],"size":7}}`),
		[]byte("h"), []byte("b"), []byte("ch"), []byte("cb"))
	if req, err := DecodeDeliverRequest(withCopy); err != nil || req.Copy == nil || req.CopyMailbox != "Sent" ||
		string(req.Copy.BodyBlob) != "cb" || req.Copy.Size != 7 || len(req.Deliveries) != 1 {
		t.Fatalf("deliver with copy decoded as %+v, %v", req, err)
	}
	for name, b := range bad {
		if _, err := DecodeDeliverRequest(b); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func TestDecodeSubmit(t *testing.T) {
	m, p, err := DecodeSubmitRequest(frames([]byte(`{"from":"a@example.org","recipients":["x@other.net"]}`), []byte("payload")))
	if err != nil || m.From != "a@example.org" || string(p) != "payload" {
		t.Fatalf("got %+v %q %v", m, p, err)
	}
	for name, b := range map[string][]byte{
		"no rcpt":       frames([]byte(`{"from":"a@example.org","recipients":[]}`), []byte("p")),
		"bad from":      frames([]byte(`{"from":"a","recipients":["x@y"]}`), []byte("p")),
		"empty payload": frames([]byte(`{"from":"a@example.org","recipients":["x@y.z"]}`), nil),
		"header inject": frames([]byte(`{"from":"a@example.org","recipients":["x@y.z\r\nBcc: q@r"]}`), []byte("p")),
	} {
		if _, _, err := DecodeSubmitRequest(b); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func TestDecodeFramesClient(t *testing.T) {
	b := frames([]byte("one"), nil, []byte("three"))
	got, err := DecodeFrames(bytes.NewReader(b), 3, 10)
	if err != nil || len(got) != 3 || string(got[2]) != "three" || len(got[1]) != 0 {
		t.Fatalf("got %q %v", got, err)
	}
	if _, err := DecodeFrames(bytes.NewReader(b), 4, 10); !errors.Is(err, ErrProtocol) {
		t.Fatalf("missing frame: %v", err)
	}
	if _, err := DecodeFrames(bytes.NewReader(b), 2, 10); !errors.Is(err, ErrProtocol) {
		t.Fatalf("trailing frame: %v", err)
	}
	if _, err := DecodeFrames(bytes.NewReader(b), 3, 4); !errors.Is(err, ErrProtocol) {
		t.Fatalf("oversized frame: %v", err)
	}
}

func TestErrorMapping(t *testing.T) {
	sentinels := []error{
		store.ErrMailboxNotFound, store.ErrMailboxExists, store.ErrMailboxProtected,
		store.ErrMessageNotFound, store.ErrNotFound, store.ErrQuotaExceeded, store.ErrInvalid,
		store.ErrTokenInvalid, ErrRateLimited, ErrUnauthorized,
	}
	for _, s := range sentinels {
		wrapped := errors.Join(errors.New("secret internal detail /var/lib/x"), s)
		e, internal := toWire(wrapped)
		if internal {
			t.Errorf("%v mapped to internal", s)
		}
		if strings.Contains(e.Message, "secret") {
			t.Errorf("internal text leaked: %q", e.Message)
		}
		body, _ := json.Marshal(e)
		back := decodeError(e.Status, body)
		if !errors.Is(back, s) {
			t.Errorf("%v did not survive the wire (code %s)", s, e.Code)
		}
	}
	e, internal := toWire(io.ErrUnexpectedEOF)
	if !internal || e.Status != http.StatusInternalServerError || e.Message != "internal server error" {
		t.Fatalf("unexpected error mapped to %+v", e)
	}
	ur := decodeError(404, []byte(`{"code":"unknown_recipient","message":"unknown recipient x@y"}`))
	if !errors.Is(ur, ErrUnknownRecipient) || !errors.Is(ur, store.ErrNotFound) {
		t.Fatal("unknown_recipient does not match its sentinels")
	}
	if !errors.Is(decodeError(429, []byte("garbage")), ErrRateLimited) {
		t.Fatal("status fallback failed")
	}
}

func TestBucketLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newBucketLimiter(2, 3, func() time.Time { return now })
	for i := 0; i < 3; i++ {
		if !l.allow("a") {
			t.Fatalf("call %d refused within burst", i)
		}
	}
	if l.allow("a") {
		t.Fatal("burst exceeded but allowed")
	}
	if !l.allow("b") {
		t.Fatal("other account limited")
	}
	now = now.Add(time.Second)
	first, second, third := l.allow("a"), l.allow("a"), l.allow("a")
	if !first || !second || third {
		t.Fatal("refill is not 2 per second")
	}
}
