package bridge

import (
	"strings"
	"sync"
	"time"
)

// DefaultSentWindow is how long the router remembers a sent Message-ID.
// Thunderbird APPENDs its own Sent copy seconds after the SMTP 250; ten
// minutes covers slow links and a client retrying after a timeout.
const DefaultSentWindow = 10 * time.Minute

// maxSentRemembered bounds the memory of the dedup table; beyond it the
// oldest entries go first (a flood of sends only costs a duplicate copy).
const maxSentRemembered = 10000

// sentRecord is what the router remembers of one submitted message.
type sentRecord struct {
	at      time.Time
	sentUID uint32          // UID of the Sent copy, 0 until it is stored
	done    map[string]bool // recipients (lower-cased) already committed
}

// sentDedup remembers recently submitted Message-IDs for a window, so that
// (1) a client's own APPEND of the same message to Sent is not stored a
// second time, and (2) a client retrying a submission that failed half-way
// (one recipient's delivery committed, another's not) does not deliver the
// committed ones twice. It lives in memory only: after a restart the window
// is over for practical purposes, and who-wrote-what is not written down.
type sentDedup struct {
	window time.Duration
	now    func() time.Time

	mu    sync.Mutex
	byID  map[string]*sentRecord
	order []string // Message-IDs in insertion order, for expiry
}

func newSentDedup(window time.Duration, now func() time.Time) *sentDedup {
	if window <= 0 {
		window = DefaultSentWindow
	}
	return &sentDedup{window: window, now: now, byID: map[string]*sentRecord{}}
}

// dedupKey canonicalises a Message-ID: case and surrounding space do not
// make two copies different messages to a client.
func dedupKey(msgID string) string { return strings.ToLower(strings.TrimSpace(msgID)) }

// expireLocked drops entries older than the window and beyond the bound.
func (d *sentDedup) expireLocked() {
	cut := d.now().Add(-d.window)
	i := 0
	for ; i < len(d.order); i++ {
		r := d.byID[d.order[i]]
		if r.at.After(cut) && len(d.order)-i <= maxSentRemembered {
			break
		}
		// Each live key has exactly one place in order (records are only
		// added when absent and only removed here), so this is its entry.
		delete(d.byID, d.order[i])
	}
	d.order = d.order[i:]
}

// getLocked returns the live record of msgID, or nil.
func (d *sentDedup) getLocked(msgID string) *sentRecord {
	d.expireLocked()
	return d.byID[dedupKey(msgID)]
}

// committed reports whether rcpt's copy of msgID was already committed.
func (d *sentDedup) committed(msgID, rcpt string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.getLocked(msgID)
	return r != nil && r.done[strings.ToLower(rcpt)]
}

// sentUID returns the UID of the stored Sent copy of msgID, if any.
func (d *sentDedup) sentUID(msgID string) (uint32, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.getLocked(msgID)
	if r == nil || r.sentUID == 0 {
		return 0, false
	}
	return r.sentUID, true
}

// recordLocked returns msgID's record, creating it.
func (d *sentDedup) recordLocked(msgID string) *sentRecord {
	k := dedupKey(msgID)
	r := d.getLocked(k)
	if r == nil {
		r = &sentRecord{at: d.now(), done: map[string]bool{}}
		d.byID[k] = r
		d.order = append(d.order, k)
		d.expireLocked() // keeps the bound, dropping the oldest
	}
	return r
}

// markCommitted records that the copies for rcpts are durably stored.
func (d *sentDedup) markCommitted(msgID string, rcpts []string) {
	if msgID == "" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.recordLocked(msgID)
	for _, a := range rcpts {
		r.done[strings.ToLower(a)] = true
	}
}

// markSent records the UID of the Sent copy.
func (d *sentDedup) markSent(msgID string, uid uint32) {
	if msgID == "" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.recordLocked(msgID).sentUID = uid
}
