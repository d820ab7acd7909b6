package demo

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"smessenger/bridge"
	"smessenger/imapd"
	"smessenger/internal/channel"
	"smessenger/smtpd"
)

// BridgeConfig says how to run one bridge account and its front ends.
type BridgeConfig struct {
	// DataDir is the folder bridge.Login wrote; Passphrase unlocks it.
	DataDir    string
	Passphrase []byte
	// IMAPListen serves IMAP with STARTTLS, SMTPListen SMTP submission with
	// STARTTLS, IMAPSListen IMAP over TLS; "" turns one off.
	IMAPListen, SMTPListen, IMAPSListen string
	// FallbackPorts takes a free port on the same host when a listen
	// address is in use, instead of failing (the demo's choice).
	FallbackPorts bool
	// Policy and SignPlain are bridge.RouterConfig's.
	Policy    string
	SignPlain bool
	// WKD configures key lookups in the Web Key Directory (its Proxy
	// defaults to the one given at login); NoWKD turns them off.
	WKD   bridge.WKDConfig
	NoWKD bool
	// NewServer builds the API client; nil: NewAPIServer.
	NewServer func(addr string, cfg channel.ClientConfig) bridge.Server
	// Log must come from internal/logging; Progress is bridge.OpenConfig's.
	Log      *slog.Logger
	Progress io.Writer
}

// Bridge is an unlocked account with its router and bound listeners.
type Bridge struct {
	cfg      BridgeConfig
	log      *slog.Logger
	acct     *bridge.Account
	router   *bridge.Router
	imap     *imapd.Server
	sub      *smtpd.Submission
	certPath string

	imapLn, smtpLn, imapsLn net.Listener
}

// OpenBridge unlocks the account, builds its router and front ends and
// binds the listeners (so the addresses are known before Run). On error
// nothing stays open.
func OpenBridge(ctx context.Context, cfg BridgeConfig) (_ *Bridge, err error) {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.NewServer == nil {
		cfg.NewServer = NewAPIServer
	}
	acct, err := bridge.Open(ctx, bridge.OpenConfig{
		DataDir: cfg.DataDir, Passphrase: cfg.Passphrase, NewServer: cfg.NewServer,
		Log: log, Progress: cfg.Progress,
	})
	if err != nil {
		return nil, err
	}
	b := &Bridge{cfg: cfg, log: log, acct: acct}
	defer func() {
		if err != nil {
			b.closeListeners()
			acct.Close()
		}
	}()
	contacts, err := bridge.OpenContacts(bridge.ContactsPath(cfg.DataDir), acct.Key())
	if err != nil {
		return nil, err
	}
	rc := bridge.RouterConfig{Account: acct, Policy: cfg.Policy, SignPlain: cfg.SignPlain, Contacts: contacts, Log: log}
	if !cfg.NoWKD {
		// WKD lookups take the account's proxy unless told otherwise, so a
		// Tor user's lookups do not reveal correspondents' domains.
		wcfg := cfg.WKD
		if wcfg.Proxy == "" {
			wcfg.Proxy = acct.Proxy()
		}
		if rc.WKD, err = bridge.NewWKDClient(wcfg); err != nil {
			return nil, err
		}
	}
	if b.router, err = bridge.NewRouter(rc); err != nil {
		return nil, err
	}
	tlsCfg, certPath, err := localTLS(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	b.certPath = certPath
	b.imap = imapd.New(imapd.Config{Users: imapd.AuthenticatorFunc(b.checkIMAP), TLS: tlsCfg, Logger: log})
	b.sub = smtpd.NewSubmission(smtpd.SubmissionConfig{Auth: b.checkSMTP, TLS: tlsCfg, Logger: log})
	if err := b.listen(); err != nil {
		return nil, err
	}
	return b, nil
}

// localTLS loads (creating on first use) the bridge's loopback certificate.
func localTLS(dir string) (*tls.Config, string, error) {
	certPath, keyPath, err := imapd.GenerateLocalCert(dir)
	if err != nil {
		return nil, "", err
	}
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, "", fmt.Errorf("demo: local certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, certPath, nil
}

func (b *Bridge) checkIMAP(user, pass string) (bridge.View, bool) {
	if b.acct.CheckPassword(user, pass) {
		return b.acct, true
	}
	return nil, false
}

func (b *Bridge) checkSMTP(user, pass string) (smtpd.Sender, bool) {
	if b.acct.CheckPassword(user, pass) {
		return b.router, true
	}
	return nil, false
}

func (b *Bridge) listen() error {
	var err error
	if b.imapLn, err = listen(b.cfg.IMAPListen, b.cfg.FallbackPorts); err != nil {
		return fmt.Errorf("demo: imap listener: %w", err)
	}
	if b.smtpLn, err = listen(b.cfg.SMTPListen, b.cfg.FallbackPorts); err != nil {
		return fmt.Errorf("demo: smtp listener: %w", err)
	}
	if b.imapsLn, err = listen(b.cfg.IMAPSListen, b.cfg.FallbackPorts); err != nil {
		return fmt.Errorf("demo: imaps listener: %w", err)
	}
	return nil
}

func (b *Bridge) closeListeners() {
	for _, l := range []net.Listener{b.imapLn, b.smtpLn, b.imapsLn} {
		if l != nil {
			l.Close()
		}
	}
}

// listen binds addr; "" binds nothing. With fallback, an address in use
// is replaced by a free port on the same host.
func listen(addr string, fallback bool) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	l, err := net.Listen("tcp", addr)
	if err == nil || !fallback {
		return l, err
	}
	host, _, serr := net.SplitHostPort(addr)
	if serr != nil {
		return nil, err
	}
	return net.Listen("tcp", net.JoinHostPort(host, "0"))
}

// Account returns the unlocked account.
func (b *Bridge) Account() *bridge.Account { return b.acct }

// CertPath is the local certificate a mail client may pin for STARTTLS.
func (b *Bridge) CertPath() string { return b.certPath }

// IMAPAddr, SMTPAddr and IMAPSAddr return the bound addresses (nil: off).
func (b *Bridge) IMAPAddr() net.Addr { return addrOf(b.imapLn) }

// SMTPAddr returns the submission listener's address, or nil.
func (b *Bridge) SMTPAddr() net.Addr { return addrOf(b.smtpLn) }

// IMAPSAddr returns the IMAPS listener's address, or nil.
func (b *Bridge) IMAPSAddr() net.Addr { return addrOf(b.imapsLn) }

func addrOf(l net.Listener) net.Addr {
	if l == nil {
		return nil
	}
	return l.Addr()
}

// Run syncs the account and serves the front ends until ctx ends, then
// stops everything and closes the account. It returns the first failure of
// a front end, or nil after ctx ended.
func (b *Bridge) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	goRun := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil && ctx.Err() == nil {
				errc <- err
			}
		}()
	}
	goRun(func() error { return b.acct.Run(ctx) })
	b.waitFirstSync(ctx)
	if b.imapLn != nil {
		goRun(func() error { return b.imap.Serve(b.imapLn) })
	}
	if b.imapsLn != nil {
		goRun(func() error { return b.imap.ServeTLS(b.imapsLn) })
	}
	if b.smtpLn != nil {
		goRun(func() error { return b.sub.Serve(b.smtpLn) })
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cancel()
	b.sub.Close()
	b.imap.Close()
	b.closeListeners()
	wg.Wait()
	if cerr := b.acct.Close(); err == nil && cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		err = cerr
	}
	return err
}

// firstSyncWait bounds how long the front ends wait for the first sync.
const firstSyncWait = 30 * time.Second

// waitFirstSync holds the front ends back until the first catch-up with
// the server is done, so that a mail client connecting at start sees its
// mailboxes (INBOX included) rather than an empty account; connections
// meanwhile wait in the listen backlog. If the server cannot be reached in
// time the front ends start anyway and show the cache.
func (b *Bridge) waitFirstSync(ctx context.Context) {
	wctx, cancel := context.WithTimeout(ctx, firstSyncWait)
	defer cancel()
	if err := b.acct.WaitSynced(wctx); err != nil && ctx.Err() == nil {
		b.log.Warn("demo: first sync not finished; serving the local cache meanwhile")
	}
}
