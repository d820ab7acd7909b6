package bridge

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"smessenger/pgp"
)

// Sentinel errors of the contacts keyring; test with errors.Is.
var (
	// ErrContactNotFound: the keyring knows nothing about the address.
	ErrContactNotFound = errors.New("bridge: no such contact")
	// ErrNothingToTrust: Trust found no changed key waiting for confirmation.
	ErrNothingToTrust = errors.New("bridge: no changed key waiting for confirmation")
	// ErrContactsDamaged: the contacts file does not open with the account's
	// key or is not signed by it (damaged, or replaced by someone else).
	ErrContactsDamaged = errors.New("bridge: contacts file damaged")
)

// ContactsFileName is the contacts keyring's file inside the data folder.
const ContactsFileName = "contacts.pgp"

// maxContactsFile bounds what is read back from disk.
const maxContactsFile = 64 << 20

// Contact sources, as List reports them.
const (
	SourceKeyring   = "keyring"   // imported by the user
	SourcePinned    = "pinned"    // an internal recipient's key, pinned on first use
	SourceAutocrypt = "autocrypt" // learned from mail received from the address
)

// Contact is one line of the contacts list.
type Contact struct {
	Address     string
	Fingerprint string
	Source      string
	// Pending is, for a pinned key, the fingerprint of a changed key that
	// the server now announces and the user has not confirmed yet.
	Pending string
}

type keyringEntry struct {
	Fingerprint string    `json:"fingerprint"`
	Addresses   []string  `json:"addresses"`
	Key         []byte    `json:"key"`
	Imported    time.Time `json:"imported"`
}

type keyPin struct {
	Fingerprint string    `json:"fingerprint"`
	Pending     string    `json:"pending,omitempty"`
	Since       time.Time `json:"since"`
}

type contactsData struct {
	Version   int                           `json:"version"`
	Keys      []keyringEntry                `json:"keys"`
	Pins      map[string]*keyPin            `json:"pins"`
	Autocrypt map[string]*pgp.AutocryptPeer `json:"autocrypt"`
}

// Contacts is the account's local keyring: keys the user imported, the
// pinned keys of internal recipients (trust on first use) and Autocrypt
// state learned from received mail. Public keys are not secret, but who one
// writes to is, so the file is OpenPGP-encrypted to the account's own key
// and signed by it; a file not signed by the account's key is refused, so it
// cannot be swapped for one that pins an attacker's key.
//
// The bridge and the `smessenger bridge contacts` command may use the file
// at the same time: every call re-reads it when it changed on disk, and
// every change is read-modify-write with an atomic rename. Two changes at
// the same instant from two processes may lose one of them; both are user
// actions, so the user sees it and repeats it.
type Contacts struct {
	path string
	key  *pgp.Key

	mu    sync.Mutex
	data  contactsData
	stamp fileStamp
}

type fileStamp struct {
	mod  time.Time
	size int64
	ok   bool
}

// ContactsPath returns the contacts file of a data folder.
func ContactsPath(dataDir string) string { return filepath.Join(dataDir, ContactsFileName) }

// OpenContacts opens (or starts empty) the contacts file at path, sealed to
// key, which must hold its secret part.
func OpenContacts(path string, key *pgp.Key) (*Contacts, error) {
	if key == nil || !key.IsPrivate() {
		return nil, errors.New("bridge: contacts need the account's private key")
	}
	c := &Contacts{path: path, key: key}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.refreshLocked(); err != nil {
		return nil, err
	}
	return c, nil
}

// OpenContactsDir opens the contacts of the bridge in dataDir, unlocking
// the account's key with the passphrase. It is for the contacts commands,
// which run beside a running bridge and so cannot open its cache.
func OpenContactsDir(dataDir string, passphrase []byte) (*Contacts, error) {
	v, err := readVault(dataDir)
	if err != nil {
		return nil, err
	}
	if _, err := v.openSecrets(passphrase); err != nil {
		return nil, err
	}
	key, err := pgp.ImportPrivate([]byte(v.SecretKey), passphrase)
	if err != nil {
		return nil, fmt.Errorf("bridge: unlock secret key: %w", err)
	}
	return OpenContacts(ContactsPath(dataDir), key)
}

func emptyContacts() contactsData {
	return contactsData{Version: 1, Pins: map[string]*keyPin{}, Autocrypt: map[string]*pgp.AutocryptPeer{}}
}

// refreshLocked re-reads the file if it changed since it was last read.
func (c *Contacts) refreshLocked() error {
	fi, err := os.Stat(c.path)
	if errors.Is(err, os.ErrNotExist) {
		if c.stamp.ok || c.data.Pins == nil {
			c.data, c.stamp = emptyContacts(), fileStamp{}
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("bridge: contacts: %w", err)
	}
	st := fileStamp{mod: fi.ModTime(), size: fi.Size(), ok: true}
	if st == c.stamp && c.data.Pins != nil {
		return nil
	}
	d, err := c.read()
	if err != nil {
		return err
	}
	c.data, c.stamp = d, st
	return nil
}

func (c *Contacts) read() (contactsData, error) {
	f, err := os.Open(c.path)
	if err != nil {
		return contactsData{}, fmt.Errorf("bridge: contacts: %w", err)
	}
	defer f.Close()
	sealed, err := io.ReadAll(io.LimitReader(f, maxContactsFile+1))
	if err != nil {
		return contactsData{}, fmt.Errorf("bridge: contacts: %w", err)
	}
	if len(sealed) > maxContactsFile {
		return contactsData{}, fmt.Errorf("%w: file too large", ErrContactsDamaged)
	}
	o, err := pgp.Open(sealed, c.key, pgp.OpenOptions{MaxSize: maxContactsFile})
	if err != nil {
		return contactsData{}, fmt.Errorf("%w: %v", ErrContactsDamaged, err)
	}
	if o.Signature != pgp.SigValid || o.SignerFingerprint != c.key.Fingerprint() {
		return contactsData{}, fmt.Errorf("%w: not signed by the account's key", ErrContactsDamaged)
	}
	d := emptyContacts()
	if err := json.Unmarshal(o.Plaintext, &d); err != nil || d.Version != 1 {
		return contactsData{}, fmt.Errorf("%w: unreadable content", ErrContactsDamaged)
	}
	if d.Pins == nil {
		d.Pins = map[string]*keyPin{}
	}
	if d.Autocrypt == nil {
		d.Autocrypt = map[string]*pgp.AutocryptPeer{}
	}
	return d, nil
}

// writeLocked seals and writes the data atomically.
func (c *Contacts) writeLocked() error {
	plain, err := json.Marshal(c.data)
	if err != nil {
		return fmt.Errorf("bridge: contacts: %w", err)
	}
	sealed, err := pgp.Seal(plain, []*pgp.Key{c.key}, pgp.SealOptions{Signer: c.key})
	if err != nil {
		return fmt.Errorf("bridge: contacts: %w", err)
	}
	if err := writeFileAtomic(c.path, sealed); err != nil {
		return err
	}
	if fi, err := os.Stat(c.path); err == nil {
		c.stamp = fileStamp{mod: fi.ModTime(), size: fi.Size(), ok: true}
	}
	return nil
}

// update runs fn on fresh data and writes the result if fn reports a change.
func (c *Contacts) update(fn func(d *contactsData) (changed bool, err error)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.refreshLocked(); err != nil {
		return err
	}
	changed, ferr := fn(&c.data)
	if changed {
		if err := c.writeLocked(); err != nil {
			c.data.Pins = nil // memory is ahead of the disk: re-read next time
			return err
		}
	} else if ferr != nil {
		c.data.Pins = nil // fn may have changed memory before failing
	}
	return ferr
}

// view runs fn on fresh data without changing it.
func (c *Contacts) view(fn func(d *contactsData) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.refreshLocked(); err != nil {
		return err
	}
	return fn(&c.data)
}

func normAddr(a string) string { return strings.ToLower(strings.TrimSpace(a)) }

// Import adds the public keys in data (armored or binary, one or more) to
// the keyring for every address in their User IDs. An address already bound
// to another imported key moves to the new one. Secret key material in data
// is ignored. It returns the contacts added.
func (c *Contacts) Import(data []byte) ([]Contact, error) {
	keys, err := pgp.ReadKeys(data)
	if err != nil {
		return nil, fmt.Errorf("bridge: import: %w", err)
	}
	var added []Contact
	err = c.update(func(d *contactsData) (bool, error) {
		for _, k := range keys {
			var addrs []string
			for _, a := range k.Addresses() {
				if a = normAddr(a); a != "" && !slices.Contains(addrs, a) {
					addrs = append(addrs, a)
				}
			}
			if len(addrs) == 0 {
				return false, fmt.Errorf("bridge: import: key %s has no e-mail address", k.Fingerprint())
			}
			d.Keys = slices.DeleteFunc(d.Keys, func(e keyringEntry) bool { return e.Fingerprint == k.Fingerprint() })
			for i := range d.Keys {
				d.Keys[i].Addresses = slices.DeleteFunc(d.Keys[i].Addresses, func(a string) bool { return slices.Contains(addrs, a) })
			}
			d.Keys = slices.DeleteFunc(d.Keys, func(e keyringEntry) bool { return len(e.Addresses) == 0 })
			d.Keys = append(d.Keys, keyringEntry{Fingerprint: k.Fingerprint(), Addresses: addrs,
				Key: k.PublicBinary(), Imported: time.Now().UTC()})
			for _, a := range addrs {
				added = append(added, Contact{Address: a, Fingerprint: k.Fingerprint(), Source: SourceKeyring})
			}
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	return added, nil
}

// List returns every contact, sorted by address and then source.
func (c *Contacts) List() ([]Contact, error) {
	var out []Contact
	err := c.view(func(d *contactsData) error {
		for _, e := range d.Keys {
			for _, a := range e.Addresses {
				out = append(out, Contact{Address: a, Fingerprint: e.Fingerprint, Source: SourceKeyring})
			}
		}
		for a, p := range d.Pins {
			out = append(out, Contact{Address: a, Fingerprint: p.Fingerprint, Source: SourcePinned, Pending: p.Pending})
		}
		for a, p := range d.Autocrypt {
			if len(p.KeyData) == 0 {
				continue
			}
			fp := ""
			if k, err := pgp.ReadKey(p.KeyData); err == nil {
				fp = k.Fingerprint()
			}
			out = append(out, Contact{Address: a, Fingerprint: fp, Source: SourceAutocrypt})
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Address != out[j].Address {
			return out[i].Address < out[j].Address
		}
		return out[i].Source < out[j].Source
	})
	return out, err
}

// Remove forgets everything about addr: its imported key binding, its pin
// and its Autocrypt state. ErrContactNotFound if there was nothing.
func (c *Contacts) Remove(addr string) error {
	addr = normAddr(addr)
	return c.update(func(d *contactsData) (bool, error) {
		found := false
		for i := range d.Keys {
			n := len(d.Keys[i].Addresses)
			d.Keys[i].Addresses = slices.DeleteFunc(d.Keys[i].Addresses, func(a string) bool { return a == addr })
			found = found || n != len(d.Keys[i].Addresses)
		}
		d.Keys = slices.DeleteFunc(d.Keys, func(e keyringEntry) bool { return len(e.Addresses) == 0 })
		if _, ok := d.Pins[addr]; ok {
			delete(d.Pins, addr)
			found = true
		}
		if _, ok := d.Autocrypt[addr]; ok {
			delete(d.Autocrypt, addr)
			found = true
		}
		if !found {
			return false, fmt.Errorf("%w: %s", ErrContactNotFound, addr)
		}
		return true, nil
	})
}

// Trust confirms the changed key of addr that a send was refused for: it
// becomes the pinned key. It returns the newly pinned fingerprint;
// ErrNothingToTrust when no changed key is waiting.
func (c *Contacts) Trust(addr string) (string, error) {
	addr = normAddr(addr)
	var fp string
	err := c.update(func(d *contactsData) (bool, error) {
		p := d.Pins[addr]
		if p == nil || p.Pending == "" {
			return false, fmt.Errorf("%w for %s", ErrNothingToTrust, addr)
		}
		fp = p.Pending
		d.Pins[addr] = &keyPin{Fingerprint: fp, Since: time.Now().UTC()}
		return true, nil
	})
	return fp, err
}

// keyringKey returns the imported key for addr, or nil if there is none.
// An imported key that is no longer usable (expired, revoked) is an error,
// not a silent fallback to another source.
func (c *Contacts) keyringKey(addr string) (*pgp.Key, error) {
	addr = normAddr(addr)
	var kb []byte
	err := c.view(func(d *contactsData) error {
		for _, e := range d.Keys {
			if slices.Contains(e.Addresses, addr) {
				kb = e.Key
			}
		}
		return nil
	})
	if err != nil || kb == nil {
		return nil, err
	}
	return pgp.ReadKey(kb)
}

// checkPin applies trust on first use to an internal recipient's key: the
// first fingerprint seen is pinned; a different one later is recorded as
// pending and refused with ErrKeyChanged until Trust confirms it.
func (c *Contacts) checkPin(addr, fingerprint string) error {
	addr = normAddr(addr)
	// The common case (pinned and unchanged) needs no write.
	var same bool
	if err := c.view(func(d *contactsData) error {
		p := d.Pins[addr]
		same = p != nil && p.Fingerprint == fingerprint
		return nil
	}); err != nil || same {
		return err
	}
	return c.update(func(d *contactsData) (bool, error) {
		p := d.Pins[addr]
		switch {
		case p == nil:
			d.Pins[addr] = &keyPin{Fingerprint: fingerprint, Since: time.Now().UTC()}
			return true, nil
		case p.Fingerprint == fingerprint:
			return false, nil
		case p.Pending == fingerprint:
			return false, ErrKeyChanged
		}
		p.Pending = fingerprint
		return true, ErrKeyChanged
	})
}
