package bridge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"smessenger/internal/channel"
	"smessenger/internal/store"
	"smessenger/pgp"
)

// OpenConfig says how to open an account that Login set up.
type OpenConfig struct {
	DataDir    string
	Passphrase []byte
	// NewServer builds the API client (api.NewClient in cmd).
	NewServer func(addr string, cfg channel.ClientConfig) Server
	// TLS, when set, is the outer TLS configuration for the channel.
	TLS *tls.Config
	// Log receives progress and warnings; nil discards. Give it an
	// internal/logging logger: server errors can quote a dialled address.
	Log *slog.Logger
	// Progress, if it is a terminal, shows a progress bar for the first sync.
	Progress io.Writer
	// BodyMemory bounds the decrypted bodies kept in memory (bytes);
	// default 32 MiB. Bodies beyond it are read back from the cache.
	BodyMemory int64
	// PrefetchWorkers is how many bodies are fetched in the background at
	// once; default 2, negative disables prefetch.
	PrefetchWorkers int
	// PrefetchMessages bounds background prefetch to the newest messages
	// of each mailbox: default DefaultPrefetchMessages, negative: no
	// bound. Older bodies are downloaded when a client opens them.
	PrefetchMessages int
	// PrefetchBytes bounds what one prefetch run downloads (by the sizes
	// the server reports): default DefaultPrefetchBytes, negative: no
	// bound. A run starts after each sync step that added messages.
	PrefetchBytes int64
	// SummaryMemory bounds the message summaries (header section,
	// envelope, structure) kept in memory, in bytes; default
	// DefaultSummaryMemory. The rest are read from the cache on demand.
	SummaryMemory int64
}

// mbox is one mailbox of the in-memory index: the server's record and its
// messages sorted by UID.
type mbox struct {
	info store.Mailbox
	msgs []*entry
}

// find returns the index of uid in msgs and whether it is there.
func (b *mbox) find(uid uint32) (int, bool) {
	i := sort.Search(len(b.msgs), func(i int) bool { return b.msgs[i].uid >= uid })
	return i, i < len(b.msgs) && b.msgs[i].uid == uid
}

// Account is an unlocked bridge account: the private key, the server client
// and the local cache with its in-memory index. It implements View. Methods
// are safe for concurrent use.
type Account struct {
	cfg   OpenConfig
	log   *slog.Logger
	vault *vaultFile
	key   *pgp.Key
	srv   Server
	cache *cache

	mu        sync.RWMutex
	boxes     map[uint64]*mbox
	byName    map[string]uint64
	refs      map[store.MessageID]int // index entries per message id (moves keep ids)
	seq       uint64                  // last applied event
	seqStored uint64                  // last Seq written to the cache; guarded by changeMu
	addresses []string
	filter    func(mailbox string, raw []byte) (skip bool, uid uint32)
	learner   func(from string, header []byte, date time.Time) error

	watch watchHub
	// changeMu serialises applying changes (events and this bridge's own
	// operations) so that index, cache and notifications stay in order.
	changeMu sync.Mutex

	synced     chan struct{}
	syncedOnce sync.Once

	bodies   *bodyLRU
	sums     *sumLRU
	flights  flightGroup
	prefetch chan struct{}

	// syncBatch overrides headerBatch (tests use small batches to see
	// several in flight without thousands of messages); 0 keeps it.
	syncBatch int

	appends appendTracker
	// pending holds appended messages waiting for the next grouped cache
	// write (see addAppended).
	pendMu  sync.Mutex
	pending []*pendingAdd
}

var _ View = (*Account)(nil)

// Open unlocks the vault in cfg.DataDir with the passphrase and opens the
// local cache. It does not contact the server; Run does.
func Open(ctx context.Context, cfg OpenConfig) (*Account, error) {
	if cfg.NewServer == nil {
		return nil, errors.New("bridge: OpenConfig.NewServer is required")
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	v, err := readVault(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	sec, err := v.openSecrets(cfg.Passphrase)
	if err != nil {
		return nil, err
	}
	key, err := pgp.ImportPrivate([]byte(v.SecretKey), cfg.Passphrase)
	if err != nil {
		return nil, fmt.Errorf("bridge: unlock secret key: %w", err)
	}
	noise, err := channel.KeyPairFromPrivate(sec.NoisePrivate)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrVaultDamaged, err)
	}
	serverKey, err := channel.ParseFingerprint(v.ServerKey)
	if err != nil {
		return nil, fmt.Errorf("%w: server key: %v", ErrVaultDamaged, err)
	}
	a := &Account{
		cfg: cfg, log: log, vault: v, key: key,
		boxes: map[uint64]*mbox{}, byName: map[string]uint64{}, refs: map[store.MessageID]int{},
		synced:   make(chan struct{}),
		prefetch: make(chan struct{}, 1),
	}
	mem := cfg.BodyMemory
	if mem <= 0 {
		mem = 32 << 20
	}
	a.bodies = newBodyLRU(mem)
	sm := cfg.SummaryMemory
	if sm <= 0 {
		sm = DefaultSummaryMemory
	}
	a.sums = newSumLRU(sm)
	a.watch.init()
	if err := a.openCache(filepath.Join(cfg.DataDir, cacheName), sec.CacheKey); err != nil {
		return nil, err
	}
	a.srv = cfg.NewServer(v.ServerAddr, channel.ClientConfig{
		ServerKey: serverKey, Static: noise, TLS: cfg.TLS, Proxy: v.Proxy,
	})
	return a, nil
}

// openCache opens and loads the cache; a cache whose records do not open is
// moved aside and rebuilt (openCache logs it).
func (a *Account) openCache(path string, key []byte) error {
	c, err := openCache(path, key, a.log)
	if err != nil {
		return err
	}
	l, err := c.load()
	if err != nil {
		c.close()
		aside := fmt.Sprintf("%s.damaged-%s", path, time.Now().UTC().Format("20060102T150405.000"))
		if rerr := os.Rename(path, aside); rerr != nil {
			return fmt.Errorf("bridge: cache damaged (%v) and cannot be moved aside: %w", err, rerr)
		}
		a.log.Warn("bridge: local cache damaged; kept it aside and rebuilding a new one from the server",
			"reason", err.Error(), "kept", aside)
		if c, err = openCache(path, key, a.log); err != nil {
			return err
		}
		if l, err = c.load(); err != nil {
			c.close()
			return err
		}
	}
	a.cache = c
	a.seq, a.seqStored = l.seq, l.seq
	a.addresses = l.addresses
	if len(a.addresses) == 0 {
		a.addresses = append([]string(nil), a.vault.Addresses...)
	}
	for id, b := range l.boxes {
		a.boxes[id] = b
		a.byName[b.info.Name] = id
		for _, e := range b.msgs {
			a.refs[e.id]++
		}
	}
	return nil
}

// Close stops using the cache. Run must have returned.
func (a *Account) Close() error {
	if c, ok := a.srv.(io.Closer); ok {
		c.Close()
	}
	ferr := a.flushSeq()
	if err := a.cache.close(); err != nil {
		return err
	}
	return ferr
}

// Addresses returns the account's addresses, primary first.
func (a *Account) Addresses() []string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return append([]string(nil), a.addresses...)
}

// Key returns the account's private OpenPGP key.
func (a *Account) Key() *pgp.Key { return a.key }

// Server returns the client for the account's server.
func (a *Account) Server() Server { return a.srv }

// CheckPassword reports whether user (any of the account's addresses, in
// any case) and pass are the mail client's credentials.
func (a *Account) CheckPassword(user, pass string) bool {
	ok := false
	for _, addr := range a.Addresses() {
		if strings.EqualFold(addr, user) {
			ok = true
		}
	}
	// Hash even for an unknown user so timing says nothing about addresses.
	return a.vault.checkBridgePassword(pass) && ok
}

// SetAppendFilter installs a hook that Append consults first: when it
// returns skip, Append stores nothing and reports uid (used to avoid a second
// Sent copy of a message the router already filed).
func (a *Account) SetAppendFilter(f func(mailbox string, raw []byte) (skip bool, uid uint32)) {
	a.mu.Lock()
	a.filter = f
	a.mu.Unlock()
}

// SetAutocryptLearner installs the hook the sync engine calls for every
// message added to INBOX (by a sync, a live event or an APPEND), after it
// is committed to the cache, with the single From address, the header
// section and the message's date. NewRouter installs the router's
// LearnAutocrypt. Errors are logged; they do not stop the sync.
func (a *Account) SetAutocryptLearner(f func(from string, header []byte, date time.Time) error) {
	a.mu.Lock()
	a.learner = f
	a.mu.Unlock()
}

func (a *Account) learnerFunc() func(string, []byte, time.Time) error {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.learner
}

// Proxy returns the account's SOCKS5 proxy URL (socks5://host:port), or ""
// when it connects directly. Everything the bridge sends to the network
// (the channel to the server, WKD lookups) should use it.
func (a *Account) Proxy() string { return a.vault.Proxy }

// WaitSynced blocks until the first catch-up with the server has finished
// (or ctx ends).
func (a *Account) WaitSynced(ctx context.Context) error {
	select {
	case <-a.synced:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *Account) markSynced() { a.syncedOnce.Do(func() { close(a.synced) }) }

// lookup returns the mailbox called name; the caller holds a.mu.
func (a *Account) lookup(name string) (*mbox, error) {
	id, ok := a.byName[store.NormalizeMailbox(name)]
	if !ok {
		return nil, fmt.Errorf("bridge: mailbox %q: %w", name, store.ErrMailboxNotFound)
	}
	return a.boxes[id], nil
}
