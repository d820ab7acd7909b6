package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"smessenger/internal/channel"
	"smessenger/internal/store"
)

// maxErrorBody bounds how much of an error response the client reads.
const maxErrorBody = 64 << 10

// Client is the bridge's side of the API. Its methods match bridge.Server.
// Server-reported errors are *Error values that match the store's sentinels
// with errors.Is.
type Client struct {
	base    string
	hc      *http.Client
	maxBlob int64
}

// NewClient returns a client that reaches the server at addr ("host:port",
// or an onion address) over the channel configured by cfg (server key,
// device key, optional enrolment token and SOCKS5 proxy).
func NewClient(addr string, cfg channel.ClientConfig) *Client {
	return NewHTTPClient("http://"+addr, &http.Client{Transport: channel.NewHTTPTransport(addr, cfg)})
}

// NewHTTPClient returns a client over an existing HTTP client whose
// transport already provides the channel (tests, custom dialers).
func NewHTTPClient(baseURL string, hc *http.Client) *Client {
	return &Client{base: baseURL, hc: hc, maxBlob: DefaultLimits.MaxMessageBytes}
}

// CloseIdleConnections closes the client's idle channel connections.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// rateLimitRetries bounds how often a rate-limited call is sent again. A
// 429 is answered before the handler runs, so nothing happened and a retry
// is safe for every call; a mail client opening many uncached bodies at once
// (mbsync's first sync) then slows down instead of failing.
const rateLimitRetries = 8

// do sends one request and returns the response of a 2xx answer; any other
// answer becomes an *Error. Rate-limited calls are retried with backoff
// (50 ms doubling to 2 s) while ctx allows.
func (c *Client) do(ctx context.Context, method, path string, ctype string, body []byte) (*http.Response, error) {
	wait := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		resp, err := c.doOnce(ctx, method, path, ctype, body)
		if attempt >= rateLimitRetries || !errors.Is(err, ErrRateLimited) {
			return resp, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
		wait = min(2*wait, 2*time.Second)
	}
}

func (c *Client) doOnce(ctx context.Context, method, path string, ctype string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("api: build request: %w", err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("api: %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return nil, decodeError(resp.StatusCode, b)
	}
	return resp, nil
}

// call sends a JSON request (in may be nil) and decodes a JSON answer into
// out (out may be nil for 204 answers).
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	ctype := ""
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("api: encode request: %w", err)
		}
		ctype = "application/json"
	}
	return c.callRaw(ctx, method, path, ctype, body, out)
}

func (c *Client) callRaw(ctx context.Context, method, path, ctype string, body []byte, out any) error {
	resp, err := c.do(ctx, method, path, ctype, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, c.maxBlob)).Decode(out); err != nil {
		return fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	return nil
}

// WhoAmI returns the caller's account, addresses and device id.
func (c *Client) WhoAmI(ctx context.Context) (WhoAmI, error) {
	var r WhoAmI
	err := c.call(ctx, http.MethodGet, "/v1/whoami", nil, &r)
	return r, err
}

// LookupKey returns the public key of one of the server's users;
// store.ErrNotFound for any other address.
func (c *Client) LookupKey(ctx context.Context, address string) ([]byte, bool, error) {
	var r KeyResponse
	err := c.call(ctx, http.MethodGet, "/v1/key?address="+url.QueryEscape(address), nil, &r)
	return r.Key, r.Internal, err
}

// SetPublicKey publishes the account's OpenPGP public key (binary packets).
func (c *Client) SetPublicKey(ctx context.Context, key []byte) error {
	return c.callRaw(ctx, http.MethodPut, "/v1/key", "application/octet-stream", key, nil)
}

// ListMailboxes lists the account's mailboxes.
func (c *Client) ListMailboxes(ctx context.Context) ([]store.Mailbox, error) {
	var r []store.Mailbox
	err := c.call(ctx, http.MethodGet, "/v1/mailboxes", nil, &r)
	return r, err
}

// CreateMailbox creates a mailbox.
func (c *Client) CreateMailbox(ctx context.Context, name string) (store.Mailbox, error) {
	var r store.Mailbox
	err := c.call(ctx, http.MethodPost, "/v1/mailboxes/create", MailboxRequest{Name: name}, &r)
	return r, err
}

// RenameMailbox renames a mailbox and its children.
func (c *Client) RenameMailbox(ctx context.Context, oldName, newName string) error {
	return c.call(ctx, http.MethodPost, "/v1/mailboxes/rename", RenameRequest{Old: oldName, New: newName}, nil)
}

// DeleteMailbox deletes a mailbox and its messages.
func (c *Client) DeleteMailbox(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodPost, "/v1/mailboxes/delete", MailboxRequest{Name: name}, nil)
}

// SetSubscribed sets a mailbox's subscription.
func (c *Client) SetSubscribed(ctx context.Context, name string, subscribed bool) error {
	return c.call(ctx, http.MethodPost, "/v1/mailboxes/subscribe", SubscribeRequest{Name: name, Subscribed: subscribed}, nil)
}

// ListMessages lists metadata of messages with UID >= sinceUID.
func (c *Client) ListMessages(ctx context.Context, mailbox string, sinceUID uint32) ([]store.MessageMeta, error) {
	var r []store.MessageMeta
	err := c.call(ctx, http.MethodPost, "/v1/messages/list", ListMessagesRequest{Mailbox: mailbox, SinceUID: sinceUID}, &r)
	return r, err
}

// HeaderBlobs fetches up to MaxBatch header blobs in one round trip, in order.
func (c *Client) HeaderBlobs(ctx context.Context, ids []store.MessageID) ([][]byte, error) {
	if len(ids) == 0 || len(ids) > MaxBatch {
		return nil, fmt.Errorf("api: between 1 and %d ids per batch: %w", MaxBatch, store.ErrInvalid)
	}
	body, _ := json.Marshal(HeaderBlobsRequest{IDs: ids})
	resp, err := c.do(ctx, http.MethodPost, "/v1/blobs/headers", "application/json", body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return DecodeFrames(resp.Body, len(ids), c.maxBlob)
}

// BodyBlob streams one body blob; the caller closes it.
func (c *Client) BodyBlob(ctx context.Context, id store.MessageID) (io.ReadCloser, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/blobs/body?id="+strconv.FormatUint(uint64(id), 10), "", nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Append stores a sealed message in one of the account's mailboxes.
func (c *Client) Append(ctx context.Context, mailbox string, msg store.NewMessage) (store.MessageMeta, error) {
	meta, _ := json.Marshal(AppendMeta{Mailbox: mailbox, Flags: msg.Flags, InternalDate: msg.InternalDate, Size: msg.Size})
	body := make([]byte, 0, 3*frameHeaderLen+len(meta)+len(msg.HeaderBlob)+len(msg.BodyBlob))
	body = appendFrame(appendFrame(appendFrame(body, meta), msg.HeaderBlob), msg.BodyBlob)
	var r store.MessageMeta
	err := c.callRaw(ctx, http.MethodPost, "/v1/messages/append", "application/octet-stream", body, &r)
	return r, err
}

// StoreFlags changes flags and returns the new metadata of changed messages.
func (c *Client) StoreFlags(ctx context.Context, mailbox string, uids []uint32, op store.FlagOp, flags []string) ([]store.MessageMeta, error) {
	var r []store.MessageMeta
	err := c.call(ctx, http.MethodPost, "/v1/messages/flags", FlagsRequest{Mailbox: mailbox, UIDs: uids, Op: op, Flags: flags}, &r)
	return r, err
}

// Copy copies messages to dst.
func (c *Client) Copy(ctx context.Context, src string, uids []uint32, dst string) ([]store.UIDPair, error) {
	var r []store.UIDPair
	err := c.call(ctx, http.MethodPost, "/v1/messages/copy", CopyRequest{Src: src, UIDs: uids, Dst: dst}, &r)
	return r, err
}

// Move moves messages to dst.
func (c *Client) Move(ctx context.Context, src string, uids []uint32, dst string) ([]store.UIDPair, error) {
	var r []store.UIDPair
	err := c.call(ctx, http.MethodPost, "/v1/messages/move", CopyRequest{Src: src, UIDs: uids, Dst: dst}, &r)
	return r, err
}

// Expunge removes the given UIDs, or every \Deleted message when uids is nil.
func (c *Client) Expunge(ctx context.Context, mailbox string, uids []uint32) ([]uint32, error) {
	var r []uint32
	err := c.call(ctx, http.MethodPost, "/v1/messages/expunge", ExpungeRequest{Mailbox: mailbox, UIDs: uids}, &r)
	return r, err
}

// Deliver appends sealed messages to internal recipients' INBOXes. It
// returns nil only when every recipient's copy is committed. An unknown
// recipient (errors.Is ErrUnknownRecipient and store.ErrNotFound) is
// detected before anything is written; a later failure (quota) names the
// recipient, and the recipients before it keep their copy.
func (c *Client) Deliver(ctx context.Context, ds []Delivery) error {
	return c.callRaw(ctx, http.MethodPost, "/v1/deliver", "application/octet-stream", deliverBody(ds, "", nil), nil)
}

// deliverBody encodes a deliver call: the DeliverMeta frame, two frames per
// recipient, and two for the copy to mailbox if cp is not nil. Blobs equal
// to an earlier recipient's (one sealing for several) are sent once.
func deliverBody(ds []Delivery, mailbox string, cp *store.NewMessage) []byte {
	meta := DeliverMeta{Recipients: make([]DeliverRecipient, len(ds))}
	// sameAs is the 1-based index of an earlier recipient with its own
	// frames and these blobs, or 0.
	sameAs := func(hb, bb []byte, upto int) int {
		for k := range upto {
			d := ds[k]
			if meta.Recipients[k].BlobsOf == 0 && bytes.Equal(d.HeaderBlob, hb) && bytes.Equal(d.BodyBlob, bb) {
				return k + 1
			}
		}
		return 0
	}
	n := 0
	for i, d := range ds {
		meta.Recipients[i] = DeliverRecipient{Address: d.Recipient, Size: d.Size, BlobsOf: sameAs(d.HeaderBlob, d.BodyBlob, i)}
		if meta.Recipients[i].BlobsOf == 0 {
			n += 2*frameHeaderLen + len(d.HeaderBlob) + len(d.BodyBlob)
		}
	}
	if cp != nil {
		meta.Copy = &AppendMeta{Mailbox: mailbox, Flags: cp.Flags, InternalDate: cp.InternalDate, Size: cp.Size}
		if meta.CopyBlobsOf = sameAs(cp.HeaderBlob, cp.BodyBlob, len(ds)); meta.CopyBlobsOf == 0 {
			n += 2*frameHeaderLen + len(cp.HeaderBlob) + len(cp.BodyBlob)
		}
	}
	mb, _ := json.Marshal(meta)
	body := appendFrame(make([]byte, 0, n+frameHeaderLen+len(mb)), mb)
	for i, d := range ds {
		if meta.Recipients[i].BlobsOf == 0 {
			body = appendFrame(appendFrame(body, d.HeaderBlob), d.BodyBlob)
		}
	}
	if cp != nil && meta.CopyBlobsOf == 0 {
		body = appendFrame(appendFrame(body, cp.HeaderBlob), cp.BodyBlob)
	}
	return body
}

// DeliverWithCopy is Deliver carrying the caller's own copy of the message
// (its Sent copy) for mailbox, appended beside the deliveries in one call.
// err is that of the deliveries, as with Deliver; when they fail the server
// removes the copy again. With err nil, copyErr says whether the copy was
// stored (errors.Is ErrCopyFailed) and meta describes it.
func (c *Client) DeliverWithCopy(ctx context.Context, ds []Delivery, mailbox string, cp store.NewMessage) (meta store.MessageMeta, copyErr, err error) {
	body := deliverBody(ds, mailbox, &cp)
	var r DeliverResponse
	if err := c.callRaw(ctx, http.MethodPost, "/v1/deliver", "application/octet-stream", body, &r); err != nil {
		return store.MessageMeta{}, nil, err
	}
	if r.Copy == nil {
		msg := r.CopyError
		if msg == "" {
			msg = "the server stored no copy"
		}
		return store.MessageMeta{}, fmt.Errorf("%w: %s", ErrCopyFailed, msg), nil
	}
	return *r.Copy, nil, nil
}

// Submit queues a message for the relay and returns its queue id.
func (c *Client) Submit(ctx context.Context, from string, recipients []string, payload []byte) (string, error) {
	mb, _ := json.Marshal(SubmitMeta{From: from, Recipients: recipients})
	body := appendFrame(appendFrame(make([]byte, 0, 2*frameHeaderLen+len(mb)+len(payload)), mb), payload)
	var r SubmitResponse
	err := c.callRaw(ctx, http.MethodPost, "/v1/submit", "application/octet-stream", body, &r)
	return r.ID, err
}

// EventsSince returns up to limit events after seq after.
func (c *Client) EventsSince(ctx context.Context, after uint64, limit int) ([]store.Event, error) {
	var r []store.Event
	err := c.call(ctx, http.MethodGet, fmt.Sprintf("/v1/events?after=%d&limit=%d", after, limit), nil, &r)
	return r, err
}
