package demo

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"text/tabwriter"
)

// SettingsFileName is the JSON copy of the printed settings in the data
// folder, for scripts.
const SettingsFileName = "demo.json"

// Settings is everything a person or a script needs to use the running
// demo. It is written to DATA/demo.json once every listener is up.
type Settings struct {
	// PID identifies the demo process that wrote the file, so a script can
	// tell a fresh file from one left by an earlier run.
	PID     int           `json:"pid"`
	DataDir string        `json:"data_dir"`
	Users   []UserSetting `json:"users"`
	// MX is where outside senders deliver (host:port).
	MX MXSetting `json:"mx"`
	// SendFromOutside is a ready command line for swaks.
	SendFromOutside string          `json:"send_from_outside"`
	Outside         OutsideSettings `json:"outside"`
	LogFile         string          `json:"log_file,omitempty"`
}

// UserSetting is one user's mail client settings.
type UserSetting struct {
	Address string `json:"address"`
	// Username and Password are the mail client's credentials for both
	// IMAP and SMTP (the bridge password, not the OpenPGP passphrase).
	Username string `json:"username"`
	Password string `json:"password"`
	IMAPHost string `json:"imap_host"`
	IMAPPort int    `json:"imap_port"`
	SMTPHost string `json:"smtp_host"`
	SMTPPort int    `json:"smtp_port"`
	// Security is what both ports offer: plaintext on loopback, or
	// STARTTLS with Certificate (self-signed for 127.0.0.1, ::1 and
	// localhost) pinned.
	Security    string `json:"security"`
	Certificate string `json:"certificate"`
	BridgeDir   string `json:"bridge_dir"`
}

// MXSetting is the MX's address.
type MXSetting struct {
	Host string `json:"host"`
	Port int    `json:"port"`
}

// OutsideSettings describes the local outside world.
type OutsideSettings struct {
	SinkAddr string `json:"sink_addr"`
	MailDir  string `json:"mail_dir"`
	KeysDir  string `json:"keys_dir"`
	WKDAddr  string `json:"wkd_addr"`
	CAFile   string `json:"ca_file"`
}

func hostPort(a net.Addr) (string, int) {
	h, p, _ := net.SplitHostPort(a.String())
	n, _ := strconv.Atoi(p)
	return h, n
}

// JSON returns the settings as indented JSON.
func (s *Settings) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	return append(b, '\n'), nil
}

// PrintTable writes the settings for people.
func (s *Settings) PrintTable(w io.Writer) {
	fmt.Fprintf(w, "\nsMessenger demo is running (data folder %s). Ctrl-C stops it.\n\n", s.DataDir)
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tIMAP\tSMTP\tSECURITY\tUSER NAME\tPASSWORD")
	for _, u := range s.Users {
		fmt.Fprintf(tw, "%s\t%s:%d\t%s:%d\t%s\t%s\t%s\n", u.Address, u.IMAPHost, u.IMAPPort,
			u.SMTPHost, u.SMTPPort, u.Security, u.Username, u.Password)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nThe password is the bridge password (the same for IMAP and SMTP).\n")
	fmt.Fprintf(w, "For STARTTLS, trust each bridge's local certificate:\n")
	for _, u := range s.Users {
		fmt.Fprintf(w, "  %s: %s\n", u.Address, u.Certificate)
	}
	fmt.Fprintf(w, "  (mbsync/isync match the certificate by name, not IP address: give them Host localhost.)\n")
	fmt.Fprintf(w, "\nMX (mail from outside): %s:%d\n  %s\n", s.MX.Host, s.MX.Port, s.SendFromOutside)
	fmt.Fprintf(w, "\nOutside world: mail the relay delivers lands in %s\n", s.Outside.MailDir)
	fmt.Fprintf(w, "  drop a correspondent's public key as %s/ADDRESS.asc to have mail to them encrypted (WKD, demo CA %s)\n",
		s.Outside.KeysDir, s.Outside.CAFile)
	fmt.Fprintf(w, "\nThese settings are also in %s/%s.\n", s.DataDir, SettingsFileName)
}
