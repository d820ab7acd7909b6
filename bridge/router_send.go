package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"smessenger/internal/store"
	"smessenger/pgp"
)

// sendPlan is everything a submission commits, built before anything is
// committed so that a refusal or an encryption failure changes nothing.
type sendPlan struct {
	internal   []route
	deliveries []Delivery
	submits    []submission
	// summary is that of the public form, once sealInternal computed it;
	// the Sent copy reuses it when it is the same bytes (no Bcc).
	summary *pgp.Summary
	// sentBlobs, when set, are the To/Cc recipients' blobs, which are also
	// sealed to the sender: the Sent copy is the same bytes then (no Bcc
	// field), so it is filed with them instead of being sealed again.
	sentBlobs *sealedBlobs
}

// sealedBlobs are a message's header and body blobs.
type sealedBlobs struct{ header, body []byte }

// submission is one payload for the server's outbound queue.
type submission struct {
	rcpts   []route
	payload []byte
}

func addrsOf(rs []route) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.addr
	}
	return out
}

// Send routes a submitted message from the account's address from to
// rcpts (the envelope), then files the sender's copy in Sent. It returns
// nil only when every recipient's copy and the Sent copy are committed on
// the server. A refusal is a *SendError naming the recipient; nothing is
// committed then. If a commit fails half-way, a retry of the same message
// (same Message-ID, within the Sent window) skips the recipients already
// served, so nobody gets it twice.
func (r *Router) Send(ctx context.Context, from string, rcpts []string, raw []byte) error {
	if !r.IsOwnAddress(from) {
		return &SendError{Address: from, Reason: "is not an address of this account", Err: ErrNotOwnAddress}
	}
	o, err := prepareOutgoing(raw, r.now(), from)
	if err != nil {
		return &SendError{Reason: "the message is malformed: " + strings.TrimPrefix(err.Error(), ErrBadMessage.Error()+": "),
			Err: err}
	}
	plan, err := r.plan(ctx, from, rcpts, o)
	if err != nil {
		return err
	}
	// The Sent copy and the deliveries are independent commits on the
	// server: run them at once, so one submission costs one round of
	// durable commits, not two. Both must succeed before the 250.
	_, sentBefore := r.dedup.sentUID(o.messageID) // a retry: the Sent copy is already there
	if !sentBefore && len(plan.deliveries) > 0 {
		if handled, err := r.sendWithCopy(ctx, from, o, plan); handled {
			return err
		}
	}
	var sentUID uint32
	var sentErr error
	var wg sync.WaitGroup
	if !sentBefore {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sentUID, sentErr = r.appendSent(ctx, o.sent)
		}()
	}
	cerr := r.commit(ctx, from, o.messageID, plan, r.srv.Deliver)
	wg.Wait()
	if cerr != nil {
		if !sentBefore && sentErr == nil {
			// Not sent: a Sent copy would say otherwise. A retry files it.
			r.withdrawSent(sentUID)
		}
		return cerr
	}
	if sentBefore {
		return nil
	}
	return r.sentResult(o.messageID, sentUID, sentErr)
}

// sentResult ends a submission whose deliveries all committed: a Sent copy
// that failed makes it a temporary failure (the retry skips the recipients
// already served and files the copy).
func (r *Router) sentResult(messageID string, sentUID uint32, sentErr error) error {
	if sentErr != nil {
		r.log.Warn("bridge: Sent copy not stored", "err", sentErr)
		return &SendError{Reason: "the message was sent but its copy could not be filed in Sent; try again",
			Temporary: true, Err: errors.Join(ErrSendFailed, sentErr)}
	}
	r.dedup.markSent(messageID, sentUID)
	return nil
}

// sendWithCopy is the commit of a submission with internal recipients when
// the server takes the Sent copy in the deliver call itself (CopyDeliverer):
// one round trip and one round of commits instead of two. It reports
// handled false, having sent nothing, when that way is not open (no such
// capability, no local account, the copy could not be prepared); the caller
// then files the copy on its own.
func (r *Router) sendWithCopy(ctx context.Context, from string, o *outgoing, p *sendPlan) (handled bool, err error) {
	cd, ok := r.srv.(CopyDeliverer)
	a := r.cfg.Account
	if !ok || a == nil {
		return false, nil
	}
	var sum *pgp.Summary
	if bytes.Equal(o.sent, o.public) {
		sum = p.summary
	}
	prep, err := a.prepareAppend(r.sentMailbox(ctx), o.sent, []string{`\Seen`}, r.now(), sum, p.sentBlobs)
	if err != nil || prep.skipped {
		return false, nil
	}
	defer prep.done()
	var meta store.MessageMeta
	var copyErr error
	cerr := r.commit(ctx, from, o.messageID, p, func(ctx context.Context, ds []Delivery) error {
		var err error
		meta, copyErr, err = cd.DeliverWithCopy(ctx, ds, prep.name, prep.msg)
		return err
	})
	stored := meta.UID != 0 && copyErr == nil // only when the deliveries committed
	if stored {
		a.finishAppend(ctx, prep, meta)
	}
	if cerr != nil {
		if stored {
			// An outside recipient failed: not sent, so no Sent copy either.
			r.withdrawSent(meta.UID)
		}
		return true, cerr
	}
	if !stored && copyErr == nil {
		copyErr = errors.New("bridge: the server stored no Sent copy")
	}
	return true, r.sentResult(o.messageID, meta.UID, copyErr)
}

// withdrawSent removes a Sent copy filed for a submission that then
// failed (best effort: it is only a copy). It uses its own deadline, since
// the submission's context may be the one that ended.
func (r *Router) withdrawSent(uid uint32) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := r.sentMailbox(ctx)
	uids := []uint32{uid}
	var err error
	if a := r.cfg.Account; a != nil {
		if err = a.StoreFlags(ctx, name, uids, store.FlagsAdd, []string{`\Deleted`}); err == nil {
			_, err = a.Expunge(ctx, name, uids)
		}
	} else if _, err = r.srv.StoreFlags(ctx, name, uids, store.FlagsAdd, []string{`\Deleted`}); err == nil {
		_, err = r.srv.Expunge(ctx, name, uids)
	}
	if err != nil {
		r.log.Warn("bridge: Sent copy of a failed submission not removed", "err", err)
	}
}

// plan resolves every recipient and builds every payload.
func (r *Router) plan(ctx context.Context, from string, rcpts []string, o *outgoing) (*sendPlan, error) {
	var internal, visible, hidden, plain []route
	seen := map[string]bool{}
	for _, rc := range rcpts {
		a := normAddr(rc)
		if seen[a] || r.dedup.committed(o.messageID, a) {
			continue
		}
		seen[a] = true
		rt, err := r.resolve(ctx, rc)
		if err != nil {
			return nil, err
		}
		switch {
		case rt.kind == routeInternal:
			internal = append(internal, rt)
		case rt.kind == routePlain:
			plain = append(plain, rt)
		case o.visible[a]:
			visible = append(visible, rt)
		default:
			hidden = append(hidden, rt)
		}
	}
	p := &sendPlan{internal: internal}
	if err := r.sealInternal(p, o); err != nil {
		return nil, err
	}
	ac := &pgp.AutocryptHeader{Addr: normAddr(from), PreferEncrypt: true, KeyData: r.key.PublicBinary()}
	// Recipients named in To/Cc share one message; each Bcc recipient gets
	// its own, so that no recipient sees a Bcc recipient's key ID.
	groups := [][]route{visible}
	for _, h := range hidden {
		groups = append(groups, []route{h})
	}
	for _, g := range groups {
		if len(g) == 0 {
			continue
		}
		keys := []*pgp.Key{r.key.Public()} // encrypt to self: the sender can read bounces
		for _, rt := range g {
			keys = append(keys, rt.key)
		}
		payload, err := pgp.BuildEncrypted(o.public, keys, r.key, ac)
		if err != nil {
			return nil, fmt.Errorf("bridge: encrypt for %d recipients: %w", len(g), err)
		}
		p.submits = append(p.submits, submission{rcpts: g, payload: payload})
	}
	if len(plain) > 0 {
		payload, err := r.plainPayload(o.public, ac)
		if err != nil {
			return nil, err
		}
		p.submits = append(p.submits, submission{rcpts: plain, payload: payload})
	}
	return p, nil
}

// sealInternal seals the public form for the internal recipients; the
// summary is computed once for all of them. Like the outbound message, the
// recipients named in To/Cc share one sealing (one session key, a PKESK
// for each of them, one signature per blob), and the sender's key is among
// them when the Sent copy is the same bytes; each Bcc recipient gets a
// sealing of their own, so no recipient's blob names a Bcc recipient's
// key. What the shared blobs tell a recipient, the keys of the other To/Cc
// recipients who are users here, the header already tells and the
// directory answers anyone.
func (r *Router) sealInternal(p *sendPlan, o *outgoing) error {
	if len(p.internal) == 0 {
		return nil
	}
	msg := o.public
	sum, err := pgp.Summarize(msg)
	if err != nil {
		return &SendError{Reason: "the message is malformed", Err: errors.Join(ErrBadMessage, err)}
	}
	p.summary = sum
	enc := pgp.EncodeSummary(sum)
	seal := func(keys []*pgp.Key) (*sealedBlobs, error) {
		hb, bb, err := pgp.SealBlobs(enc, msg, keys, pgp.SealOptions{Signer: r.key})
		if err != nil {
			return nil, err
		}
		return &sealedBlobs{header: hb, body: bb}, nil
	}
	var shared []*pgp.Key
	for _, rt := range p.internal {
		if o.visible[normAddr(rt.addr)] {
			shared = append(shared, rt.key)
		}
	}
	var group *sealedBlobs
	if len(shared) > 0 {
		_, copyInCall := r.srv.(CopyDeliverer) // only then does the Sent copy go with these blobs
		withSelf := copyInCall && r.cfg.Account != nil && bytes.Equal(o.sent, o.public)
		if withSelf {
			shared = append(shared, r.key.Public())
		}
		if group, err = seal(shared); err != nil {
			return fmt.Errorf("bridge: seal for %d recipients: %w", len(shared), err)
		}
		if withSelf {
			p.sentBlobs = group
		}
	}
	for _, rt := range p.internal {
		blobs := group
		if !o.visible[normAddr(rt.addr)] {
			if blobs, err = seal([]*pgp.Key{rt.key}); err != nil {
				return fmt.Errorf("bridge: seal for %s: %w", rt.addr, err)
			}
		}
		p.deliveries = append(p.deliveries, Delivery{Recipient: normAddr(rt.addr), Size: int64(len(msg)),
			HeaderBlob: blobs.header, BodyBlob: blobs.body})
	}
	return nil
}

// plainPayload is the key-less external form: the message as written with
// the sender's Autocrypt header (so the recipient's client can answer
// encrypted), signed if configured.
func (r *Router) plainPayload(msg []byte, ac *pgp.AutocryptHeader) ([]byte, error) {
	out := make([]byte, 0, len(msg)+1024)
	out = append(out, "Autocrypt: "...)
	out = append(out, ac.String()...)
	out = append(out, "\r\n"...)
	out = append(out, msg...)
	if !r.cfg.SignPlain {
		return out, nil
	}
	signed, err := pgp.BuildSigned(out, r.key)
	if err != nil {
		return nil, fmt.Errorf("bridge: sign: %w", err)
	}
	return signed, nil
}

// commit hands the payloads to the server: the outbound queue entries and
// the internal deliveries, all at once (they are independent commits).
// Each step is recorded as committed as soon as it is, so a retry after a
// partial failure skips it. The first failure, in plan order, is returned.
func (r *Router) commit(ctx context.Context, from, msgID string, p *sendPlan, deliver func(context.Context, []Delivery) error) error {
	errs := make([]error, len(p.submits)+1)
	var wg sync.WaitGroup
	for i, s := range p.submits {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.srv.Submit(ctx, normAddr(from), addrsOf(s.rcpts), s.payload); err != nil {
				errs[i] = r.commitError(err, s.rcpts)
				return
			}
			r.dedup.markCommitted(msgID, addrsOf(s.rcpts))
		}()
	}
	if len(p.deliveries) > 0 {
		if err := deliver(ctx, p.deliveries); err != nil {
			errs[len(p.submits)] = r.commitError(err, p.internal)
		} else {
			r.dedup.markCommitted(msgID, addrsOf(p.internal))
		}
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// commitError turns a server failure into what the user may see.
func (r *Router) commitError(err error, rs []route) error {
	addr := ""
	if len(rs) == 1 {
		addr = rs[0].addr
	}
	switch {
	case errors.Is(err, store.ErrQuotaExceeded):
		for _, rt := range rs {
			// The server names the recipient over quota; find which.
			if strings.Contains(err.Error(), normAddr(rt.addr)) {
				addr = rt.addr
			}
		}
		return &SendError{Address: addr, Reason: "mailbox full", Err: errors.Join(store.ErrQuotaExceeded, err)}
	case errors.Is(err, store.ErrNotFound):
		return &SendError{Address: addr, Reason: "no such user", Err: errors.Join(ErrUnknownRecipient, err)}
	}
	r.log.Warn("bridge: server did not take a message", "err", err)
	return &SendError{Address: addr, Reason: "the server did not accept the message, try again later",
		Temporary: true, Err: errors.Join(ErrSendFailed, err)}
}

// appendSent files the sender's copy, sealed to the account's own key.
func (r *Router) appendSent(ctx context.Context, msg []byte) (uint32, error) {
	name := r.sentMailbox(ctx)
	if a := r.cfg.Account; a != nil {
		_, uid, err := a.Append(ctx, name, msg, []string{`\Seen`}, r.now())
		return uid, err
	}
	hb, bb, _, err := pgp.SealMessage(msg, []*pgp.Key{r.key}, pgp.SealOptions{Signer: r.key})
	if err != nil {
		return 0, err
	}
	meta, err := r.srv.Append(ctx, name, store.NewMessage{Flags: []string{`\Seen`}, InternalDate: r.now(),
		Size: int64(len(msg)), HeaderBlob: hb, BodyBlob: bb})
	return meta.UID, err
}
