package imapd

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"smessenger/bridge"
)

// stateKey names one mailbox of one account.
type stateKey struct {
	view    bridge.View
	mailbox string
}

// msgMeta is what a selected mailbox keeps of each message: no summary.
// A 50,000-message INBOX so costs a few MB for as long as it is selected;
// FETCH and SEARCH read the summaries they need from the view in batches
// (see summaryBatch) and drop them when the batch is answered.
type msgMeta struct {
	UID          uint32
	Flags        []string
	InternalDate time.Time
	Size         int64
}

func toMeta(m bridge.MessageInfo) msgMeta {
	return msgMeta{UID: m.UID, Flags: m.Flags, InternalDate: m.InternalDate, Size: m.Size}
}

// compact converts a listing to what the state keeps.
func compact(list []bridge.MessageInfo) []msgMeta {
	out := make([]msgMeta, len(list))
	for i, m := range list {
		out[i] = toMeta(m)
	}
	return out
}

// mailboxState is the server-side view of a selected mailbox, shared by every
// session of the account that selected it: the message list in UID order, in
// step with one imapserver.MailboxTracker that turns changes into the
// EXISTS / EXPUNGE / FETCH FLAGS responses each session owes its client.
//
// Lock order: mu, then the tracker's own locks. Every tracker Queue* call is
// made with mu held for writing, and every Encode/DecodeSeqNum with mu held
// for reading, so sequence numbers and msgs never disagree.
type mailboxState struct {
	srv  *Server
	key  stateKey    // key.mailbox changes on RENAME: written with srv.mu and mu held
	refs int         // guarded by srv.mu
	view bridge.View // key.view, readable without a lock
	// uidValidity identifies the mailbox across renames: the store keeps it.
	uidValidity uint32

	mu      sync.RWMutex
	msgs    []msgMeta
	maxUID  uint32 // highest UID ever shown: older ones are never re-added
	deleted bool
	tracker *imapserver.MailboxTracker
	idlers  map[chan struct{}]struct{} // sessions in IDLE, woken after each change

	cancelWatch func()
	done        chan struct{}
}

// acquire returns the shared state of (view, mailbox), creating and loading
// it on first use. Release it with release.
func (s *Server) acquire(ctx context.Context, view bridge.View, mailbox string, uidValidity uint32) (*mailboxState, error) {
	key := stateKey{view: view, mailbox: mailbox}
	s.mu.Lock()
	if st, ok := s.states[key]; ok {
		st.refs++
		s.mu.Unlock()
		return st, nil
	}
	s.mu.Unlock()

	// Watch before listing so nothing that happens in between is missed;
	// applying an update twice is harmless.
	updates, cancel := view.Watch(mailbox)
	gate := s.gates.of(mailbox)
	gate.Lock()
	list, err := view.MessageList(ctx, mailbox)
	gate.Unlock()
	if err != nil {
		cancel()
		drain(updates)
		return nil, err
	}
	msgs := compact(list)
	st := &mailboxState{srv: s, key: key, refs: 1, msgs: msgs, cancelWatch: cancel, uidValidity: uidValidity, view: view,
		done: make(chan struct{}), idlers: map[chan struct{}]struct{}{}, tracker: imapserver.NewMailboxTracker(uint32(len(msgs)))}
	if n := len(msgs); n > 0 {
		st.maxUID = msgs[n-1].UID
	}

	s.mu.Lock()
	if other, ok := s.states[key]; ok {
		// Another session loaded it meanwhile; use that one.
		other.refs++
		s.mu.Unlock()
		cancel()
		drain(updates)
		return other, nil
	}
	s.states[key] = st
	s.mu.Unlock()
	go st.watch(updates)
	return st, nil
}

func drain(ch <-chan bridge.Update) {
	go func() {
		for range ch {
		}
	}()
}

// release drops one reference; the last one stops the watcher.
func (s *Server) release(st *mailboxState) {
	s.mu.Lock()
	st.refs--
	last := st.refs == 0
	if last && s.states[st.key] == st {
		delete(s.states, st.key)
	}
	s.mu.Unlock()
	if last {
		st.stop()
	}
}

// name is the mailbox's current name.
func (st *mailboxState) name() string {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.key.mailbox
}

// renamed follows a RENAME of oldName (made by any session of view) to
// newName: the states of the mailbox and of its children are re-keyed, so
// the sessions that have them selected go on under the new name instead of
// failing on the old one (RFC 9051 section 6.3.6 leaves the selection alone).
func (s *Server) renamed(view bridge.View, oldName, newName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, st := range s.states {
		if key.view != view {
			continue
		}
		if to, ok := renamedName(key.mailbox, oldName, newName); ok {
			s.rekeyLocked(st, to)
		}
	}
}

// renamedName is what RENAME oldName newName makes of name: the mailbox
// itself and its children move ("old/x" → "new/x"), nothing else does
// ("older" stays).
func renamedName(name, oldName, newName string) (string, bool) {
	switch {
	case name == oldName:
		return newName, true
	case strings.HasPrefix(name, oldName+string(delim)):
		return newName + name[len(oldName):], true
	}
	return name, false
}

// rekey gives st a new mailbox name, unless another state has it already
// (then st keeps failing with the old name until it is unselected).
func (s *Server) rekey(st *mailboxState, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rekeyLocked(st, name)
}

func (s *Server) rekeyLocked(st *mailboxState, name string) {
	old := st.key
	to := stateKey{view: old.view, mailbox: name}
	if old == to {
		return
	}
	if _, taken := s.states[to]; taken {
		return
	}
	if s.states[old] == st {
		delete(s.states, old)
		s.states[to] = st
	}
	st.mu.Lock()
	st.key = to
	st.mu.Unlock()
}

func (st *mailboxState) stop() {
	st.cancelWatch()
	<-st.done
}

// watch applies the view's updates until the channel is closed. Updates that
// are already queued are applied together, so a burst (a first sync) costs
// one listing instead of one per message.
func (st *mailboxState) watch(updates <-chan bridge.Update) {
	defer close(st.done)
	for u := range updates {
		batch := []bridge.Update{u}
	more:
		for len(batch) < 4096 {
			select {
			case u2, ok := <-updates:
				if !ok {
					break more
				}
				batch = append(batch, u2)
			default:
				break more
			}
		}
		st.safeApply(batch)
	}
}

// safeApply keeps the watcher alive across a panic in one batch; the panic
// is counted so tests fail.
func (st *mailboxState) safeApply(batch []bridge.Update) {
	defer func() {
		if v := recover(); v != nil {
			st.srv.recovered("mailbox watcher", v)
		}
	}()
	st.apply(batch)
}

func (st *mailboxState) apply(batch []bridge.Update) {
	added := false
	for _, u := range batch {
		if u.Mailbox != "" && u.Mailbox != st.name() && u.Kind != bridge.UpdateMailboxDeleted {
			// The view names updates by the mailbox's current name: it
			// was renamed, maybe by another device.
			st.srv.rekey(st, u.Mailbox)
		}
		switch u.Kind {
		case bridge.UpdateAdded:
			added = true
		case bridge.UpdateFlags:
			st.setFlags(u.UID, u.Flags, nil)
		case bridge.UpdateExpunged:
			st.expunge([]uint32{u.UID})
		case bridge.UpdateMailboxDeleted:
			st.mu.Lock()
			st.deleted = true
			st.mu.Unlock()
			st.expunge(st.allUIDs())
		}
	}
	if added {
		st.refresh(st.srv.ctx)
	}
}

// refresh lists the mailbox and announces what is new, once no APPEND,
// COPY or MOVE into it is in flight through this server (see appendGates).
func (st *mailboxState) refresh(ctx context.Context) {
	name := st.name()
	gate := st.srv.gates.of(name)
	gate.Lock()
	defer gate.Unlock()
	msgs, err := st.view.MessageList(ctx, name)
	if err != nil {
		st.srv.log.Warn("imapd: listing after an update failed", "err", err)
		return
	}
	st.addNew(msgs)
}

func (st *mailboxState) allUIDs() []uint32 {
	st.mu.RLock()
	defer st.mu.RUnlock()
	uids := make([]uint32, len(st.msgs))
	for i, m := range st.msgs {
		uids[i] = m.UID
	}
	return uids
}

// addNew appends the messages of list (a full listing in UID order) that are
// newer than anything shown so far. Sequence numbers only grow at the end, so
// a UID below maxUID that was never shown is left for the next SELECT: a
// race with our own expunge, or a lower UID that reached the view late by a
// way appendGates cannot order (IMAP has no way to insert it; RFC 9051
// section 2.3.1.1 wants UIDs to grow with sequence numbers).
func (st *mailboxState) addNew(list []bridge.MessageInfo) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.deleted {
		return
	}
	i := sort.Search(len(list), func(i int) bool { return list[i].UID > st.maxUID })
	for _, m := range list[i:] {
		st.msgs = append(st.msgs, toMeta(m))
		st.maxUID = m.UID
		// One EXISTS per message: SessionTracker.EncodeSeqNum only hides
		// unannounced messages correctly for increments of one.
		st.tracker.QueueNumMessages(uint32(len(st.msgs)))
	}
	st.wake()
}

// wake tells idling sessions to poll their trackers. Call with mu held.
func (st *mailboxState) wake() {
	for ch := range st.idlers {
		select {
		case ch <- struct{}{}:
		default: // a wake-up is already pending; it will see this change too
		}
	}
}

// index returns the position of uid in msgs, or -1. Call with mu held.
func (st *mailboxState) index(uid uint32) int {
	i, ok := slices.BinarySearchFunc(st.msgs, uid, func(m msgMeta, u uint32) int {
		return int(int64(m.UID) - int64(u))
	})
	if !ok {
		return -1
	}
	return i
}

// setFlags records uid's new flags and tells every session but source.
// Unchanged flags (the echo of our own STORE) are not announced again.
func (st *mailboxState) setFlags(uid uint32, flags []string, source *imapserver.SessionTracker) {
	st.mu.Lock()
	defer st.mu.Unlock()
	i := st.index(uid)
	if i < 0 || sameFlags(st.msgs[i].Flags, flags) {
		return
	}
	st.msgs[i].Flags = slices.Clone(flags)
	st.tracker.QueueMessageFlags(uint32(i+1), imap.UID(uid), toFlags(flags), source)
	st.wake()
}

// expunge removes uids and queues an EXPUNGE for each, highest sequence
// number first so every number queued is still valid when it is queued.
func (st *mailboxState) expunge(uids []uint32) {
	st.mu.Lock()
	defer st.mu.Unlock()
	var pos []int
	for _, u := range uids {
		if i := st.index(u); i >= 0 {
			pos = append(pos, i)
		}
	}
	if len(pos) == 0 {
		return
	}
	sort.Sort(sort.Reverse(sort.IntSlice(pos)))
	pos = slices.Compact(pos)
	for _, i := range pos {
		st.tracker.QueueExpunge(uint32(i + 1))
	}
	gone := make(map[int]bool, len(pos))
	for _, i := range pos {
		gone[i] = true
	}
	kept := st.msgs[:0]
	for i, m := range st.msgs {
		if !gone[i] {
			kept = append(kept, m)
		}
	}
	clear(st.msgs[len(kept):])
	st.msgs = kept
	st.wake()
}

func sameFlags(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, f := range a {
		if !hasFlag(b, f) {
			return false
		}
	}
	return true
}

func hasFlag(flags []string, f string) bool {
	for _, g := range flags {
		if strings.EqualFold(g, f) {
			return true
		}
	}
	return false
}

func toFlags(flags []string) []imap.Flag {
	out := make([]imap.Flag, len(flags))
	for i, f := range flags {
		out[i] = imap.Flag(f)
	}
	return out
}
