package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	bolt "go.etcd.io/bbolt"

	"smessenger/internal/store"
	"smessenger/pgp"
)

// maxBodyBlob bounds a downloaded body blob: pgp's plaintext cap plus room
// for OpenPGP framing.
const maxBodyBlob = pgp.DefaultMaxSize + 1<<20

// Body returns the decrypted message; see View.
func (a *Account) Body(ctx context.Context, mailbox string, uid uint32) ([]byte, error) {
	a.mu.RLock()
	b, err := a.lookup(mailbox)
	var e *entry
	var mbID uint64
	if err == nil {
		mbID = b.info.ID
		if i, ok := b.find(uid); ok {
			e = b.msgs[i]
		} else {
			err = fmt.Errorf("bridge: %s UID %d: %w", mailbox, uid, store.ErrMessageNotFound)
		}
	}
	var id store.MessageID
	var cached bool
	if e != nil {
		id, cached = e.id, e.hasBody
	}
	a.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	if body := a.bodies.get(id); body != nil {
		return body, nil
	}
	if cached {
		body, err := a.cache.getBody(id)
		if err == nil && body != nil {
			a.bodies.put(id, body)
			return body, nil
		}
		if err != nil {
			a.log.Warn("bridge: cached body unreadable; downloading it again", "err", err)
		}
	}
	body, err := a.flights.do(id, func() ([]byte, error) { return a.downloadBody(ctx, mbID, e) })
	if err == nil {
		a.bodies.put(id, body)
	}
	return body, err
}

// downloadBody fetches, opens and caches the body of e (on disk; Body adds
// it to the in-memory LRU, prefetch does not, so it cannot flush it).
func (a *Account) downloadBody(ctx context.Context, mbID uint64, e *entry) ([]byte, error) {
	a.mu.RLock()
	probe := &entry{uid: e.uid, id: e.id, size: e.size, decrypted: e.decrypted, external: e.external}
	a.mu.RUnlock()
	probe.sum = a.summaryOf(e.id)
	var herr error
	if probe.sum == nil {
		herr = errRecord // recompute it from the body
	}
	body, changed, err := a.materialize(ctx, probe, herr)
	if err != nil {
		return nil, err
	}
	a.changeMu.Lock()
	defer a.changeMu.Unlock()
	a.mu.RLock()
	cur := *e
	live := false
	if b := a.boxes[mbID]; b != nil {
		i, ok := b.find(e.uid)
		live = ok && b.msgs[i] == e
	}
	a.mu.RUnlock()
	if !live {
		// Expunged while we downloaded: caching it would resurrect it.
		return body, nil
	}
	if changed {
		cur.size, cur.decrypted, cur.external = probe.size, true, probe.external
	}
	err = a.cache.db.Update(func(tx *bolt.Tx) error {
		if changed {
			if err := a.cache.putMessage(tx, mbID, &cur); err != nil {
				return err
			}
			if err := a.cache.putSummary(tx, e.id, probe.sum); err != nil {
				return err
			}
		}
		if err := a.cache.putBody(tx, e.id, body); err != nil {
			return err
		}
		return a.putSeqTx(tx, 0)
	})
	if err != nil {
		a.log.Warn("bridge: could not cache a body", "err", err)
		return body, nil
	}
	a.mu.Lock()
	e.hasBody = true
	if changed {
		e.size, e.decrypted, e.external = cur.size, true, cur.external
	}
	a.mu.Unlock()
	if changed {
		a.sums.put(e.id, probe.sum)
	}
	return body, nil
}

// materialize downloads e's body blob and turns it into the message shown
// to the user, following the decryption rules: a sealed body is opened; a
// message that arrived encrypted from outside is decrypted; a failure gives
// a placeholder. When the shown message differs from what e's summary
// describes (or headerErr says the summary could not be read), e's summary
// and size are recomputed from it and changed is true. Only network and
// server errors are returned.
func (a *Account) materialize(ctx context.Context, e *entry, headerErr error) (body []byte, changed bool, err error) {
	rc, err := a.srv.BodyBlob(ctx, e.id)
	if err != nil {
		return nil, false, fmt.Errorf("bridge: download body: %w", err)
	}
	blob, err := readBlob(rc, e.size, maxBodyBlob+1)
	rc.Close()
	if err != nil {
		return nil, false, fmt.Errorf("bridge: download body: %w", err)
	}
	var hdr []byte
	if e.sum != nil {
		hdr = e.sum.Header
	}
	// external: the stored message arrived OpenPGP-encrypted from outside.
	// Once decrypted, the summary describes the decrypted form and the flag
	// remembers that the body must be decrypted again when re-downloaded.
	external := e.external || (!e.decrypted && e.sum != nil && e.sum.Encrypted)
	var plain []byte
	oerr := pgp.ErrTooLarge
	if len(blob) <= maxBodyBlob {
		plain, oerr = pgp.OpenBodyBlob(blob, a.key)
	}
	switch {
	case oerr != nil:
		a.log.Info("bridge: body blob could not be opened", "err", oerr)
		body, changed = placeholder(hdr, decryptReason(oerr)), true
	case external:
		body, changed = a.decryptExternal(ctx, plain, hdr), !e.decrypted
	case hasOurResult(plain):
		// Plain mail claiming a result of ours: the claim is forged.
		body, changed = stripOurResults(plain), !e.decrypted || headerErr != nil
	default:
		body, changed = plain, headerErr != nil
	}
	e.external = external
	if changed {
		sum, serr := pgp.Summarize(body)
		if serr != nil {
			body = placeholder(hdr, "its content could not be parsed")
			if sum, serr = pgp.Summarize(body); serr != nil {
				return nil, false, fmt.Errorf("bridge: summarize placeholder: %w", serr)
			}
		}
		e.sum, e.size, e.decrypted = sum, int64(len(body)), true
	}
	return body, changed, nil
}

// readBlob reads at most limit bytes of r into a buffer sized from hint
// (the message's size, which the blob exceeds by a little OpenPGP
// framing), so a large body is not read through io.ReadAll's doubling
// buffers: those made several transient copies of every attachment.
func readBlob(r io.Reader, hint, limit int64) ([]byte, error) {
	n := min(max(hint+hint/64+4096, 4096), limit)
	buf := make([]byte, 0, n)
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) >= limit {
				return buf, nil
			}
			grow := min(max(len(buf)/4, 64<<10), int(limit)-len(buf))
			buf = slices.Grow(buf, grow)
		}
		m, err := r.Read(buf[len(buf):min(cap(buf), int(limit))])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// isGone reports a server answer meaning the message no longer exists.
func isGone(err error) bool {
	return errors.Is(err, store.ErrMessageNotFound) || errors.Is(err, store.ErrNotFound)
}
