package api

import (
	"errors"
	"net/http"

	"smessenger/internal/store"
)

func (h *handler) whoAmI(w http.ResponseWriter, r *http.Request, c Caller) error {
	acct, err := h.cfg.Store.GetAccount(r.Context(), c.Account)
	if err != nil {
		return err
	}
	return writeJSON(w, WhoAmI{Account: acct.ID, Addresses: acct.Addresses, DeviceID: c.DeviceID})
}

// lookupKey is the directory: the server answers only for its own users
// (it does not do WKD lookups for others on a bridge's behalf).
func (h *handler) lookupKey(w http.ResponseWriter, r *http.Request, c Caller) error {
	addr := r.URL.Query().Get("address")
	if err := CheckAddress(addr); err != nil {
		return err
	}
	id, err := h.cfg.Store.LookupAddress(r.Context(), store.NormalizeAddress(addr))
	if err != nil {
		return err
	}
	key, err := h.cfg.Store.PublicKey(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, KeyResponse{Key: key, Internal: true})
}

func (h *handler) setKey(w http.ResponseWriter, r *http.Request, c Caller) error {
	key, err := readBody(r)
	if err != nil {
		return err
	}
	if len(key) == 0 {
		return invalidf("empty public key")
	}
	acct, err := h.cfg.Store.GetAccount(r.Context(), c.Account)
	if err != nil {
		return err
	}
	if h.cfg.ValidateKey != nil {
		if key, err = h.cfg.ValidateKey(r.Context(), acct, key); err != nil {
			if errors.Is(err, store.ErrInvalid) {
				// The validator's own text describes the client's key, but
				// it comes from another package: send a fixed text.
				return invalidf("public key rejected: not an OpenPGP public key with a user id for %s", acct.Primary)
			}
			return err
		}
	}
	if err := h.cfg.Store.SetPublicKey(r.Context(), c.Account, key); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) listMailboxes(w http.ResponseWriter, r *http.Request, c Caller) error {
	mbs, err := h.cfg.Store.ListMailboxes(r.Context(), c.Account)
	if err != nil {
		return err
	}
	return writeJSON(w, mbs)
}

func (h *handler) createMailbox(w http.ResponseWriter, r *http.Request, c Caller) error {
	req, err := readRequest(r, DecodeMailboxRequest)
	if err != nil {
		return err
	}
	mb, err := h.cfg.Store.CreateMailbox(r.Context(), c.Account, req.Name, store.SpecialNone)
	if err != nil {
		return err
	}
	return writeJSON(w, mb)
}

func (h *handler) renameMailbox(w http.ResponseWriter, r *http.Request, c Caller) error {
	req, err := readRequest(r, DecodeRenameRequest)
	if err != nil {
		return err
	}
	if err := h.cfg.Store.RenameMailbox(r.Context(), c.Account, req.Old, req.New); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) deleteMailbox(w http.ResponseWriter, r *http.Request, c Caller) error {
	req, err := readRequest(r, DecodeMailboxRequest)
	if err != nil {
		return err
	}
	if err := h.cfg.Store.DeleteMailbox(r.Context(), c.Account, req.Name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) subscribe(w http.ResponseWriter, r *http.Request, c Caller) error {
	req, err := readRequest(r, DecodeSubscribeRequest)
	if err != nil {
		return err
	}
	if err := h.cfg.Store.SetSubscribed(r.Context(), c.Account, req.Name, req.Subscribed); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
