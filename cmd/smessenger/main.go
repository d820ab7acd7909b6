// Command smessenger is the one binary of sMessenger: the sealed network
// server, the user's bridge, admin commands and a self-contained demo.
// It only wires flags and config into the packages; no logic lives here.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/alecthomas/kong"

	"smessenger/internal/config"
)

// cli is the command tree; each leaf has a Run method.
type cli struct {
	Config kong.ConfigFlag `help:"TOML config file; every key can also be given as the flag of the same name." placeholder:"FILE"`

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

func run(args []string, out, errOut io.Writer) error {
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
