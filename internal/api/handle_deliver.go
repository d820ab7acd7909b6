package api

import (
	"errors"
	"net/http"
	"time"

	"smessenger/internal/store"
)

// SubmitExpiry is how long an outbound entry is retried before it is
// dead-lettered.
const SubmitExpiry = 5 * 24 * time.Hour

// deliver appends each sealed message to its recipient's INBOX. Every
// recipient is resolved before anything is written, so an unknown recipient
// changes nothing. After that, each append commits on its own: if one fails
// (quota, store error) the earlier recipients keep their copy, and the
// error names the failing recipient so the bridge can retry the rest.
func (h *handler) deliver(w http.ResponseWriter, r *http.Request, c Caller) error {
	b, err := readBody(r)
	if err != nil {
		return err
	}
	ds, err := DecodeDeliverRequest(b)
	if err != nil {
		return err
	}
	ctx := r.Context()
	accts := make([]store.AccountID, len(ds))
	for i, d := range ds {
		id, err := h.cfg.Store.LookupAddress(ctx, store.NormalizeAddress(d.Recipient))
		if errors.Is(err, store.ErrNotFound) {
			return &reqError{code: "unknown_recipient", msg: "unknown recipient " + d.Recipient}
		}
		if err != nil {
			return err
		}
		accts[i] = id
	}
	for i, d := range ds {
		_, err := h.cfg.Store.Append(ctx, accts[i], "INBOX", store.NewMessage{
			Size: d.Size, HeaderBlob: d.HeaderBlob, BodyBlob: d.BodyBlob,
		})
		if errors.Is(err, store.ErrQuotaExceeded) {
			return &reqError{code: "quota_exceeded", msg: "mailbox of " + d.Recipient + " is over quota"}
		}
		if err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
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
