package server_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"smessenger/internal/api"
	"smessenger/internal/channel"
	"smessenger/internal/server"
	"smessenger/internal/server/servertest"
	"smessenger/internal/store"
)

// TestDetachedStreamShutdown: an event stream runs detached from net/http
// (its response closes the connection and is chunked), and stopping the
// node ends it cleanly: the client reads the last chunk, and Run returns
// only after the stream has ended.
func TestDetachedStreamShutdown(t *testing.T) {
	env := servertest.Start(t, servertest.OpenBolt(t), nil)
	u := env.NewUser(t, "dora@example.org")
	conn, err := channel.Dial(tctx(t), env.Node.APIAddr().String(), env.ClientConfig(u.Device, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	req, _ := http.NewRequest(http.MethodGet, "http://node/v1/events/stream?after=0", nil)
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !resp.Close || len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" ||
		resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("stream response: %d close=%v te=%v %v", resp.StatusCode, resp.Close, resp.TransferEncoding, resp.Header)
	}
	body := bufio.NewReader(resp.Body)
	if line, err := body.ReadString('\n'); err != nil || !strings.Contains(line, `"Seq":1`) {
		t.Fatalf("first event %q: %v", line, err)
	}
	if got := gauge(t, env, "smessenger_event_streams"); got != 1 {
		t.Fatalf("open streams gauge %v, want 1", got)
	}
	env.Stop(t) // fails the test if Run returned an error or hung
	rest, err := io.ReadAll(body)
	if err != nil {
		t.Fatalf("stream did not end cleanly (last chunk missing): %v, read %q", err, rest)
	}
	if got := gauge(t, env, "smessenger_event_streams"); got != 0 {
		t.Fatalf("open streams gauge %v after shutdown, want 0", got)
	}
}

// TestStreamEndsWhenClientLeaves: a detached stream notices a client that
// went away at its next keep-alive and ends.
func TestStreamEndsWhenClientLeaves(t *testing.T) {
	env := servertest.Start(t, servertest.OpenBolt(t), func(c *server.Config) {
		c.Limits.StreamCheck = 50 * time.Millisecond
	})
	u := env.NewUser(t, "ed@example.org")
	ctx, cancel := context.WithCancel(tctx(t))
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- u.Client.StreamEvents(ctx, 0, func(store.Event) error {
			select {
			case <-started:
			default:
				close(started)
			}
			return nil
		})
	}()
	<-started
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("stream ended with %v", err)
	}
	u.Client.CloseIdleConnections()
	for deadline := time.Now().Add(10 * time.Second); gauge(t, env, "smessenger_event_streams") != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("server still runs the stream of a client that left")
		}
	}
}

// TestRevokedOnOtherNodeRefused: two nodes share one store; a device
// revoked through node A (which closes its conns there) is refused on its
// open connection to node B within the identity cache's second.
func TestRevokedOnOtherNodeRefused(t *testing.T) {
	st := servertest.OpenBolt(t)
	cfg := servertest.InitDir(t, "127.0.0.1")
	a := servertest.StartConfig(t, st, cfg, nil)
	cfgB := cfg
	cfgB.APIListen, cfgB.WKDListen, cfgB.AdminListen = "127.0.0.1:0", "", ""
	b := servertest.StartConfig(t, st, cfgB, nil)
	u := a.NewUser(t, "fay@example.org")
	onB := b.ClientWithKey(t, u.Device, "")
	c := tctx(t)
	w, err := onB.WhoAmI(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Node.RevokeDevice(c, u.Account, w.DeviceID); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	for {
		_, err := onB.WhoAmI(c)
		if errors.Is(err, api.ErrUnauthorized) {
			break
		}
		if err != nil {
			t.Fatalf("call after revocation: %v", err)
		}
		if time.Since(revoked) > 3*time.Second {
			t.Fatal("node B still serves a device revoked through node A")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("refused on node B after %v", time.Since(revoked).Round(time.Millisecond))
}

// gauge reads a gauge of the node's registry.
func gauge(t *testing.T, env *servertest.Env, name string) float64 {
	t.Helper()
	mfs, err := env.Node.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
