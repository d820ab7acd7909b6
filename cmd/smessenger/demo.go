package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"smessenger/bridge"
	"smessenger/internal/demo"
	"smessenger/internal/logging"
)

// demoCmd runs the whole system in one process (internal/demo decides
// how; this only wires flags, signals and logs).
type demoCmd struct {
	Data     string `help:"Data folder of the demo; reused when it exists." default:"./smessenger-demo" type:"path"`
	LogFile  string `name:"log-file" help:"Also write logs to this file (appended)." type:"path"`
	LogLevel string `name:"log-level" help:"debug, info, warn or error." default:"info" enum:"debug,info,warn,error"`
	MXListen string `name:"mx-listen" help:"MX address for mail from outside; a port in use falls back to a free one." default:"127.0.0.1:2525"`
	Policy   string `name:"policy" help:"What the bridges do with mail to outside recipients without a known key: refuse or plain." default:"refuse" enum:"refuse,plain"`
}

func (d *demoCmd) Run(g *globals) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var logOut io.Writer = g.errOut
	if d.LogFile != "" {
		f, err := os.OpenFile(d.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("log file: %w", err)
		}
		defer f.Close()
		logOut = io.MultiWriter(g.errOut, f)
	}
	policy := bridge.PolicyRefuse
	if d.Policy == "plain" {
		policy = bridge.PolicyPlain
	}
	return demo.Run(ctx, demo.Config{
		DataDir: d.Data, MXListen: d.MXListen, Policy: policy, LogFile: d.LogFile,
		Log: logging.New(logOut, parseLevel(d.LogLevel)), Out: g.out,
	})
}
