package imapd

import (
	"errors"
	"slices"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"smessenger/bridge"
	"smessenger/internal/store"
	"smessenger/pgp"
)

// systemFlags are the flags every mailbox accepts.
var systemFlags = []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft}

// Select implements imapserver.Session.
func (s *session) Select(mailbox string, options *imap.SelectOptions) (*imap.SelectData, error) {
	s.unselect()
	name := cleanName(mailbox)
	info, err := s.view.Mailbox(s.ctx, name)
	if err != nil {
		return nil, s.toIMAP("select", err, false)
	}
	st, err := s.srv.acquire(s.ctx, s.view, info.Name, info.UIDValidity)
	if err != nil {
		return nil, s.toIMAP("select", err, false)
	}
	st.mu.RLock()
	tr := st.tracker.NewSession()
	data := &imap.SelectData{NumMessages: uint32(len(st.msgs)), UIDValidity: info.UIDValidity}
	uidNext := info.UIDNext
	if uidNext <= st.maxUID {
		uidNext = st.maxUID + 1
	}
	data.UIDNext = imap.UID(uidNext)
	keywords := map[string]bool{}
	for i, m := range st.msgs {
		if data.FirstUnseenSeqNum == 0 && !hasFlag(m.Flags, string(imap.FlagSeen)) {
			data.FirstUnseenSeqNum = uint32(i + 1)
		}
		for _, f := range m.Flags {
			if len(f) > 0 && f[0] != '\\' {
				keywords[f] = true
			}
		}
	}
	st.mu.RUnlock()
	data.Flags = slices.Clone(systemFlags)
	for k := range keywords {
		data.Flags = append(data.Flags, imap.Flag(k))
	}
	data.PermanentFlags = append(slices.Clone(data.Flags), imap.FlagWildcard)
	s.sel = &selection{st: st, tr: tr, readOnly: options.ReadOnly}
	return data, nil
}

// Unselect implements imapserver.Session.
func (s *session) Unselect() error {
	s.unselect()
	return nil
}

func (s *session) unselect() {
	if s.sel == nil {
		return
	}
	st := s.sel.st
	st.mu.Lock()
	s.sel.tr.Close()
	st.mu.Unlock()
	s.srv.release(st)
	s.sel = nil
}

// Poll implements imapserver.Session.
func (s *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	if s.sel == nil {
		return nil
	}
	return s.sel.tr.Poll(w, allowExpunge)
}

// Idle implements imapserver.Session. It registers for wake-ups before the
// first poll, so a change made just as IDLE starts is not left queued
// (SessionTracker.Idle has that window).
func (s *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	if s.sel == nil {
		<-stop
		return nil
	}
	st, tr := s.sel.st, s.sel.tr
	wake := make(chan struct{}, 1)
	st.mu.Lock()
	st.idlers[wake] = struct{}{}
	st.mu.Unlock()
	defer func() {
		st.mu.Lock()
		delete(st.idlers, wake)
		st.mu.Unlock()
	}()
	for {
		if err := tr.Poll(w, true); err != nil {
			return err
		}
		select {
		case <-wake:
		case <-stop:
			return nil
		}
	}
}

// target is one message a command acts on, with the sequence number the
// client knows it by.
type target struct {
	seq uint32
	msg msgMeta
	sum *pgp.Summary // loaded by withSummaries, when the command needs it
}

// resolve maps a client's sequence or UID set to messages. Messages the
// client has not been told about yet (no EXISTS) are left out.
func (s *session) resolve(numSet imap.NumSet) []target {
	st, tr := s.sel.st, s.sel.tr
	st.mu.RLock()
	defer st.mu.RUnlock()
	var out []target
	switch set := numSet.(type) {
	case imap.SeqSet:
		maxSeq := s.clientCount()
		for _, r := range set {
			start, stop := staticRange(r.Start, r.Stop, maxSeq)
			for seq := start; seq <= stop && seq != 0; seq++ {
				if srv := tr.DecodeSeqNum(seq); srv != 0 {
					out = append(out, target{seq: seq, msg: st.msgs[srv-1]})
				}
				if seq == ^uint32(0) {
					break
				}
			}
		}
		slices.SortFunc(out, func(a, b target) int { return int(int64(a.seq) - int64(b.seq)) })
		out = slices.CompactFunc(out, func(a, b target) bool { return a.seq == b.seq })
	case imap.UIDSet:
		var maxUID uint32
		if n := len(st.msgs); n > 0 {
			maxUID = st.msgs[n-1].UID
		}
		static := make(imap.UIDSet, len(set))
		for i, r := range set {
			a, b := staticRange(uint32(r.Start), uint32(r.Stop), maxUID)
			static[i] = imap.UIDRange{Start: imap.UID(a), Stop: imap.UID(b)}
		}
		for i, m := range st.msgs {
			if !static.Contains(imap.UID(m.UID)) {
				continue
			}
			if seq := tr.EncodeSeqNum(uint32(i + 1)); seq != 0 {
				out = append(out, target{seq: seq, msg: m})
			}
		}
	}
	return out
}

// clientCount is the highest sequence number the client knows of. Call with
// st.mu held.
func (s *session) clientCount() uint32 {
	for i := len(s.sel.st.msgs); i > 0; i-- {
		if seq := s.sel.tr.EncodeSeqNum(uint32(i)); seq != 0 {
			return seq
		}
	}
	return 0
}

// staticRange replaces "*" (0) by max and orders the bounds.
func staticRange(start, stop, max uint32) (uint32, uint32) {
	if start == 0 {
		start = max
	}
	if stop == 0 {
		stop = max
	}
	if start > stop {
		start, stop = stop, start
	}
	if start == 0 && stop > 0 {
		start = 1
	}
	return start, stop
}

func uidsOf(ts []target) []uint32 {
	uids := make([]uint32, len(ts))
	for i, t := range ts {
		uids[i] = t.msg.UID
	}
	return uids
}

// Expunge implements imapserver.Session. The EXPUNGE responses reach this
// client through the tracker, which imapserver polls before the tagged OK.
func (s *session) Expunge(_ *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	if s.sel.readOnly {
		// CLOSE on an EXAMINEd mailbox must not expunge (RFC 9051 6.4.2).
		return nil
	}
	var list []uint32
	if uids != nil {
		// UID EXPUNGE removes only the messages of the set that are marked
		// \Deleted (RFC 4315 section 2.1); the view removes what it is given.
		for _, t := range s.resolve(*uids) {
			if hasFlag(t.msg.Flags, string(imap.FlagDeleted)) {
				list = append(list, t.msg.UID)
			}
		}
		if len(list) == 0 {
			return nil
		}
	}
	var removed []uint32
	err := s.onSelected(func(mailbox string) (err error) {
		removed, err = s.view.Expunge(s.ctx, mailbox, list)
		return err
	})
	if err != nil {
		return s.toIMAP("expunge", err, false)
	}
	s.sel.st.expunge(removed)
	return nil
}

// Store implements imapserver.Session.
func (s *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, _ *imap.StoreOptions) error {
	if s.sel.readOnly {
		return errReadOnly
	}
	ts := s.resolve(numSet)
	if len(ts) == 0 {
		return nil
	}
	var names []string
	for _, f := range flags.Flags {
		if f != flagRecent && !hasFlag(names, string(f)) {
			names = append(names, string(f))
		}
	}
	var op bridge.FlagOp
	switch flags.Op {
	case imap.StoreFlagsAdd:
		op = flagsAdd
	case imap.StoreFlagsDel:
		op = flagsRemove
	default:
		op = flagsSet
	}
	err := s.onSelected(func(mailbox string) error {
		return s.view.StoreFlags(s.ctx, mailbox, uidsOf(ts), op, names)
	})
	if err != nil {
		return s.toIMAP("store", err, false)
	}
	for i := range ts {
		ts[i].msg.Flags = applyFlags(ts[i].msg.Flags, op, names)
		s.sel.st.setFlags(ts[i].msg.UID, ts[i].msg.Flags, s.sel.tr)
	}
	if flags.Silent {
		return nil
	}
	for _, t := range ts {
		rw := w.CreateMessage(t.seq)
		rw.WriteUID(imap.UID(t.msg.UID))
		rw.WriteFlags(toFlags(t.msg.Flags))
		if err := rw.Close(); err != nil {
			return err
		}
	}
	return nil
}

// applyFlags computes what StoreFlags leaves on a message, so STORE can
// answer without waiting for the view's update.
func applyFlags(cur []string, op bridge.FlagOp, flags []string) []string {
	switch op {
	case flagsSet:
		return slices.Clone(flags)
	case flagsAdd:
		out := slices.Clone(cur)
		for _, f := range flags {
			if !hasFlag(out, f) {
				out = append(out, f)
			}
		}
		return out
	default:
		var out []string
		for _, f := range cur {
			if !hasFlag(flags, f) {
				out = append(out, f)
			}
		}
		return out
	}
}

// Copy implements imapserver.Session; COPYUID (RFC 4315) carries the
// server's UIDs.
func (s *session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	ts := s.resolve(numSet)
	if len(ts) == 0 {
		return nil, nil
	}
	name := cleanName(dest)
	var uidValidity uint32
	var pairs []bridge.UIDPair
	err := s.srv.gates.adding(name, func() error {
		return s.onSelected(func(mailbox string) (err error) {
			uidValidity, pairs, err = s.view.Copy(s.ctx, mailbox, uidsOf(ts), name)
			return err
		})
	})
	if err != nil {
		return nil, s.toIMAP("copy", err, true)
	}
	s.refreshIfSelected(name)
	return copyData(uidValidity, pairs), nil
}

// Move implements imapserver.SessionMove (RFC 6851).
func (s *session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	if s.sel.readOnly {
		return errReadOnly
	}
	ts := s.resolve(numSet)
	if len(ts) == 0 {
		return nil
	}
	var uidValidity uint32
	var pairs []bridge.UIDPair
	to := cleanName(dest)
	err := s.srv.gates.adding(to, func() error {
		return s.onSelected(func(mailbox string) (err error) {
			uidValidity, pairs, err = s.view.Move(s.ctx, mailbox, uidsOf(ts), to)
			return err
		})
	})
	if err != nil {
		return s.toIMAP("move", err, true)
	}
	if err := w.WriteCopyData(copyData(uidValidity, pairs)); err != nil {
		return err
	}
	moved := make([]uint32, len(pairs))
	for i, p := range pairs {
		moved[i] = p.Src
	}
	// The EXPUNGEs follow through the tracker, polled before the tagged OK.
	s.sel.st.expunge(moved)
	return nil
}

func copyData(uidValidity uint32, pairs []bridge.UIDPair) *imap.CopyData {
	data := &imap.CopyData{UIDValidity: uidValidity}
	for _, p := range pairs {
		data.SourceUIDs.AddNum(imap.UID(p.Src))
		data.DestUIDs.AddNum(imap.UID(p.Dst))
	}
	return data
}

// onSelected runs fn on the selected mailbox under its current name. If the
// view no longer knows that name, the mailbox was renamed by another device
// before its update reached us, or deleted: a rename is followed (the
// mailbox is found by its UIDVALIDITY, which RENAME keeps) and fn runs once
// more; a deletion ends in errMailboxGone, so the client is told plainly
// instead of being sent a bare "no such mailbox" for a name it never typed.
func (s *session) onSelected(fn func(mailbox string) error) error {
	st := s.sel.st
	err := fn(st.name())
	if !errors.Is(err, store.ErrMailboxNotFound) {
		return err
	}
	boxes, lerr := s.view.Mailboxes(s.ctx)
	if lerr != nil {
		return err
	}
	var found []string
	for _, b := range boxes {
		if b.Name == st.name() {
			return err // still there: the missing one is COPY's destination
		}
		if b.UIDValidity == st.uidValidity {
			found = append(found, b.Name)
		}
	}
	if len(found) != 1 {
		return errMailboxGone
	}
	s.srv.rekey(st, found[0])
	if err := fn(st.name()); !errors.Is(err, store.ErrMailboxNotFound) {
		return err
	}
	return errMailboxGone
}

// flagRecent is IMAP4rev1's \Recent, which this server never sets.
const flagRecent imap.Flag = `\Recent`
