package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"smessenger/bridge"
)

// redisProc is a redis-server child on a unix socket in its own folder,
// durable as the store requires (appendonly yes, appendfsync always), so
// that the Redis MX figure pays for an fsync per commit as bbolt's does.
type redisProc struct {
	cmd  *exec.Cmd
	sock string
	done chan error
}

// startRedis starts redis-server in dir and waits (bounded) until it
// answers PING.
func startRedis(dir, logPath string) (*redisProc, error) {
	exe, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("bench: redis-server not found (make test installs it): %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "redis.sock")
	cmd := exec.Command(exe, "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
		"--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", dir,
		"--daemonize", "no", "--loglevel", "warning", "--logfile", logPath)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start redis-server: %w", err)
	}
	p := &redisProc{cmd: cmd, sock: sock, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	c := goredis.NewClient(&goredis.Options{Network: "unix", Addr: sock})
	defer c.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return p, nil
		}
		select {
		case werr := <-p.done:
			return nil, fmt.Errorf("bench: redis-server exited (%v); see %s", werr, logPath)
		default:
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("bench: redis-server did not answer PING: %v; see %s", err, logPath)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// url is the store URL of the server.
func (p *redisProc) url() string { return "unix://" + p.sock }

// stop ends the server (SIGTERM, then SIGKILL after 10 s).
func (p *redisProc) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// redisMX runs the MX load once more against a second node whose store is
// a fresh redis-server: the same MX, sealing and durable commit, only the
// store differs. It runs right after the smtp-sink peer, whose figure its
// ratio uses.
func (r *run) redisMX() {
	defer r.step("MX load on Redis (smtp_bench.py --target)")()
	dir := filepath.Join(r.dir, "redis")
	rp, err := startRedis(dir, filepath.Join(r.logDir, "redis.log"))
	if err != nil {
		r.mxRedisErr = err
		return
	}
	defer rp.stop()
	var info nodeReady
	node, err := startChild("node-redis", filepath.Join(r.logDir, "node-redis.log"), nil, 60*time.Second, &info,
		"node", "-dir", filepath.Join(r.dir, "node-redis"), "-users", bob, "-redis-url", rp.url())
	if err != nil {
		r.mxRedisErr = err
		return
	}
	// bob needs a public key before the MX accepts mail for him.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := r.login(bob, filepath.Join(r.dir, "bob-redis"), nil)
	cfg.ServerAddr, cfg.ServerKey, cfg.Token = info.API, info.ServerKey, info.Tokens[bob][0]
	if _, err := bridge.Login(ctx, cfg); err != nil {
		r.mxRedisErr = err
		_ = node.stop()
		return
	}
	r.mxRedis, r.mxRedisErr = r.sc.smtp("smtp-target-redis", info.MX, r.o.mxRuns, r.o.mxMessages, 20, 10240, false)
	if err := node.stop(); err != nil {
		r.note("redis node stop: %v", err)
	}
}
