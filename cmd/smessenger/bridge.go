package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"text/tabwriter"

	"golang.org/x/term"

	"smessenger/bridge"
	"smessenger/imapd"
	"smessenger/internal/demo"
	"smessenger/internal/logging"
)

// bridgeCmd groups the bridge role: the user's side, on the user's machine.
type bridgeCmd struct {
	Run      bridgeRunCmd      `cmd:"" default:"withargs" help:"Run the bridge: sync with the server and serve IMAP and SMTP to the mail client on 127.0.0.1 (the default)."`
	Login    bridgeLoginCmd    `cmd:"" help:"Set up this machine's bridge for an account: key, device enrolment, mail client password."`
	Key      bridgeKeyCmd      `cmd:"" help:"Export or check the account's secret OpenPGP key (for a second device)."`
	Contacts bridgeContactsCmd `cmd:"" help:"The local keyring: imported keys, pinned keys of internal recipients, Autocrypt keys."`
}

// bridgeDataFlags locate and unlock a bridge's data folder.
type bridgeDataFlags struct {
	Data           string `name:"data" help:"Bridge data folder (vault, encrypted cache, contacts, local certificate)." default:"./smessenger-bridge" type:"path" env:"SMESSENGER_BRIDGE_DATA"`
	PassphraseFile string `name:"passphrase-file" help:"Read the passphrase from the first line of this file; otherwise from $SMESSENGER_PASSPHRASE; otherwise it is asked on the terminal without echo." type:"path"`
}

// passphraseEnv is the environment variable holding the passphrase.
const passphraseEnv = "SMESSENGER_PASSPHRASE"

// errNoPassphrase is returned when no source of the passphrase is available.
var errNoPassphrase = errors.New("no passphrase: give --passphrase-file, set " + passphraseEnv + ", or run on a terminal")

// passphrase reads the passphrase from the file, the environment or the
// terminal (twice when confirm, for a new one).
func (f bridgeDataFlags) passphrase(g *globals, confirm bool) ([]byte, error) {
	return readPassphrase(f.PassphraseFile, "Passphrase", confirm, g.errOut)
}

func readPassphrase(file, prompt string, confirm bool, errOut io.Writer) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("passphrase file: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			return nil, errors.New("passphrase file: the first line is empty")
		}
		return []byte(line), nil
	}
	if v := os.Getenv(passphraseEnv); v != "" {
		return []byte(v), nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, errNoPassphrase
	}
	fmt.Fprintf(errOut, "%s: ", prompt)
	p, err := term.ReadPassword(fd)
	fmt.Fprintln(errOut)
	if err != nil {
		return nil, fmt.Errorf("read passphrase: %w", err)
	}
	if len(p) == 0 {
		return nil, errors.New("an empty passphrase is not allowed")
	}
	if confirm {
		fmt.Fprintf(errOut, "%s (again): ", prompt)
		q, err := term.ReadPassword(fd)
		fmt.Fprintln(errOut)
		if err != nil {
			return nil, fmt.Errorf("read passphrase: %w", err)
		}
		if string(p) != string(q) {
			return nil, errors.New("the two passphrases differ")
		}
	}
	return p, nil
}

type bridgeLoginCmd struct {
	bridgeDataFlags
	Address              string `arg:"" help:"The account's address (as given to 'user add')."`
	Server               string `name:"server" help:"The server's API address host:port (or onion:port), as printed by 'server init'." required:""`
	ServerKey            string `name:"server-key" help:"The server's Noise key, as printed by 'server init'; it is pinned." required:""`
	Token                string `name:"token" help:"One-time enrolment token from 'user add' or 'user token'." required:"" env:"SMESSENGER_TOKEN"`
	Name                 string `name:"name" help:"Display name for the OpenPGP User ID."`
	Proxy                string `name:"proxy" help:"Reach the server through this SOCKS5 proxy (e.g. Tor: socks5://127.0.0.1:9050); kept for 'bridge run'." placeholder:"URL"`
	ImportKey            string `name:"import-key" help:"Use this secret key (from 'bridge key export' on another device) instead of generating one." type:"path" placeholder:"FILE"`
	ImportPassphraseFile string `name:"import-passphrase-file" help:"Passphrase of the imported key, if it differs from the new one." type:"path"`
	IMAPListen           string `name:"imap-listen" help:"IMAP address to print in the settings (as 'bridge run' will use)." default:"127.0.0.1:1143"`
	SMTPListen           string `name:"smtp-listen" help:"SMTP address to print in the settings." default:"127.0.0.1:1025"`
}

func (c *bridgeLoginCmd) Run(g *globals) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var imported, importPass []byte
	if c.ImportKey != "" {
		var err error
		if imported, err = os.ReadFile(c.ImportKey); err != nil {
			return fmt.Errorf("import key: %w", err)
		}
		if c.ImportPassphraseFile != "" {
			if importPass, err = readPassphrase(c.ImportPassphraseFile, "Passphrase of the imported key", false, g.errOut); err != nil {
				return err
			}
		}
	}
	pass, err := c.passphrase(g, true)
	if err != nil {
		return err
	}
	res, err := bridge.Login(ctx, bridge.LoginConfig{
		DataDir: c.Data, Address: c.Address, Name: c.Name, ServerAddr: c.Server, ServerKey: c.ServerKey,
		Token: c.Token, Passphrase: pass, Proxy: c.Proxy, ImportedKey: imported, ImportPassphrase: importPass,
		NewServer: demo.NewAPIServer,
	})
	if err != nil {
		return err
	}
	certPath, _, err := imapd.GenerateLocalCert(c.Data)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.out, "Bridge set up for %s in %s (key %s).\n\n", strings.Join(res.Addresses, ", "), res.DataDir, res.Fingerprint)
	tw := tabwriter.NewWriter(g.out, 0, 2, 2, ' ', 0)
	fmt.Fprintf(tw, "IMAP server\t%s\n", c.IMAPListen)
	fmt.Fprintf(tw, "SMTP server\t%s\n", c.SMTPListen)
	fmt.Fprintf(tw, "Security\tnone (plaintext stays on this machine) or STARTTLS\n")
	fmt.Fprintf(tw, "User name\t%s\n", res.Addresses[0])
	fmt.Fprintf(tw, "Password\t%s\n", res.BridgePassword)
	fmt.Fprintf(tw, "Certificate to trust for STARTTLS\t%s\n", certPath)
	tw.Flush()
	fmt.Fprintf(g.out, "\nThe password is shown only this once. Start the bridge with: smessenger bridge --data %s\n", c.Data)
	return nil
}

type bridgeRunCmd struct {
	bridgeDataFlags
	IMAPListen  string `name:"imap-listen" help:"IMAP (plaintext or STARTTLS) for the mail client; empty: off." default:"127.0.0.1:1143"`
	SMTPListen  string `name:"smtp-listen" help:"SMTP submission (plaintext or STARTTLS) for the mail client; empty: off." default:"127.0.0.1:1025"`
	IMAPSListen string `name:"imaps-listen" help:"IMAP over TLS for clients that want it; empty: off." default:""`
	Policy      string `name:"policy" help:"Mail to outside recipients without a known key: refuse (fail at RCPT with a clear reason) or plain (send over TLS only)." default:"refuse" enum:"refuse,plain"`
	SignPlain   bool   `name:"sign-plain" help:"Sign plaintext outside mail (PGP/MIME multipart/signed)."`
	WKD         bool   `name:"wkd" help:"Look up outside recipients' keys in the Web Key Directory (through the login's proxy, if any)." default:"true" negatable:""`
	LogLevel    string `name:"log-level" help:"debug, info, warn or error." default:"info" enum:"debug,info,warn,error"`
	MemoryLimit int64  `name:"memory-limit-mib" help:"Soft memory ceiling in MiB: the Go runtime collects garbage harder as the bridge nears it (0: no ceiling)." default:"256"`
}

func (c *bridgeRunCmd) Run(g *globals) error {
	if c.MemoryLimit > 0 {
		// A soft limit: large decrypts and first syncs leave garbage that the
		// default GC pacing would let grow to twice the live heap.
		debug.SetMemoryLimit(c.MemoryLimit << 20)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pass, err := c.passphrase(g, false)
	if err != nil {
		return err
	}
	log := logging.New(g.errOut, parseLevel(c.LogLevel))
	b, err := demo.OpenBridge(ctx, demo.BridgeConfig{
		DataDir: c.Data, Passphrase: pass,
		IMAPListen: c.IMAPListen, SMTPListen: c.SMTPListen, IMAPSListen: c.IMAPSListen,
		Policy: c.Policy, SignPlain: c.SignPlain, NoWKD: !c.WKD,
		Log: log, Progress: os.Stderr,
	})
	if err != nil {
		return err
	}
	for _, l := range []struct {
		name string
		addr fmt.Stringer
	}{{"imap", b.IMAPAddr()}, {"smtp", b.SMTPAddr()}, {"imaps", b.IMAPSAddr()}} {
		if l.addr != nil {
			fmt.Fprintf(g.out, "%s listening on %s\n", l.name, l.addr)
		}
	}
	return b.Run(ctx)
}

type bridgeKeyCmd struct {
	Export bridgeKeyExportCmd `cmd:"" help:"Write the account's secret key, protected by the passphrase, for 'bridge login --import-key' on another device."`
	Import bridgeKeyImportCmd `cmd:"" help:"Check that a secret key file unlocks and show what it is; set up a device with it by 'bridge login --import-key FILE'."`
}

type bridgeKeyExportCmd struct {
	bridgeDataFlags
	Out string `name:"out" help:"Write to this file (mode 0600) instead of standard output." type:"path" placeholder:"FILE"`
}

func (c *bridgeKeyExportCmd) Run(g *globals) error {
	pass, err := c.passphrase(g, false)
	if err != nil {
		return err
	}
	armored, err := bridge.ExportKey(c.Data, pass)
	if err != nil {
		return err
	}
	if c.Out == "" {
		_, err = g.out.Write(armored)
		return err
	}
	f, err := os.OpenFile(c.Out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if _, err := f.Write(armored); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

type bridgeKeyImportCmd struct {
	PassphraseFile string `name:"passphrase-file" help:"Passphrase of the key file; otherwise $SMESSENGER_PASSPHRASE or the terminal." type:"path"`
	File           string `arg:"" help:"Secret key file (armored OpenPGP)." type:"existingfile"`
}

func (c *bridgeKeyImportCmd) Run(g *globals) error {
	data, err := os.ReadFile(c.File)
	if err != nil {
		return err
	}
	pass, err := readPassphrase(c.PassphraseFile, "Passphrase of the key", false, g.errOut)
	if err != nil {
		return err
	}
	k, err := bridge.ImportKey(data, pass)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.out, "Key %s for %s unlocks.\nUse it on this device with: smessenger bridge login ADDRESS --import-key %s …\n",
		k.Fingerprint(), strings.Join(k.Addresses(), ", "), c.File)
	return nil
}

type bridgeContactsCmd struct {
	Import bridgeContactsImportCmd `cmd:"" help:"Import public keys (armored or binary) into the local keyring."`
	List   bridgeContactsListCmd   `cmd:"" help:"List known keys: imported, pinned (internal recipients) and Autocrypt."`
	Remove bridgeContactsRemoveCmd `cmd:"" help:"Forget everything about an address."`
	Trust  bridgeContactsTrustCmd  `cmd:"" help:"Accept the changed key of an internal recipient that a send was refused for."`
}

func openContacts(g *globals, f bridgeDataFlags) (*bridge.Contacts, error) {
	pass, err := f.passphrase(g, false)
	if err != nil {
		return nil, err
	}
	return bridge.OpenContactsDir(f.Data, pass)
}

type bridgeContactsImportCmd struct {
	bridgeDataFlags
	File string `arg:"" help:"Key file, e.g. FILE.asc." type:"existingfile"`
}

func (c *bridgeContactsImportCmd) Run(g *globals) error {
	data, err := os.ReadFile(c.File)
	if err != nil {
		return err
	}
	ct, err := openContacts(g, c.bridgeDataFlags)
	if err != nil {
		return err
	}
	added, err := ct.Import(data)
	if err != nil {
		return err
	}
	for _, a := range added {
		fmt.Fprintf(g.out, "imported %s %s\n", a.Address, a.Fingerprint)
	}
	return nil
}

type bridgeContactsListCmd struct {
	bridgeDataFlags
}

func (c *bridgeContactsListCmd) Run(g *globals) error {
	ct, err := openContacts(g, c.bridgeDataFlags)
	if err != nil {
		return err
	}
	list, err := ct.List()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(g.out, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tSOURCE\tFINGERPRINT\tCHANGED KEY WAITING")
	for _, a := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Address, a.Source, a.Fingerprint, a.Pending)
	}
	return tw.Flush()
}

type bridgeContactsRemoveCmd struct {
	bridgeDataFlags
	Address string `arg:"" help:"The contact's address."`
}

func (c *bridgeContactsRemoveCmd) Run(g *globals) error {
	ct, err := openContacts(g, c.bridgeDataFlags)
	if err != nil {
		return err
	}
	if err := ct.Remove(c.Address); err != nil {
		return err
	}
	fmt.Fprintf(g.out, "removed %s\n", c.Address)
	return nil
}

type bridgeContactsTrustCmd struct {
	bridgeDataFlags
	Address string `arg:"" help:"The internal recipient's address."`
}

func (c *bridgeContactsTrustCmd) Run(g *globals) error {
	ct, err := openContacts(g, c.bridgeDataFlags)
	if err != nil {
		return err
	}
	fp, err := ct.Trust(c.Address)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.out, "%s is now pinned to key %s\n", c.Address, fp)
	return nil
}
