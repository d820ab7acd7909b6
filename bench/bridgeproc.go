package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"smessenger/bridge"
	"smessenger/imapd"
	"smessenger/internal/api"
	"smessenger/internal/channel"
	"smessenger/internal/logging"
	"smessenger/internal/store"
	"smessenger/smtpd"
)

// passEnv carries the bridge passphrase to the bridge child (not argv,
// which every local user can read).
const passEnv = "SMESSENGER_BENCH_PASSPHRASE"

// bridgeReady is what the bridge child reports once it has synced.
type bridgeReady struct {
	IMAP     string  `json:"imap"`
	SMTP     string  `json:"smtp"`
	SyncSecs float64 `json:"sync_s"` // Open + Run until the first sync is done
	OpenSecs float64 `json:"open_s"` // of which bridge.Open (vault unlock, Argon2id)
	Messages int     `json:"messages"`
}

// apiServer adapts *api.Client to bridge.Server, as the command line wires it.
type apiServer struct{ *api.Client }

func (s apiServer) WhoAmI(ctx context.Context) (bridge.WhoAmI, error) {
	w, err := s.Client.WhoAmI(ctx)
	return bridge.WhoAmI(w), err
}

func (s apiServer) Deliver(ctx context.Context, ds []bridge.Delivery) error {
	out := make([]api.Delivery, len(ds))
	for i, d := range ds {
		out[i] = api.Delivery(d)
	}
	return s.Client.Deliver(ctx, out)
}

func (s apiServer) DeliverWithCopy(ctx context.Context, ds []bridge.Delivery, mailbox string, cp store.NewMessage) (store.MessageMeta, error, error) {
	return s.Client.DeliverWithCopy(ctx, ds, mailbox, cp)
}

func newAPIServer(addr string, cfg channel.ClientConfig) bridge.Server {
	cfg.HandshakeTimeout = 30 * time.Second
	return apiServer{api.NewClient(addr, cfg)}
}

// runBridge is the "bridge" mode: it opens the account logged in under
// -dir, runs it until the first sync is done (timed: this is the cold first
// sync when the cache is empty), then serves IMAP and SMTP submission on
// 127.0.0.1 port 0 until its stdin closes. Background body prefetch is off
// so that the body download figure measures on-demand fetching.
func runBridge(args []string) error {
	fs := flag.NewFlagSet("bridge", flag.ContinueOnError)
	dir := fs.String("dir", "", "bridge data folder (made by bridge.Login)")
	syncTimeout := fs.Duration("sync-timeout", 5*time.Minute, "bound on the first sync")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pass := []byte(os.Getenv(passEnv))
	if len(pass) == 0 {
		return errors.New("bench: bridge: " + passEnv + " is not set")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := logging.New(os.Stderr, slog.LevelWarn)
	start := time.Now()
	acct, err := bridge.Open(ctx, bridge.OpenConfig{DataDir: *dir, Passphrase: pass, NewServer: newAPIServer,
		Log: log, PrefetchWorkers: -1})
	if err != nil {
		return err
	}
	defer acct.Close()
	opened := time.Since(start)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- acct.Run(runCtx) }()
	wctx, wcancel := context.WithTimeout(ctx, *syncTimeout)
	err = acct.WaitSynced(wctx)
	wcancel()
	if err != nil {
		cancel()
		<-runDone
		return err
	}
	ready := bridgeReady{SyncSecs: time.Since(start).Seconds(), OpenSecs: opened.Seconds()}
	msgs, err := acct.Messages(ctx, "INBOX")
	if err != nil {
		return err
	}
	ready.Messages = len(msgs)
	stopFronts, err := serveFrontEnds(acct, log, &ready)
	if err != nil {
		cancel()
		<-runDone
		return err
	}
	if err := printReady(ready); err != nil {
		return err
	}
	waitForStdinEOF(ctx)
	stopFronts()
	cancel()
	return <-runDone
}

// serveFrontEnds starts imapd and the submission server for acct.
func serveFrontEnds(acct *bridge.Account, log *slog.Logger, ready *bridgeReady) (func(), error) {
	router, err := bridge.NewRouter(bridge.RouterConfig{Account: acct, Log: log})
	if err != nil {
		return nil, err
	}
	imapLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	smtpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		imapLn.Close()
		return nil, err
	}
	is := imapd.New(imapd.Config{Logger: log, Users: imapd.AuthenticatorFunc(func(u, p string) (bridge.View, bool) {
		if acct.CheckPassword(u, p) {
			return acct, true
		}
		return nil, false
	})})
	sub := smtpd.NewSubmission(smtpd.SubmissionConfig{Logger: log, Auth: func(u, p string) (smtpd.Sender, bool) {
		if acct.CheckPassword(u, p) {
			return router, true
		}
		return nil, false
	}})
	go func() { _ = is.Serve(imapLn) }()
	go func() { _ = sub.Serve(smtpLn) }()
	ready.IMAP, ready.SMTP = imapLn.Addr().String(), smtpLn.Addr().String()
	return func() {
		is.Close()
		sub.Close()
	}, nil
}
