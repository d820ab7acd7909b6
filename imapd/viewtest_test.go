package imapd

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"

	"smessenger/bridge"
	"smessenger/internal/store"
	"smessenger/pgp"
)

// memView is an in-memory bridge.View with the real semantics (server UIDs,
// UIDVALIDITY, flags, expunge, coalesced never-dropped Watch), used to drive
// the IMAP layer until tests can run over the real bridge. Calls made on it
// directly play "another device".
type memView struct {
	mu        sync.Mutex
	boxes     map[string]*memBox
	validity  uint32
	watchers  map[string]map[*memWatch]struct{}
	bodyCalls atomic.Int64
	// listCalls counts MessageList calls, summaryCalls Summaries calls and
	// maxSummaryBatch the largest batch of UIDs Summaries was asked for.
	listCalls, summaryCalls, maxSummaryBatch atomic.Int64
}

type memBox struct {
	info bridge.MailboxInfo
	msgs []*memMsg
}

type memMsg struct {
	info bridge.MessageInfo
	raw  []byte
}

var _ bridge.View = (*memView)(nil)

func newMemView() *memView {
	v := &memView{boxes: map[string]*memBox{}, validity: 1000, watchers: map[string]map[*memWatch]struct{}{}}
	for _, b := range [][2]string{{"INBOX", ""}, {"Sent", `\Sent`}, {"Drafts", `\Drafts`}, {"Trash", `\Trash`}, {"Junk", `\Junk`}, {"Archive", `\Archive`}} {
		v.validity++
		v.boxes[b[0]] = &memBox{info: bridge.MailboxInfo{Name: b[0], SpecialUse: b[1], Subscribed: true, UIDValidity: v.validity, UIDNext: 1}}
	}
	return v
}

func (v *memView) box(name string) (*memBox, error) {
	b, ok := v.boxes[name]
	if !ok {
		return nil, fmt.Errorf("memview: %q: %w", name, store.ErrMailboxNotFound)
	}
	return b, nil
}

func (b *memBox) infoLocked() bridge.MailboxInfo {
	in := b.info
	in.Messages = uint32(len(b.msgs))
	in.Unseen, in.Size = 0, 0
	for _, m := range b.msgs {
		if !hasFlag(m.info.Flags, `\Seen`) {
			in.Unseen++
		}
		in.Size += m.info.Size
	}
	return in
}

func (v *memView) Mailboxes(context.Context) ([]bridge.MailboxInfo, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []bridge.MailboxInfo
	for _, b := range v.boxes {
		out = append(out, b.infoLocked())
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].Name == "INBOX") != (out[j].Name == "INBOX") {
			return out[i].Name == "INBOX"
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

func (v *memView) Mailbox(_ context.Context, name string) (bridge.MailboxInfo, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	b, err := v.box(name)
	if err != nil {
		return bridge.MailboxInfo{}, err
	}
	return b.infoLocked(), nil
}

func (v *memView) CreateMailbox(_ context.Context, name string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.boxes[name]; ok {
		return fmt.Errorf("memview: %w", store.ErrMailboxExists)
	}
	v.validity++
	v.boxes[name] = &memBox{info: bridge.MailboxInfo{Name: name, UIDValidity: v.validity, UIDNext: 1}}
	return nil
}

func (v *memView) DeleteMailbox(_ context.Context, name string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if name == "INBOX" {
		return fmt.Errorf("memview: %w", store.ErrMailboxProtected)
	}
	if _, err := v.box(name); err != nil {
		return err
	}
	delete(v.boxes, name)
	v.notify(bridge.Update{Kind: bridge.UpdateMailboxDeleted, Mailbox: name})
	return nil
}

func (v *memView) RenameMailbox(_ context.Context, oldName, newName string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if oldName == "INBOX" {
		return fmt.Errorf("memview: %w", store.ErrMailboxProtected)
	}
	if _, err := v.box(oldName); err != nil {
		return err
	}
	if _, ok := v.boxes[newName]; ok {
		return fmt.Errorf("memview: %w", store.ErrMailboxExists)
	}
	// As the store does: children follow, UIDVALIDITY stays, and (as the
	// bridge's Watch does) watchers follow the mailbox to its new name.
	for name, box := range v.boxes {
		to := ""
		switch {
		case name == oldName:
			to = newName
		case strings.HasPrefix(name, oldName+"/"):
			to = newName + name[len(oldName):]
		default:
			continue
		}
		delete(v.boxes, name)
		box.info.Name = to
		v.boxes[to] = box
		if ws := v.watchers[name]; ws != nil {
			delete(v.watchers, name)
			v.watchers[to] = ws
		}
	}
	return nil
}

func (v *memView) SetSubscribed(_ context.Context, name string, sub bool) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	b, err := v.box(name)
	if err != nil {
		return err
	}
	b.info.Subscribed = sub
	return nil
}

func (v *memView) Messages(_ context.Context, mailbox string) ([]bridge.MessageInfo, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	b, err := v.box(mailbox)
	if err != nil {
		return nil, err
	}
	out := make([]bridge.MessageInfo, len(b.msgs))
	for i, m := range b.msgs {
		out[i] = m.info
		out[i].Flags = slices.Clone(m.info.Flags)
	}
	return out, nil
}

// MessageList is Messages without summaries, as the bridge's is.
func (v *memView) MessageList(ctx context.Context, mailbox string) ([]bridge.MessageInfo, error) {
	v.listCalls.Add(1)
	out, err := v.Messages(ctx, mailbox)
	for i := range out {
		out[i].Summary = nil
	}
	return out, err
}

// Summaries returns the summaries of uids, nil for a UID not in the
// mailbox, and counts the summaries handed out.
func (v *memView) Summaries(_ context.Context, mailbox string, uids []uint32) ([]*pgp.Summary, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	b, err := v.box(mailbox)
	if err != nil {
		return nil, err
	}
	v.summaryCalls.Add(1)
	v.maxSummaryBatch.Store(max(v.maxSummaryBatch.Load(), int64(len(uids))))
	out := make([]*pgp.Summary, len(uids))
	for i, uid := range uids {
		if m := v.find(b, uid); m != nil {
			out[i] = m.info.Summary
		}
	}
	return out, nil
}

func (v *memView) find(b *memBox, uid uint32) *memMsg {
	i, ok := slices.BinarySearchFunc(b.msgs, uid, func(m *memMsg, u uint32) int { return int(int64(m.info.UID) - int64(u)) })
	if !ok {
		return nil
	}
	return b.msgs[i]
}

func (v *memView) Body(_ context.Context, mailbox string, uid uint32) ([]byte, error) {
	v.bodyCalls.Add(1)
	v.mu.Lock()
	defer v.mu.Unlock()
	b, err := v.box(mailbox)
	if err != nil {
		return nil, err
	}
	m := v.find(b, uid)
	if m == nil {
		return nil, fmt.Errorf("memview: uid %d: %w", uid, store.ErrMessageNotFound)
	}
	return m.raw, nil
}

func (v *memView) Append(_ context.Context, mailbox string, raw []byte, flags []string, date time.Time) (uint32, uint32, error) {
	sum := summarize(raw)
	v.mu.Lock()
	defer v.mu.Unlock()
	b, err := v.box(mailbox)
	if err != nil {
		return 0, 0, err
	}
	uid := v.appendLocked(b, raw, flags, date, sum)
	return b.info.UIDValidity, uid, nil
}

func (v *memView) appendLocked(b *memBox, raw []byte, flags []string, date time.Time, sum *pgp.Summary) uint32 {
	uid := b.info.UIDNext
	b.info.UIDNext++
	b.msgs = append(b.msgs, &memMsg{raw: raw, info: bridge.MessageInfo{UID: uid, Flags: slices.Clone(flags),
		InternalDate: date, Size: int64(len(raw)), Summary: sum}})
	v.notify(bridge.Update{Kind: bridge.UpdateAdded, Mailbox: b.info.Name, UID: uid})
	return uid
}

func (v *memView) StoreFlags(_ context.Context, mailbox string, uids []uint32, op bridge.FlagOp, flags []string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	b, err := v.box(mailbox)
	if err != nil {
		return err
	}
	for _, u := range uids {
		m := v.find(b, u)
		if m == nil {
			continue
		}
		m.info.Flags = applyFlags(m.info.Flags, op, flags)
		v.notify(bridge.Update{Kind: bridge.UpdateFlags, Mailbox: mailbox, UID: u, Flags: slices.Clone(m.info.Flags)})
	}
	return nil
}

func (v *memView) Copy(_ context.Context, src string, uids []uint32, dst string) (uint32, []bridge.UIDPair, error) {
	return v.copyMove(src, uids, dst, false)
}

func (v *memView) Move(_ context.Context, src string, uids []uint32, dst string) (uint32, []bridge.UIDPair, error) {
	return v.copyMove(src, uids, dst, true)
}

func (v *memView) copyMove(src string, uids []uint32, dst string, move bool) (uint32, []bridge.UIDPair, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	sb, err := v.box(src)
	if err != nil {
		return 0, nil, err
	}
	db, err := v.box(dst)
	if err != nil {
		return 0, nil, err
	}
	var pairs []bridge.UIDPair
	for _, u := range uids {
		m := v.find(sb, u)
		if m == nil {
			continue
		}
		nu := v.appendLocked(db, m.raw, m.info.Flags, m.info.InternalDate, m.info.Summary)
		pairs = append(pairs, bridge.UIDPair{Src: u, Dst: nu})
	}
	if move {
		var moved []uint32
		for _, p := range pairs {
			moved = append(moved, p.Src)
		}
		v.removeLocked(sb, moved)
	}
	return db.info.UIDValidity, pairs, nil
}

func (v *memView) removeLocked(b *memBox, uids []uint32) []uint32 {
	var removed []uint32
	b.msgs = slices.DeleteFunc(b.msgs, func(m *memMsg) bool {
		if slices.Contains(uids, m.info.UID) {
			removed = append(removed, m.info.UID)
			return true
		}
		return false
	})
	for _, u := range removed {
		v.notify(bridge.Update{Kind: bridge.UpdateExpunged, Mailbox: b.info.Name, UID: u})
	}
	return removed
}

func (v *memView) Expunge(_ context.Context, mailbox string, uids []uint32) ([]uint32, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	b, err := v.box(mailbox)
	if err != nil {
		return nil, err
	}
	if uids == nil {
		for _, m := range b.msgs {
			if hasFlag(m.info.Flags, `\Deleted`) {
				uids = append(uids, m.info.UID)
			}
		}
	}
	return v.removeLocked(b, uids), nil
}

// Watch delivers updates through an unbounded queue: never dropped.
func (v *memView) Watch(mailbox string) (<-chan bridge.Update, func()) {
	w := &memWatch{sig: make(chan struct{}, 1), out: make(chan bridge.Update), stop: make(chan struct{})}
	v.mu.Lock()
	if v.watchers[mailbox] == nil {
		v.watchers[mailbox] = map[*memWatch]struct{}{}
	}
	v.watchers[mailbox][w] = struct{}{}
	v.mu.Unlock()
	go w.pump()
	var once sync.Once
	return w.out, func() {
		once.Do(func() {
			v.mu.Lock()
			for _, ws := range v.watchers { // it may have followed a rename
				delete(ws, w)
			}
			v.mu.Unlock()
			close(w.stop)
		})
	}
}

func (v *memView) notify(u bridge.Update) {
	for w := range v.watchers[u.Mailbox] {
		w.push(u)
	}
}

func (v *memView) watcherCount() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for _, ws := range v.watchers {
		n += len(ws)
	}
	return n
}

type memWatch struct {
	mu   sync.Mutex
	q    []bridge.Update
	sig  chan struct{}
	out  chan bridge.Update
	stop chan struct{}
}

func (w *memWatch) push(u bridge.Update) {
	w.mu.Lock()
	w.q = append(w.q, u)
	w.mu.Unlock()
	select {
	case w.sig <- struct{}{}:
	default:
	}
}

func (w *memWatch) pump() {
	defer close(w.out)
	for {
		w.mu.Lock()
		q := w.q
		w.q = nil
		w.mu.Unlock()
		for _, u := range q {
			select {
			case w.out <- u:
			case <-w.stop:
				return
			}
		}
		select {
		case <-w.sig:
		case <-w.stop:
			return
		}
	}
}

// summarize builds the header-blob summary the bridge would cache, from
// go-imap's own parsers, converted back to pgp types.
func summarize(raw []byte) *pgp.Summary {
	h, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	env := imapserver.ExtractEnvelope(h)
	bs := imapserver.ExtractBodyStructure(bytes.NewReader(raw))
	return &pgp.Summary{Version: 1, Header: slices.Clone(raw[:headerEnd(raw)]), Size: int64(len(raw)),
		Envelope: *fromIMAPEnvelope(env), Structure: fromIMAPPart(bs)}
}

func fromIMAPEnvelope(e *imap.Envelope) *pgp.Envelope {
	if e == nil {
		return nil
	}
	conv := func(in []imap.Address) []pgp.Address {
		var out []pgp.Address
		for _, a := range in {
			out = append(out, pgp.Address{Name: a.Name, Mailbox: a.Mailbox, Host: a.Host})
		}
		return out
	}
	return &pgp.Envelope{Date: e.Date, Subject: e.Subject, From: conv(e.From), Sender: conv(e.Sender),
		ReplyTo: conv(e.ReplyTo), To: conv(e.To), Cc: conv(e.Cc), Bcc: conv(e.Bcc),
		InReplyTo: e.InReplyTo, MessageID: e.MessageID}
}

func fromIMAPPart(bs imap.BodyStructure) pgp.Part {
	switch b := bs.(type) {
	case *imap.BodyStructureMultiPart:
		p := pgp.Part{Type: "multipart", Subtype: b.Subtype}
		if b.Extended != nil {
			p.Params, p.Language, p.Location = b.Extended.Params, b.Extended.Language, b.Extended.Location
			if d := b.Extended.Disposition; d != nil {
				p.Disposition, p.DispositionParams = d.Value, d.Params
			}
		}
		for _, c := range b.Children {
			p.Children = append(p.Children, fromIMAPPart(c))
		}
		return p
	case *imap.BodyStructureSinglePart:
		p := pgp.Part{Type: b.Type, Subtype: b.Subtype, Params: b.Params, ID: b.ID, Description: b.Description,
			Encoding: b.Encoding, Size: int64(b.Size)}
		if b.Extended != nil {
			p.Language, p.Location = b.Extended.Language, b.Extended.Location
			if d := b.Extended.Disposition; d != nil {
				p.Disposition, p.DispositionParams = d.Value, d.Params
			}
		}
		if b.Text != nil {
			p.Lines = b.Text.NumLines
		}
		if m := b.MessageRFC822; m != nil {
			p.Lines = m.NumLines
			p.Envelope = fromIMAPEnvelope(m.Envelope)
			inner := fromIMAPPart(m.BodyStructure)
			p.Inner = &inner
		}
		return p
	}
	return pgp.Part{Type: "text", Subtype: "plain"}
}

// deliver plays another device (or the MX) adding a message.
func (v *memView) deliver(mailbox, raw string, flags ...string) uint32 {
	_, uid, err := v.Append(context.Background(), mailbox, []byte(strings.ReplaceAll(raw, "\n", "\r\n")), flags, time.Now())
	if err != nil {
		panic(err)
	}
	return uid
}
