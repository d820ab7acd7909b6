package main

import "fmt"

type demoCmd struct {
	Data    string `help:"Data folder of the demo; reused when it exists." default:"./smessenger-demo" type:"path"`
	LogFile string `help:"Also write logs to this file." type:"path"`
}

func (d *demoCmd) Run(g *globals) error {
	fmt.Fprintf(g.out, `sMessenger demo (data folder %s)

The demo will start, in this process and on 127.0.0.1 only:
  - a sealed-network server on an embedded bbolt store,
  - two users, alice@example.test and bob@example.test, each with a bridge
    serving IMAP and SMTP submission to a mail client,
  - an MX on 127.0.0.1:2525 for mail from outside,
  - a local "outside world" SMTP sink and WKD server.
It is being assembled; this build prints the plan only.
`, d.Data)
	return nil
}
