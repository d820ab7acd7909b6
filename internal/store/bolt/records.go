package bolt

import (
	"encoding/binary"
	"strconv"
	"time"

	"smessenger/internal/store"
)

// recordV1 is the version byte every record of schema v1 starts with. A
// later layout gets a new byte and a migration in migrate.go.
const recordV1 = 1

// account is the stored account record: the public fields plus the
// account's private counters, so one read and one write per commit keep
// ids, UIDVALIDITY and the event log consistent.
type account struct {
	store.Account
	nextMailbox     uint64
	nextMessage     uint64
	nextDevice      uint64
	nextUIDValidity uint32
	lastEvent       uint64
}

func encodeAccount(a *account) []byte {
	w := store.NewRecordWriter(recordV1, 128)
	w.String(a.Primary)
	w.Strings(a.Addresses)
	w.Time(a.Created)
	w.Int(a.QuotaBytes)
	w.Int(a.UsedBytes)
	w.Uint(a.nextMailbox)
	w.Uint(a.nextMessage)
	w.Uint(a.nextDevice)
	w.Uint(uint64(a.nextUIDValidity))
	w.Uint(a.lastEvent)
	return w.Bytes()
}

func decodeAccount(id store.AccountID, rec []byte) (*account, error) {
	r := store.NewRecordReader(rec, recordV1)
	a := &account{Account: store.Account{ID: id}}
	a.Primary = r.String()
	a.Addresses = r.Strings()
	a.Created = r.Time()
	a.QuotaBytes = r.Int()
	a.UsedBytes = r.Int()
	a.nextMailbox = r.Uint()
	a.nextMessage = r.Uint()
	a.nextDevice = r.Uint()
	a.nextUIDValidity = r.Uint32()
	a.lastEvent = r.Uint()
	return a, r.Err()
}

func encodeMailbox(m *store.Mailbox) []byte {
	w := store.NewRecordWriter(recordV1, 64+len(m.Name))
	w.String(m.Name)
	w.String(m.SpecialUse)
	w.Uint(uint64(m.UIDValidity))
	w.Uint(uint64(m.UIDNext))
	w.Uint(m.HighestModSeq)
	w.Bool(m.Subscribed)
	w.Uint(uint64(m.Messages))
	w.Uint(uint64(m.Unseen))
	w.Int(m.Size)
	return w.Bytes()
}

func decodeMailbox(id uint64, rec []byte) (store.Mailbox, error) {
	r := store.NewRecordReader(rec, recordV1)
	m := store.Mailbox{ID: id}
	m.Name = r.String()
	m.SpecialUse = r.String()
	m.UIDValidity = r.Uint32()
	m.UIDNext = r.Uint32()
	m.HighestModSeq = r.Uint()
	m.Subscribed = r.Bool()
	m.Messages = r.Uint32()
	m.Unseen = r.Uint32()
	m.Size = r.Int()
	return m, r.Err()
}

// message is a stored message record; blob names the blobs it shares with
// its copies (the id of the message first appended with them).
type message struct {
	store.MessageMeta
	blob uint64
}

func encodeMessage(m *message) []byte {
	w := store.NewRecordWriter(recordV1, 48)
	w.Uint(uint64(m.ID))
	w.Uint(m.blob)
	w.Strings(m.Flags)
	w.Time(m.InternalDate)
	w.Int(m.Size)
	w.Uint(m.ModSeq)
	w.Uint(uint64(m.HeaderLen))
	w.Uint(uint64(m.BodyLen))
	return w.Bytes()
}

func decodeMessage(mailbox uint64, uid uint32, rec []byte) (message, error) {
	r := store.NewRecordReader(rec, recordV1)
	var m message
	m.MailboxID, m.UID = mailbox, uid
	m.ID = store.MessageID(r.Uint())
	m.blob = r.Uint()
	m.Flags = r.Strings()
	m.InternalDate = r.Time()
	m.Size = r.Int()
	m.ModSeq = r.Uint()
	m.HeaderLen = int(r.Uint32())
	m.BodyLen = int(r.Uint32())
	return m, r.Err()
}

func encodeEvent(e *store.Event) []byte {
	w := store.NewRecordWriter(recordV1, 48+len(e.Mailbox))
	w.Uint(uint64(e.Kind))
	w.Time(e.Time)
	w.String(e.Mailbox)
	w.String(e.OldName)
	w.Uint(e.MailboxID)
	w.Uint(uint64(e.UID))
	w.Uint(uint64(e.MessageID))
	w.Strings(e.Flags)
	w.Uint(e.ModSeq)
	w.Bool(e.Subscribed)
	return w.Bytes()
}

func decodeEvent(seq uint64, rec []byte) (store.Event, error) {
	r := store.NewRecordReader(rec, recordV1)
	e := store.Event{Seq: seq}
	e.Kind = store.EventKind(r.Uint8())
	e.Time = r.Time()
	e.Mailbox = r.String()
	e.OldName = r.String()
	e.MailboxID = r.Uint()
	e.UID = r.Uint32()
	e.MessageID = store.MessageID(r.Uint())
	e.Flags = r.Strings()
	e.ModSeq = r.Uint()
	e.Subscribed = r.Bool()
	return e, r.Err()
}

func encodeDevice(d *store.Device) []byte {
	w := store.NewRecordWriter(recordV1, 64)
	w.Blob(d.NoiseKey)
	w.String(d.Name)
	w.Time(d.Created)
	w.Bool(d.Revoked)
	return w.Bytes()
}

func decodeDevice(acct store.AccountID, id string, rec []byte) (store.Device, error) {
	r := store.NewRecordReader(rec, recordV1)
	d := store.Device{ID: id, Account: acct}
	d.NoiseKey = r.Blob()
	d.Name = r.String()
	d.Created = r.Time()
	d.Revoked = r.Bool()
	return d, r.Err()
}

// encodeRef is the value of an index entry that points into an account:
// devkeys (noise key → account, device) and tokens (hash → account, expiry).
func encodeRef(acct store.AccountID, s string, t time.Time) []byte {
	w := store.NewRecordWriter(recordV1, 64)
	w.String(string(acct))
	w.String(s)
	w.Time(t)
	return w.Bytes()
}

func decodeRef(rec []byte) (store.AccountID, string, time.Time, error) {
	r := store.NewRecordReader(rec, recordV1)
	acct := store.AccountID(r.String())
	s := r.String()
	t := r.Time()
	return acct, s, t, r.Err()
}

// encodeQueueEntry puts the payload last so listings can stop before it.
func encodeQueueEntry(e *store.QueueEntry) []byte {
	w := store.NewRecordWriter(recordV1, 128+len(e.Payload))
	w.String(string(e.Account))
	w.String(e.From)
	w.Uint(uint64(len(e.Recipients)))
	for _, r := range e.Recipients {
		w.String(r.Address)
		w.Bool(r.Done)
		w.Bool(r.Failed)
		w.String(r.LastError)
	}
	w.Time(e.Created)
	w.Int(int64(e.Attempts))
	w.Time(e.NextAttempt)
	w.Time(e.Expires)
	w.String(e.LastError)
	w.Bool(e.Dead)
	w.String(e.LeaseOwner)
	w.Time(e.LeaseUntil)
	w.Blob(e.Payload)
	return w.Bytes()
}

func decodeQueueEntry(id string, rec []byte, withPayload bool) (store.QueueEntry, error) {
	r := store.NewRecordReader(rec, recordV1)
	e := store.QueueEntry{ID: id}
	e.Account = store.AccountID(r.String())
	e.From = r.String()
	n := r.Count()
	for i := 0; i < n; i++ {
		var q store.QueueRecipient
		q.Address = r.String()
		q.Done = r.Bool()
		q.Failed = r.Bool()
		q.LastError = r.String()
		e.Recipients = append(e.Recipients, q)
	}
	e.Created = r.Time()
	e.Attempts = int(r.Int())
	e.NextAttempt = r.Time()
	e.Expires = r.Time()
	e.LastError = r.String()
	e.Dead = r.Bool()
	e.LeaseOwner = r.String()
	e.LeaseUntil = r.Time()
	if withPayload {
		e.Payload = r.Blob()
	} else {
		r.SkipBlob()
	}
	return e, r.Err()
}

// Keys are big-endian so that bbolt's byte order is numeric order.

func u64key(v uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), v) }
func u32key(v uint32) []byte { return binary.BigEndian.AppendUint32(make([]byte, 0, 4), v) }

func be64(k []byte) uint64 { return binary.BigEndian.Uint64(k) }
func be32(k []byte) uint32 { return binary.BigEndian.Uint32(k) }

func uitoa(v uint64) string { return strconv.FormatUint(v, 10) }
