package api

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"smessenger/internal/store"
)

// Wire limits that are part of the protocol (the adjustable ones are in Limits).
const (
	MaxBatch         = 500  // header blobs per HeaderBlobs call
	MaxRecipients    = 100  // recipients per Deliver or Submit call
	MaxFlags         = 64   // flags per message or StoreFlags call
	MaxUIDs          = 1e5  // UIDs per StoreFlags/Copy/Move/Expunge call
	MaxMailboxName   = 1024 // bytes
	MaxFlagLen       = 128  // bytes
	MaxAddressLen    = 254  // bytes, RFC 5321 section 4.5.3.1.3
	MaxEventsPerCall = 1000 // events per EventsSince call
)

// Request bodies of the JSON control calls.
type (
	// MailboxRequest names one mailbox (create, delete).
	MailboxRequest struct {
		Name string `json:"name"`
	}
	// RenameRequest renames a mailbox.
	RenameRequest struct {
		Old string `json:"old"`
		New string `json:"new"`
	}
	// SubscribeRequest sets a mailbox's subscription.
	SubscribeRequest struct {
		Name       string `json:"name"`
		Subscribed bool   `json:"subscribed"`
	}
	// ListMessagesRequest lists a mailbox's messages from SinceUID on.
	ListMessagesRequest struct {
		Mailbox  string `json:"mailbox"`
		SinceUID uint32 `json:"since_uid"`
	}
	// HeaderBlobsRequest asks for up to MaxBatch header blobs.
	HeaderBlobsRequest struct {
		IDs []store.MessageID `json:"ids"`
	}
	// FlagsRequest changes flags of some UIDs.
	FlagsRequest struct {
		Mailbox string       `json:"mailbox"`
		UIDs    []uint32     `json:"uids"`
		Op      store.FlagOp `json:"op"`
		Flags   []string     `json:"flags"`
	}
	// CopyRequest copies or moves UIDs from Src to Dst.
	CopyRequest struct {
		Src  string   `json:"src"`
		UIDs []uint32 `json:"uids"`
		Dst  string   `json:"dst"`
	}
	// ExpungeRequest removes UIDs, or every \Deleted message when UIDs is null.
	ExpungeRequest struct {
		Mailbox string   `json:"mailbox"`
		UIDs    []uint32 `json:"uids"`
	}
	// AppendMeta is the first frame of an append body; the header and body
	// blobs follow as frames two and three.
	AppendMeta struct {
		Mailbox      string    `json:"mailbox"`
		Flags        []string  `json:"flags"`
		InternalDate time.Time `json:"internal_date"`
		Size         int64     `json:"size"`
	}
	// DeliverMeta is the first frame of a deliver body; each recipient's
	// header and body blobs follow, two frames per recipient, in order.
	//
	// With Copy set, two more frames follow: the header and body blob of a
	// copy for the caller's own mailbox (the sender's Sent copy), appended
	// in the same round of commits as the deliveries.
	//
	// A recipient (or the copy, with CopyBlobsOf) whose blobs are those of
	// an earlier recipient names it (1-based) in BlobsOf and has no frames
	// of its own: recipients sealed together get the same bytes, which
	// need not cross the channel once per mailbox.
	DeliverMeta struct {
		Recipients  []DeliverRecipient `json:"recipients"`
		Copy        *AppendMeta        `json:"copy,omitempty"`
		CopyBlobsOf int                `json:"copy_blobs_of,omitempty"`
	}
	// DeliverResponse answers a deliver call that carried a copy: the
	// copy's metadata, or why it was not stored (the deliveries were).
	DeliverResponse struct {
		Copy      *store.MessageMeta `json:"copy,omitempty"`
		CopyError string             `json:"copy_error,omitempty"`
	}
	// DeliverRecipient is one entry of DeliverMeta.
	DeliverRecipient struct {
		Address string `json:"address"`
		Size    int64  `json:"size"`
		BlobsOf int    `json:"blobs_of,omitempty"`
	}
	// SubmitMeta is the first frame of a submit body; the payload follows.
	SubmitMeta struct {
		From       string   `json:"from"`
		Recipients []string `json:"recipients"`
	}
)

// Response bodies that are not store types.
type (
	// WhoAmI is the server's view of the caller. bridge.WhoAmI is meant to
	// be an alias of it.
	WhoAmI struct {
		Account   store.AccountID `json:"account"`
		Addresses []string        `json:"addresses"`
		DeviceID  string          `json:"device_id"`
	}
	// KeyResponse answers a directory lookup.
	KeyResponse struct {
		Key      []byte `json:"key"`
		Internal bool   `json:"internal"`
	}
	// SubmitResponse carries the queue id of a submitted message.
	SubmitResponse struct {
		ID string `json:"id"`
	}
)

// decodeJSON parses exactly one JSON value, rejecting unknown fields and
// trailing data, so that a typo in a client is an error, not a silent no-op.
func decodeJSON(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return invalidf("malformed JSON body")
	}
	if d.More() {
		return invalidf("trailing data after JSON body")
	}
	return nil
}

// checkMailbox validates a mailbox name as IMAP could carry it.
func checkMailbox(field, name string) error {
	if name == "" || len(name) > MaxMailboxName || !utf8.ValidString(name) {
		return invalidf("%s: mailbox name empty, too long or not UTF-8", field)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return invalidf("%s: control character in mailbox name", field)
		}
	}
	if strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.Contains(name, "//") {
		return invalidf("%s: empty hierarchy level in mailbox name", field)
	}
	return nil
}

// checkFlags validates IMAP flags (atoms, optionally with a leading backslash).
func checkFlags(flags []string) error {
	if len(flags) > MaxFlags {
		return invalidf("more than %d flags", MaxFlags)
	}
	for _, f := range flags {
		if f == "" || f == `\` || len(f) > MaxFlagLen {
			return invalidf("empty or too long flag")
		}
		for i := 0; i < len(f); i++ {
			c := f[i]
			if c <= 0x20 || c >= 0x7f || strings.IndexByte(`(){%*"]`, c) >= 0 || c == '\\' && i > 0 {
				return invalidf("flag %q is not an IMAP atom", f)
			}
		}
	}
	return nil
}

// checkUIDs bounds a UID list and rejects UID 0, which IMAP never assigns.
func checkUIDs(uids []uint32) error {
	if len(uids) > MaxUIDs {
		return invalidf("more than %d UIDs", int(MaxUIDs))
	}
	for _, u := range uids {
		if u == 0 {
			return invalidf("UID 0 is not valid")
		}
	}
	return nil
}

// CheckAddress validates a mail address enough to use it as a key: one @,
// non-empty parts, no spaces or control characters, bounded length.
func CheckAddress(a string) error {
	if len(a) == 0 || len(a) > MaxAddressLen || !utf8.ValidString(a) {
		return invalidf("address empty, too long or not UTF-8")
	}
	at := strings.LastIndexByte(a, '@')
	if at <= 0 || at == len(a)-1 || strings.Count(a, "@") != 1 {
		return invalidf("address %q is not local@domain", a)
	}
	for _, r := range a {
		if r <= 0x20 || r == 0x7f || r == '<' || r == '>' || r == ',' {
			return invalidf("address %q contains a forbidden character", a)
		}
	}
	return nil
}

// DecodeMailboxRequest parses and validates a create/delete body.
func DecodeMailboxRequest(b []byte) (MailboxRequest, error) {
	var r MailboxRequest
	if err := decodeJSON(b, &r); err != nil {
		return r, err
	}
	return r, checkMailbox("name", r.Name)
}

// DecodeRenameRequest parses and validates a rename body.
func DecodeRenameRequest(b []byte) (RenameRequest, error) {
	var r RenameRequest
	if err := decodeJSON(b, &r); err != nil {
		return r, err
	}
	if err := checkMailbox("old", r.Old); err != nil {
		return r, err
	}
	return r, checkMailbox("new", r.New)
}

// DecodeSubscribeRequest parses and validates a subscribe body.
func DecodeSubscribeRequest(b []byte) (SubscribeRequest, error) {
	var r SubscribeRequest
	if err := decodeJSON(b, &r); err != nil {
		return r, err
	}
	return r, checkMailbox("name", r.Name)
}

// DecodeListMessagesRequest parses and validates a message-list body.
func DecodeListMessagesRequest(b []byte) (ListMessagesRequest, error) {
	var r ListMessagesRequest
	if err := decodeJSON(b, &r); err != nil {
		return r, err
	}
	return r, checkMailbox("mailbox", r.Mailbox)
}

// DecodeHeaderBlobsRequest parses and validates a header-blob batch request.
func DecodeHeaderBlobsRequest(b []byte) (HeaderBlobsRequest, error) {
	var r HeaderBlobsRequest
	if err := decodeJSON(b, &r); err != nil {
		return r, err
	}
	if len(r.IDs) == 0 || len(r.IDs) > MaxBatch {
		return r, invalidf("between 1 and %d ids per batch", MaxBatch)
	}
	return r, nil
}

// DecodeFlagsRequest parses and validates a flags body.
func DecodeFlagsRequest(b []byte) (FlagsRequest, error) {
	var r FlagsRequest
	if err := decodeJSON(b, &r); err != nil {
		return r, err
	}
	if err := checkMailbox("mailbox", r.Mailbox); err != nil {
		return r, err
	}
	if r.Op != store.FlagsSet && r.Op != store.FlagsAdd && r.Op != store.FlagsRemove {
		return r, invalidf("unknown flag operation %d", r.Op)
	}
	if err := checkUIDs(r.UIDs); err != nil {
		return r, err
	}
	return r, checkFlags(r.Flags)
}

// DecodeCopyRequest parses and validates a copy or move body.
func DecodeCopyRequest(b []byte) (CopyRequest, error) {
	var r CopyRequest
	if err := decodeJSON(b, &r); err != nil {
		return r, err
	}
	if err := checkMailbox("src", r.Src); err != nil {
		return r, err
	}
	if err := checkMailbox("dst", r.Dst); err != nil {
		return r, err
	}
	return r, checkUIDs(r.UIDs)
}

// DecodeExpungeRequest parses and validates an expunge body.
func DecodeExpungeRequest(b []byte) (ExpungeRequest, error) {
	var r ExpungeRequest
	if err := decodeJSON(b, &r); err != nil {
		return r, err
	}
	if err := checkMailbox("mailbox", r.Mailbox); err != nil {
		return r, err
	}
	return r, checkUIDs(r.UIDs)
}

// DecodeAppendRequest parses an append body: a JSON AppendMeta frame, then
// the header blob and the body blob. The blobs alias b.
func DecodeAppendRequest(b []byte) (string, store.NewMessage, error) {
	fr, err := splitFrames(b, 3, 3)
	if err != nil {
		return "", store.NewMessage{}, err
	}
	var m AppendMeta
	if err := decodeJSON(fr[0], &m); err != nil {
		return "", store.NewMessage{}, err
	}
	if err := checkMailbox("mailbox", m.Mailbox); err != nil {
		return "", store.NewMessage{}, err
	}
	if err := checkFlags(m.Flags); err != nil {
		return "", store.NewMessage{}, err
	}
	if err := checkSealed(m.Size, fr[1], fr[2]); err != nil {
		return "", store.NewMessage{}, err
	}
	return m.Mailbox, store.NewMessage{
		Flags: m.Flags, InternalDate: m.InternalDate, Size: m.Size,
		HeaderBlob: fr[1], BodyBlob: fr[2],
	}, nil
}

// Delivery is one sealed message for one internal recipient, as a deliver
// call carries it. bridge.Delivery is meant to be an alias of it.
type Delivery struct {
	Recipient  string
	Size       int64
	HeaderBlob []byte
	BodyBlob   []byte
}

// DeliverRequest is a decoded deliver call.
type DeliverRequest struct {
	Deliveries []Delivery
	// CopyMailbox and Copy are the caller's own copy; Copy is nil without one.
	CopyMailbox string
	Copy        *store.NewMessage
}

// DecodeDeliverRequest parses a deliver body: a JSON DeliverMeta frame, then
// two blob frames per recipient, then two for the copy if there is one.
// The blobs alias b.
func DecodeDeliverRequest(b []byte) (DeliverRequest, error) {
	var req DeliverRequest
	fr, err := splitFrames(b, -1, 3+2*MaxRecipients)
	if err != nil {
		return req, err
	}
	if len(fr) == 0 {
		return req, invalidf("empty deliver body")
	}
	var m DeliverMeta
	if err := decodeJSON(fr[0], &m); err != nil {
		return req, err
	}
	if len(m.Recipients) == 0 || len(m.Recipients) > MaxRecipients {
		return req, invalidf("between 1 and %d recipients per delivery", MaxRecipients)
	}
	want := 1
	for i, rc := range m.Recipients {
		if rc.BlobsOf < 0 || rc.BlobsOf > i || rc.BlobsOf > 0 && m.Recipients[rc.BlobsOf-1].BlobsOf != 0 {
			return req, invalidf("recipient %d: blobs_of must name an earlier recipient with blobs of its own", i+1)
		}
		if rc.BlobsOf == 0 {
			want += 2
		}
	}
	if k := m.CopyBlobsOf; k != 0 && (m.Copy == nil || k < 0 || k > len(m.Recipients) || m.Recipients[k-1].BlobsOf != 0) {
		return req, invalidf("copy_blobs_of must come with a copy and name a recipient with blobs of its own")
	}
	if m.Copy != nil && m.CopyBlobsOf == 0 {
		want += 2
	}
	if len(fr) != want {
		return req, invalidf("body has %d blob frames for %d recipients", len(fr)-1, len(m.Recipients))
	}
	req.Deliveries = make([]Delivery, len(m.Recipients))
	next := 1 // the next blob frame
	for i, rc := range m.Recipients {
		if err := CheckAddress(rc.Address); err != nil {
			return req, err
		}
		var hb, bb []byte
		if rc.BlobsOf == 0 {
			hb, bb = fr[next], fr[next+1]
			next += 2
		} else {
			src := req.Deliveries[rc.BlobsOf-1]
			hb, bb = src.HeaderBlob, src.BodyBlob
		}
		if err := checkSealed(rc.Size, hb, bb); err != nil {
			return req, err
		}
		req.Deliveries[i] = Delivery{Recipient: rc.Address, Size: rc.Size, HeaderBlob: hb, BodyBlob: bb}
	}
	if c := m.Copy; c != nil {
		if err := checkMailbox("mailbox", c.Mailbox); err != nil {
			return req, err
		}
		if err := checkFlags(c.Flags); err != nil {
			return req, err
		}
		var hb, bb []byte
		if k := m.CopyBlobsOf; k != 0 {
			hb, bb = req.Deliveries[k-1].HeaderBlob, req.Deliveries[k-1].BodyBlob
		} else {
			hb, bb = fr[next], fr[next+1]
		}
		if err := checkSealed(c.Size, hb, bb); err != nil {
			return req, err
		}
		req.CopyMailbox = c.Mailbox
		req.Copy = &store.NewMessage{Flags: c.Flags, InternalDate: c.InternalDate, Size: c.Size, HeaderBlob: hb, BodyBlob: bb}
	}
	return req, nil
}

// DecodeSubmitRequest parses a submit body: a JSON SubmitMeta frame, then
// the payload. The payload aliases b.
func DecodeSubmitRequest(b []byte) (SubmitMeta, []byte, error) {
	fr, err := splitFrames(b, 2, 2)
	if err != nil {
		return SubmitMeta{}, nil, err
	}
	var m SubmitMeta
	if err := decodeJSON(fr[0], &m); err != nil {
		return m, nil, err
	}
	if err := CheckAddress(m.From); err != nil {
		return m, nil, err
	}
	if len(m.Recipients) == 0 || len(m.Recipients) > MaxRecipients {
		return m, nil, invalidf("between 1 and %d recipients per submission", MaxRecipients)
	}
	for _, rc := range m.Recipients {
		if err := CheckAddress(rc); err != nil {
			return m, nil, err
		}
	}
	if len(fr[1]) == 0 {
		return m, nil, invalidf("empty payload")
	}
	return m, fr[1], nil
}

// checkSealed rejects blobs the store could never serve back usefully. The
// server cannot check that they are OpenPGP (it never parses them), only
// that they exist and the declared size is sane.
func checkSealed(size int64, header, body []byte) error {
	if len(header) == 0 || len(body) == 0 {
		return invalidf("empty header or body blob")
	}
	if size < 0 {
		return invalidf("negative message size")
	}
	return nil
}
