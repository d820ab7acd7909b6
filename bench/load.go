package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"smessenger/internal/api"
	"smessenger/internal/channel"
	"smessenger/internal/store"
)

// submitMessage is a 10 KB (payload) text message from from to to.
func submitMessage(from, to string, k, j, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Bench <%s>\r\nTo: <%s>\r\nSubject: submission benchmark %d/%d\r\n"+
		"Date: Sat, 01 Jun 2024 12:00:00 +0000\r\nMessage-ID: <sub-%d-%d@bench.example.org>\r\n"+
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n", from, to, k, j, k, j)
	line := strings.Repeat("X", 78) + "\r\n"
	body := strings.Repeat(line, size/len(line)+1)[:size-2] + "\r\n"
	b.WriteString(body)
	return b.Bytes()
}

// loadResult is the outcome of a bounded load run.
type loadResult struct {
	sent    int64
	elapsed time.Duration
	err     error // first failure, if any
}

func (r loadResult) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.sent) / r.elapsed.Seconds()
}

// submitLoad runs clients go-smtp clients against the bridge's submission
// server, each on its own authenticated connection, until total messages
// are accepted or maxTime has passed (a bounded load either way).
func submitLoad(addr, user, pass, to string, clients, total, size int, maxTime time.Duration) loadResult {
	var next, sent atomic.Int64
	var once sync.Once
	var first error
	fail := func(err error) { once.Do(func() { first = err }) }
	deadline := time.Now().Add(maxTime)
	start := time.Now()
	var wg sync.WaitGroup
	for k := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := smtp.Dial(addr)
			if err != nil {
				fail(err)
				return
			}
			defer c.Close()
			if err := c.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
				fail(fmt.Errorf("bench: submission auth: %w", err))
				return
			}
			for j := int(next.Add(1)); j <= total && time.Now().Before(deadline); j = int(next.Add(1)) {
				msg := submitMessage(user, to, k, j, size)
				if err := c.SendMail(user, []string{to}, bytes.NewReader(msg)); err != nil {
					fail(fmt.Errorf("bench: submission: %w", err))
					return
				}
				sent.Add(1)
			}
			_ = c.Quit()
		}()
	}
	wg.Wait()
	return loadResult{sent: sent.Load(), elapsed: time.Since(start), err: first}
}

// readDeviceKeys reads the hex private keys the node child wrote.
func readDeviceKeys(path string) ([]channel.KeyPair, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bench: device keys: %w", err)
	}
	var out []channel.KeyPair
	for _, l := range strings.Fields(string(b)) {
		priv, err := hex.DecodeString(l)
		if err != nil {
			return nil, fmt.Errorf("bench: device keys: %w", err)
		}
		kp, err := channel.KeyPairFromPrivate(priv)
		if err != nil {
			return nil, fmt.Errorf("bench: device keys: %w", err)
		}
		out = append(out, kp)
	}
	return out, nil
}

// openIdleStreams opens one event stream per device key against the node
// (32 handshakes at a time) and waits until each has delivered its backlog
// event, i.e. is live, or until maxTime. It returns how many are open and
// a function that closes them all.
func openIdleStreams(apiAddr, serverKey string, keys []channel.KeyPair, maxTime time.Duration) (int, func(), error) {
	skey, err := channel.ParseFingerprint(serverKey)
	if err != nil {
		return 0, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var live atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	deadline := time.Now().Add(maxTime)
	for _, kp := range keys {
		if time.Now().After(deadline) {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := api.NewClient(apiAddr, channel.ClientConfig{ServerKey: skey, Static: kp, HandshakeTimeout: 60 * time.Second})
			defer c.CloseIdleConnections()
			released := false
			release := func() {
				if !released {
					released = true
					<-sem
				}
			}
			defer release()
			_ = c.StreamEvents(ctx, 0, func(store.Event) error {
				if !released {
					live.Add(1)
					release()
				}
				return nil
			})
		}()
	}
	// Wait for the last handshakes in flight.
	for i := 0; i < cap(sem); i++ {
		select {
		case sem <- struct{}{}:
		case <-time.After(time.Until(deadline) + 30*time.Second):
		}
	}
	return int(live.Load()), func() { cancel(); wg.Wait() }, nil
}
