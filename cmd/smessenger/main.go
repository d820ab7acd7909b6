// Command smessenger is the one binary of sMessenger: the sealed network
// server, the user's bridge, admin commands and a self-contained demo.
// It only wires flags and config into the packages; no logic lives here.
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/alecthomas/kong"

	"smessenger/internal/config"
)

// cli is the command tree; each leaf has a Run method.
type cli struct {
	Config kong.ConfigFlag `help:"TOML config file; every key can also be given as the flag of the same name." placeholder:"FILE"`

	Server serverCmd `cmd:"" help:"The sealed network server: run a node, init, DKIM, outbound queue."`
	User   userCmd   `cmd:"" help:"Manage the server's users (run on the server, with its store)."`
	Alias  aliasCmd  `cmd:"" help:"Manage aliases of users."`
	Bridge bridgeCmd `cmd:"" help:"The bridge on the user's machine: login, run (IMAP and SMTP for the mail client), key, contacts."`

	Demo    demoCmd    `cmd:"" help:"Run the whole system in one process: a server, alice and bob with their bridges, an MX and a local outside world."`
	Version versionCmd `cmd:"" help:"Print the version."`
}

type versionCmd struct{}

func (versionCmd) Run(g *globals) error {
	fmt.Fprintln(g.out, "smessenger", version)
	return nil
}

var version = "0.1.0-dev"

// globals carries what every command needs from main.
type globals struct {
	out    io.Writer
	errOut io.Writer
	ctx    *kong.Context
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "smessenger:", err)
		os.Exit(1)
	}
}

// withDataConfig makes `--data-dir DIR` imply `--config DIR/config.toml`
// when that file exists and no --config was given, so admin commands on a
// server's folder see the same store settings as the server.
func withDataConfig(args []string) []string {
	dir := ""
	for i, a := range args {
		switch {
		case a == "--config" || strings.HasPrefix(a, "--config="):
			return args
		case a == "--data-dir" && i+1 < len(args):
			dir = args[i+1]
		case strings.HasPrefix(a, "--data-dir="):
			dir = strings.TrimPrefix(a, "--data-dir=")
		}
	}
	if dir == "" {
		return args
	}
	p := filepath.Join(dir, "config.toml")
	if _, err := os.Stat(p); err != nil {
		return args
	}
	return append([]string{"--config=" + p}, args...)
}

func run(args []string, out, errOut io.Writer) error {
	args = withDataConfig(args)
	var c cli
	parser, err := kong.New(&c,
		kong.Name("smessenger"),
		kong.Description("sMessenger: an end-to-end encrypted mail gateway. Your mail client speaks IMAP and SMTP to the bridge on this machine; everything stored and sent is OpenPGP."),
		kong.UsageOnError(),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.Configuration(func(r io.Reader) (kong.Resolver, error) {
			b, err := io.ReadAll(r)
			if err != nil {
				return nil, err
			}
			return config.Parse("config", b)
		}),
		kong.Writers(out, errOut),
	)
	if err != nil {
		return err
	}
	kctx, err := parser.Parse(args)
	if err != nil {
		return err
	}
	return kctx.Run(&globals{out: out, errOut: errOut, ctx: kctx})
}
