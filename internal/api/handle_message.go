package api

import (
	"context"
	"net/http"
	"strconv"

	"smessenger/internal/store"
)

func (h *handler) listMessages(w http.ResponseWriter, r *http.Request, c Caller) error {
	req, err := readRequest(r, DecodeListMessagesRequest)
	if err != nil {
		return err
	}
	msgs, err := h.cfg.Store.ListMessages(r.Context(), c.Account, req.Mailbox, req.SinceUID)
	if err != nil {
		return err
	}
	if msgs == nil {
		msgs = []store.MessageMeta{}
	}
	return writeJSON(w, msgs)
}

func (h *handler) appendMessage(w http.ResponseWriter, r *http.Request, c Caller) error {
	b, err := readBody(r)
	if err != nil {
		return err
	}
	mailbox, msg, err := DecodeAppendRequest(b)
	if err != nil {
		return err
	}
	meta, err := h.appendOne(r.Context(), c.Account, mailbox, msg)
	if err != nil {
		return err
	}
	return writeJSON(w, meta)
}

func (h *handler) storeFlags(w http.ResponseWriter, r *http.Request, c Caller) error {
	req, err := readRequest(r, DecodeFlagsRequest)
	if err != nil {
		return err
	}
	metas, err := h.cfg.Store.StoreFlags(r.Context(), c.Account, req.Mailbox, req.UIDs, req.Op, req.Flags)
	if err != nil {
		return err
	}
	if metas == nil {
		metas = []store.MessageMeta{}
	}
	return writeJSON(w, metas)
}

func (h *handler) copyMessages(w http.ResponseWriter, r *http.Request, c Caller) error {
	return h.copyOrMove(w, r, c, h.cfg.Store.Copy)
}

func (h *handler) moveMessages(w http.ResponseWriter, r *http.Request, c Caller) error {
	return h.copyOrMove(w, r, c, h.cfg.Store.Move)
}

type copyFunc func(ctx context.Context, id store.AccountID, src string, uids []uint32, dst string) ([]store.UIDPair, error)

func (h *handler) copyOrMove(w http.ResponseWriter, r *http.Request, c Caller, fn copyFunc) error {
	req, err := readRequest(r, DecodeCopyRequest)
	if err != nil {
		return err
	}
	pairs, err := fn(r.Context(), c.Account, req.Src, req.UIDs, req.Dst)
	if err != nil {
		return err
	}
	if pairs == nil {
		pairs = []store.UIDPair{}
	}
	return writeJSON(w, pairs)
}

func (h *handler) expunge(w http.ResponseWriter, r *http.Request, c Caller) error {
	req, err := readRequest(r, DecodeExpungeRequest)
	if err != nil {
		return err
	}
	uids, err := h.cfg.Store.Expunge(r.Context(), c.Account, req.Mailbox, req.UIDs)
	if err != nil {
		return err
	}
	if uids == nil {
		uids = []uint32{}
	}
	return writeJSON(w, uids)
}

// headerBlobs answers a batch as frames, one per requested id, in order.
// The whole batch is fetched before the first byte is written, so a missing
// id yields a clean error instead of a truncated response.
func (h *handler) headerBlobs(w http.ResponseWriter, r *http.Request, c Caller) error {
	req, err := readRequest(r, DecodeHeaderBlobsRequest)
	if err != nil {
		return err
	}
	blobs, err := h.cfg.Store.HeaderBlobs(r.Context(), c.Account, req.IDs)
	if err != nil {
		return err
	}
	total := 0
	for _, bl := range blobs {
		total += frameHeaderLen + len(bl)
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(total))
	for _, bl := range blobs {
		if err := writeFrame(w, bl); err != nil {
			return err
		}
	}
	return nil
}

func (h *handler) bodyBlob(w http.ResponseWriter, r *http.Request, c Caller) error {
	id, err := queryUint(r, "id", 0)
	if err != nil {
		return err
	}
	if id == 0 {
		return invalidf("query parameter id is required")
	}
	blob, err := h.cfg.Store.BodyBlob(r.Context(), c.Account, store.MessageID(id))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(blob)))
	_, err = w.Write(blob)
	return err
}

// appendOne is Store.Append through the write gate.
func (h *handler) appendOne(ctx context.Context, id store.AccountID, mailbox string, msg store.NewMessage) (store.MessageMeta, error) {
	start := h.gate.enter()
	defer h.gate.exit(start)
	return h.cfg.Store.Append(ctx, id, mailbox, msg)
}
