package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"smessenger/internal/store"
)

// SubmitExpiry is how long an outbound entry is retried before it is
// dead-lettered.
const SubmitExpiry = 5 * 24 * time.Hour

// deliver appends each sealed message to its recipient's INBOX. Every
// recipient is resolved before anything is written, so an unknown recipient
// changes nothing. After that, each append commits on its own, all of them
// at once so that the store's group commit carries them in one fsync: if
// one fails (quota, store error) the others keep their copy, and the error
// names the first failing recipient so the bridge can retry.
//
// A call may carry the caller's own copy (its Sent copy), appended at the
// same time as the deliveries, so that a submission costs one round trip
// and one round of commits. If a delivery fails the copy is removed again
// (a Sent copy of mail that was not sent would mislead), and if only the
// copy fails the answer says so beside the deliveries' success.
func (h *handler) deliver(w http.ResponseWriter, r *http.Request, c Caller) error {
	req, err := readRequest(r, DecodeDeliverRequest)
	if err != nil {
		return err
	}
	ds := req.Deliveries
	ctx := r.Context()
	accts := make([]store.AccountID, len(ds))
	for i, d := range ds {
		id, err := h.lookupAddress(ctx, d.Recipient)
		if errors.Is(err, store.ErrNotFound) {
			return &reqError{code: "unknown_recipient", msg: "unknown recipient " + d.Recipient}
		}
		if err != nil {
			return err
		}
		accts[i] = id
	}
	var copyMeta store.MessageMeta
	var copyErr error
	var errs []error
	if req.Copy == nil {
		errs = h.appendAll(ctx, accts, ds)
	} else {
		var wg sync.WaitGroup
		wg.Go(func() { copyMeta, copyErr = h.appendCopy(ctx, c.Account, req.CopyMailbox, *req.Copy) })
		errs = h.appendAll(ctx, accts, ds)
		wg.Wait()
	}
	if err := deliveryError(ds, errs); err != nil {
		if req.Copy != nil && copyErr == nil {
			h.withdrawCopy(c.Account, req.CopyMailbox, copyMeta.UID)
		}
		return err
	}
	if req.Copy == nil {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if copyErr != nil {
		h.cfg.Log.Warn("api: copy beside a delivery not stored", "err", copyErr)
		msg := "the copy could not be stored"
		if errors.Is(copyErr, store.ErrQuotaExceeded) {
			msg = "the copy is over quota"
		} else if errors.Is(copyErr, store.ErrMailboxNotFound) {
			msg = "no mailbox " + req.CopyMailbox
		}
		return writeJSON(w, DeliverResponse{CopyError: msg})
	}
	return writeJSON(w, DeliverResponse{Copy: &copyMeta})
}

// deliveryError is the error of the first failed delivery, as the client
// sees it, or nil.
func deliveryError(ds []Delivery, errs []error) error {
	for i, err := range errs {
		if errors.Is(err, store.ErrQuotaExceeded) {
			return &reqError{code: "quota_exceeded", msg: "mailbox of " + ds[i].Recipient + " is over quota"}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// appendCopy appends the caller's own copy through the write gate, like
// the deliveries, so that all of them can share one commit.
func (h *handler) appendCopy(ctx context.Context, acct store.AccountID, mailbox string, nm store.NewMessage) (meta store.MessageMeta, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("api: copy append panicked: %v", p)
		}
	}()
	return h.appendOne(ctx, acct, mailbox, nm)
}

// withdrawCopy removes the copy of a call whose deliveries failed. It has
// its own deadline: the request's context may be what ended.
func (h *handler) withdrawCopy(acct store.AccountID, mailbox string, uid uint32) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := h.cfg.Store.Expunge(ctx, acct, mailbox, []uint32{uid}); err != nil {
		h.cfg.Log.Warn("api: copy of a failed delivery not removed", "err", err)
	}
}

// lookupAddress resolves a recipient address to its account. It is not
// cached: an alias moved to another account (through this node or another
// one) must never misdirect a sealed message, and the lookup is a single
// read transaction that runs concurrently with others and with commits.
func (h *handler) lookupAddress(ctx context.Context, address string) (store.AccountID, error) {
	return h.cfg.Store.LookupAddress(ctx, store.NormalizeAddress(address))
}

// appendAll appends ds[i] to the INBOX of accts[i], concurrently when there
// are several, through the write gate, and returns each append's error.
func (h *handler) appendAll(ctx context.Context, accts []store.AccountID, ds []Delivery) []error {
	start := h.gate.enter()
	defer h.gate.exit(start) // even on a panic: a write stuck in flight would hold every later one
	errs := make([]error, len(ds))
	put := func(i int) {
		defer func() {
			if p := recover(); p != nil { // net/http recovers only its own goroutine
				errs[i] = fmt.Errorf("api: append panicked: %v", p)
			}
		}()
		_, errs[i] = h.cfg.Store.Append(ctx, accts[i], "INBOX", store.NewMessage{
			Size: ds[i].Size, HeaderBlob: ds[i].HeaderBlob, BodyBlob: ds[i].BodyBlob,
		})
	}
	if len(ds) == 1 {
		put(0)
		return errs
	}
	var wg sync.WaitGroup
	for i := range ds {
		wg.Go(func() { put(i) })
	}
	wg.Wait()
	return errs
}

// submit queues a message for the relay after checking that the envelope
// sender is one of the caller's own addresses.
func (h *handler) submit(w http.ResponseWriter, r *http.Request, c Caller) error {
	b, err := readBody(r)
	if err != nil {
		return err
	}
	meta, payload, err := DecodeSubmitRequest(b)
	if err != nil {
		return err
	}
	acct, err := h.cfg.Store.GetAccount(r.Context(), c.Account)
	if err != nil {
		return err
	}
	from := store.NormalizeAddress(meta.From)
	owned := false
	for _, a := range acct.Addresses {
		if a == from {
			owned = true
		}
	}
	if !owned {
		return &reqError{code: "forbidden", msg: "sender " + meta.From + " is not an address of this account"}
	}
	now := h.cfg.Now()
	rcpts := make([]store.QueueRecipient, len(meta.Recipients))
	for i, a := range meta.Recipients {
		rcpts[i] = store.QueueRecipient{Address: a}
	}
	id, err := h.cfg.Store.Enqueue(r.Context(), store.QueueEntry{
		Account: c.Account, From: from, Recipients: rcpts, Payload: payload,
		Created: now, NextAttempt: now, Expires: now.Add(SubmitExpiry),
	})
	if err != nil {
		return err
	}
	return writeJSON(w, SubmitResponse{ID: id})
}
