package imapd

import (
	"hash/maphash"
	"sync"
)

// gateStripes is how many locks the append gates are spread over; names
// that share a stripe only wait a little longer for each other.
const gateStripes = 64

// appendGates order what sessions announce after APPEND, COPY and MOVE.
//
// IMAP sequence numbers grow with UIDs and only at the end, so a message
// can be announced (EXISTS) only while no message with a lower UID is still
// to come. Two APPENDs racing into one mailbox break that: the server gives
// the first UID 4 and the second UID 5, but the second may reach the local
// cache first; announcing 5 then would hide 4 until the next SELECT. So
// every APPEND/COPY/MOVE holds its destination's gate shared while the view
// works, and every listing that leads to announcements (a watcher's, a
// refresh after our own APPEND, the first one of a SELECT) takes the gate
// exclusively: it sees either none or all of the messages in flight
// through this server.
//
// What the gate cannot order is a lower UID that reaches the view late by
// another way (another device's APPEND whose event is overtaken by ours).
// Such a message is shown from the next SELECT on; addNew documents it.
// The bridge's own syncing (first sync and events) makes messages visible
// in ascending UID order per mailbox, so it never causes this.
type appendGates struct {
	seed  maphash.Seed
	locks [gateStripes]sync.RWMutex
}

func newAppendGates() *appendGates { return &appendGates{seed: maphash.MakeSeed()} }

// of returns the gate of a mailbox name.
func (g *appendGates) of(mailbox string) *sync.RWMutex {
	return &g.locks[maphash.String(g.seed, mailbox)%gateStripes]
}

// adding runs fn (an APPEND, COPY or MOVE into mailbox) with mailbox's gate
// held shared.
func (g *appendGates) adding(mailbox string, fn func() error) error {
	l := g.of(mailbox)
	l.RLock()
	defer l.RUnlock()
	return fn()
}
