package demo

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"smessenger/internal/logging"
	"smessenger/pgp"
)

// ErrBadKeyName reports an address that cannot name a key file.
var ErrBadKeyName = errors.New("demo: address cannot name a key file")

// sinkMaxBytes bounds one message taken by the sink.
const sinkMaxBytes = 64 << 20

// Outside is the demo's stand-in for the rest of the internet: an SMTP
// sink that takes every message the relay delivers and writes it to
// MailDir, and a WKD server over HTTPS (certificates from the demo CA) that
// serves KeysDir/ADDRESS.asc for any domain.
type Outside struct {
	MailDir, KeysDir string
	// CAFile is the demo CA's certificate (PEM), for tools that want to
	// query the WKD server themselves.
	CAFile string

	log    *slog.Logger
	ca     *ca
	sink   *smtp.Server
	sinkLn net.Listener
	wkd    *http.Server
	wkdLn  net.Listener
}

// NewOutside prepares dir (mail/, keys/, the CA) and binds the sink and
// the WKD server on loopback ports chosen by the system.
func NewOutside(dir string, log *slog.Logger) (*Outside, error) {
	o := &Outside{MailDir: filepath.Join(dir, "mail"), KeysDir: filepath.Join(dir, "keys"),
		CAFile: filepath.Join(dir, "ca.crt"), log: log}
	for _, d := range []string{o.MailDir, o.KeysDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
	}
	var err error
	if o.ca, err = loadOrCreateCA(dir); err != nil {
		return nil, err
	}
	if o.sinkLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("demo: sink listener: %w", err)
	}
	if o.wkdLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		o.sinkLn.Close()
		return nil, fmt.Errorf("demo: wkd listener: %w", err)
	}
	o.sink = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &sinkSession{o: o}, nil
	}))
	o.sink.Domain = "outside.invalid"
	o.sink.MaxMessageBytes = sinkMaxBytes
	o.sink.ReadTimeout, o.sink.WriteTimeout = time.Minute, time.Minute
	o.sink.ErrorLog = logging.StdLogger(log)
	o.wkd = &http.Server{
		Handler:           http.HandlerFunc(o.serveWKD),
		TLSConfig:         &tls.Config{GetCertificate: o.ca.getCertificate, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second,
		ErrorLog: logging.StdLogger(log),
	}
	return o, nil
}

// SinkAddr is the SMTP sink's address (the relay's route for every domain).
func (o *Outside) SinkAddr() string { return o.sinkLn.Addr().String() }

// WKDAddr is the WKD server's address.
func (o *Outside) WKDAddr() string { return o.wkdLn.Addr().String() }

// RootCAs is a pool that trusts the demo CA only.
func (o *Outside) RootCAs() *tls.Config {
	return &tls.Config{RootCAs: o.ca.pool(), MinVersion: tls.VersionTLS12}
}

// DialWKD dials the WKD server whatever host is asked for: in the demo
// every outside domain's openpgpkey host lives there. TLS still checks the
// name against the certificate the demo CA issued for it.
func (o *Outside) DialWKD(ctx context.Context, network, _ string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, o.WKDAddr())
}

// Run serves until ctx ends.
func (o *Outside) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := o.sink.Serve(o.sinkLn); err != nil && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			errc <- fmt.Errorf("demo: sink: %w", err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := o.wkd.ServeTLS(o.wkdLn, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("demo: wkd: %w", err)
		}
	}()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	o.sink.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if o.wkd.Shutdown(sctx) != nil {
		o.wkd.Close()
	}
	wg.Wait()
	return err
}

// serveWKD answers WKD requests for the domains that have a key file.
func (o *Outside) serveWKD(w http.ResponseWriter, r *http.Request) {
	pgp.WKDHandler(o.lookupKey, o.keyDomains()).ServeHTTP(w, r)
}

// keyDomains lists the domains of the files in KeysDir; read per request
// so that a key dropped in the folder is served at once.
func (o *Outside) keyDomains() []string {
	ents, _ := os.ReadDir(o.KeysDir)
	var ds []string
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".asc")
		if _, domain, found := strings.Cut(name, "@"); ok && found {
			ds = append(ds, domain)
		}
	}
	return ds
}

// lookupKey returns the binary public key in KeysDir/ADDRESS.asc, or nil.
func (o *Outside) lookupKey(_ context.Context, address string) ([]byte, error) {
	name, err := KeyFileName(address)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(o.KeysDir, name))
	if err != nil {
		return nil, nil
	}
	k, err := pgp.ReadKey(b)
	if err != nil {
		o.log.Warn("demo: unreadable key file in the outside world's keys folder", "file", name, "err", err)
		return nil, nil
	}
	return k.PublicBinary(), nil
}

// KeyFileName returns the file name for address's key in the outside
// world's keys folder: the lower-cased address plus ".asc". Addresses that
// could escape the folder or hide a file are refused with ErrBadKeyName.
func KeyFileName(address string) (string, error) {
	a := strings.ToLower(address)
	local, domain, ok := strings.Cut(a, "@")
	if !ok || local == "" || domain == "" || len(a) > 254 || strings.HasPrefix(local, ".") ||
		strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return "", ErrBadKeyName
	}
	for _, r := range a {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case strings.ContainsRune("@.-_+=", r):
		default:
			return "", ErrBadKeyName
		}
	}
	if strings.Count(a, "@") != 1 || strings.Contains(a, "..") {
		return "", ErrBadKeyName
	}
	return a + ".asc", nil
}

// sinkSession takes one message at a time for any recipient.
type sinkSession struct {
	o     *Outside
	from  string
	rcpts []string
}

func (s *sinkSession) Reset()        { s.from, s.rcpts = "", nil }
func (s *sinkSession) Logout() error { return nil }

func (s *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}

func (s *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.rcpts = append(s.rcpts, to)
	return nil
}

// Data writes the message durably before answering, as a real MTA must.
func (s *sinkSession) Data(r io.Reader) error {
	body, err := io.ReadAll(io.LimitReader(r, sinkMaxBytes+1))
	if err != nil || len(body) > sinkMaxBytes {
		return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "Message too big, or a line too long"}
	}
	var hdr strings.Builder
	fmt.Fprintf(&hdr, "Return-Path: <%s>\r\n", sanitizeHeader(s.from))
	for _, rc := range s.rcpts {
		fmt.Fprintf(&hdr, "Delivered-To: %s\r\n", sanitizeHeader(rc))
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	name := time.Now().UTC().Format("20060102T150405.000000000") + "-" + hex.EncodeToString(rnd[:]) + ".eml"
	if err := writeFileAtomic(filepath.Join(s.o.MailDir, name), append([]byte(hdr.String()), body...), 0o600); err != nil {
		s.o.log.Error("demo: sink could not store a message", "err", err)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary failure, try again"}
	}
	s.o.log.Info("outside world received a message", "file", name, "recipients", len(s.rcpts))
	return nil
}

// sanitizeHeader keeps an envelope address from breaking the header line.
func sanitizeHeader(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r < ' ' {
			return -1
		}
		return r
	}, s)
}
