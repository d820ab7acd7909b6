package channel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// mutate decides what the man in the middle sends for client→server frame i
// (0 is handshake message 1; transport frames start at 1). wire is the frame
// as received, header included. It returns the chunks to send instead and
// whether to cut the connection afterwards.
type mutate func(i int, wire []byte) (out [][]byte, cut bool)

// startTamperer relays between a plaintext client and server on TCP,
// rewriting the client's frames with m.
func startTamperer(t *testing.T, upstream string, m mutate) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		down, err := ln.Accept()
		if err != nil {
			return
		}
		defer down.Close()
		up, err := net.Dial("tcp", upstream)
		if err != nil {
			return
		}
		defer up.Close()
		go func() { io.Copy(down, up); down.Close() }()
		for i := 0; ; i++ {
			var hdr [2]byte
			if _, err := io.ReadFull(down, hdr[:]); err != nil {
				return
			}
			wire := make([]byte, 2+int(binary.BigEndian.Uint16(hdr[:])))
			copy(wire, hdr[:])
			if _, err := io.ReadFull(down, wire[2:]); err != nil {
				return
			}
			out, cut := m(i, wire)
			for _, o := range out {
				if _, err := up.Write(o); err != nil {
					return
				}
			}
			if cut {
				return
			}
		}
	}()
	return ln.Addr().String()
}

func TestTamperedFramesRejected(t *testing.T) {
	const k = 3 // the third transport frame (msg-2) is the one attacked
	var held []byte
	pass := func(w []byte) [][]byte { return [][]byte{w} }
	cases := []struct {
		name    string
		m       mutate
		wantErr error
	}{
		{"replay", func(i int, w []byte) ([][]byte, bool) {
			if i == k-1 {
				return [][]byte{w, w}, false
			}
			return pass(w), false
		}, ErrFrame},
		{"reorder", func(i int, w []byte) ([][]byte, bool) {
			switch i {
			case k:
				held = w
				return nil, false
			case k + 1:
				return [][]byte{w, held}, false
			}
			return pass(w), false
		}, ErrFrame},
		{"drop", func(i int, w []byte) ([][]byte, bool) {
			if i == k {
				return nil, false
			}
			return pass(w), false
		}, ErrFrame},
		{"bitflip-body", func(i int, w []byte) ([][]byte, bool) {
			if i == k {
				w[5] ^= 0x01
			}
			return pass(w), false
		}, ErrFrame},
		{"bitflip-tag", func(i int, w []byte) ([][]byte, bool) {
			if i == k {
				w[len(w)-1] ^= 0x80
			}
			return pass(w), false
		}, ErrFrame},
		{"length-shrunk", func(i int, w []byte) ([][]byte, bool) {
			if i == k {
				binary.BigEndian.PutUint16(w, uint16(len(w)-2-4))
				return [][]byte{w[:len(w)-4]}, false
			}
			return pass(w), false
		}, ErrFrame},
		{"length-below-tag", func(i int, w []byte) ([][]byte, bool) {
			if i == k {
				return [][]byte{{0, 5, 1, 2, 3, 4, 5}}, false
			}
			return pass(w), false
		}, ErrFrame},
		{"truncated", func(i int, w []byte) ([][]byte, bool) {
			if i == k {
				return [][]byte{w[:len(w)/2]}, true
			}
			return pass(w), false
		}, io.ErrUnexpectedEOF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := runTampered(t, tc.m, 6)
			want := []byte("msg-0|msg-1|")
			if !bytes.Equal(got, want) {
				t.Fatalf("application received %q, want exactly the untouched prefix %q", got, want)
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("server read error = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// TestTamperedHandshakeRejected: a flipped bit in message 1 fails the
// handshake on both sides and nothing reaches Authorize's callers.
func TestTamperedHandshakeRejected(t *testing.T) {
	// After the 2-byte header: e (32), encrypted s (48), empty payload's tag (16).
	for _, pos := range []int{2, 40, 97} {
		t.Run(fmt.Sprint(pos), func(t *testing.T) {
			s := startServer(t, ServerConfig{plaintext: true}, echo)
			addr := startTamperer(t, s.addr, func(i int, w []byte) ([][]byte, bool) {
				if i == 0 {
					w[pos] ^= 0x04
				}
				return [][]byte{w}, false
			})
			cfg := s.client(t, "alice")
			cfg.plaintext = true
			c, err := Dial(ctxT(t), addr, cfg)
			if !errors.Is(err, ErrHandshake) {
				if c != nil {
					c.Close()
				}
				t.Fatalf("client err = %v", err)
			}
			if err := s.serverErr(t); !errors.Is(err, ErrHandshake) {
				t.Fatalf("server err = %v", err)
			}
		})
	}
}

// runTampered sends n messages "msg-i|" through the tamperer and returns what
// the server application read and the error that ended its reading.
func runTampered(t *testing.T, m mutate, n int) ([]byte, error) {
	t.Helper()
	type result struct {
		data []byte
		err  error
	}
	res := make(chan result, 1)
	s := startServer(t, ServerConfig{plaintext: true}, func(c *Conn) {
		var got bytes.Buffer
		buf := make([]byte, 1024)
		for {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			k, err := c.Read(buf)
			got.Write(buf[:k])
			if err != nil {
				// The error is sticky: a second Read fails the same way.
				if _, err2 := c.Read(buf); !errors.Is(err2, err) && !isTimeout(err) {
					err = fmt.Errorf("second read returned %v after %w", err2, err)
				}
				res <- result{got.Bytes(), err}
				return
			}
		}
	})
	addr := startTamperer(t, s.addr, m)
	cfg := s.client(t, "alice")
	cfg.plaintext = true
	c, err := Dial(ctxT(t), addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range n {
		if _, err := fmt.Fprintf(c, "msg-%d|", i); err != nil {
			break // the server may already have closed
		}
	}
	var r result
	select {
	case r = <-res:
	case <-time.After(15 * time.Second):
		t.Fatal("server never ended the connection")
	}
	// The server closed the channel: the client's reads end too.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("client read after server rejected a frame: %v", err)
	}
	return r.data, r.err
}
