package smtpd

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// mxPipeConn returns an mxConn over one end of a loopback TCP connection
// and the other end, as the MX's listener would wrap it.
func mxPipeConn(t *testing.T) (*mxConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); peer.Close() })
	mx := &MX{limiter: newMXLimiter(10, 100, time.Now)}
	mc := &mxConn{Conn: c, mx: mx}
	mc.checking.Store(true)
	return mc, peer
}

// readSmall reads n bytes from r in small pieces, as go-smtp's 4 KiB
// bufio.Reader does.
func readSmall(t *testing.T, r io.Reader, n, piece int) []byte {
	t.Helper()
	var out []byte
	b := make([]byte, piece)
	for len(out) < n {
		k, err := r.Read(b[:min(piece, n-len(out))])
		out = append(out, b[:k]...)
		if err != nil {
			t.Fatalf("read after %d bytes: %v", len(out), err)
		}
	}
	return out
}

// TestMXReadAhead: during DATA, bytes come out in order and unchanged
// whatever the reader's piece size; bytes read ahead past the message (a
// pipelined command) are served after read-ahead is off, and the buffer
// goes back to the pool once they are.
func TestMXReadAhead(t *testing.T) {
	mc, peer := mxPipeConn(t)
	body := strings.Repeat("0123456789abcdef\r\n", 2000) + ".\r\n" // 36 KB
	next := "MAIL FROM:<a@b.example>\r\n"
	if _, err := io.WriteString(peer, body+next); err != nil {
		t.Fatal(err)
	}
	mc.setReadAhead(true)
	got := readSmall(t, mc, len(body), 4096)
	if !bytes.Equal(got, []byte(body)) {
		t.Fatal("read-ahead changed or reordered the message bytes")
	}
	mc.setReadAhead(false)
	rest := readSmall(t, mc, len(next), 7)
	if string(rest) != next {
		t.Fatalf("pipelined command after the message: got %q, want %q", rest, next)
	}
	if mc.ahead != nil || len(mc.aheadData) != 0 {
		t.Fatal("read-ahead buffer still held after it was drained with read-ahead off")
	}
}

// TestMXReadAheadBareLF: the bare-newline check sees every byte read
// ahead: a bare LF inside a read-ahead chunk still ends the connection.
func TestMXReadAheadBareLF(t *testing.T) {
	mc, peer := mxPipeConn(t)
	if _, err := io.WriteString(peer, "line one\r\nsmuggled\n.\r\n"); err != nil {
		t.Fatal(err)
	}
	mc.setReadAhead(true)
	_ = mc.SetReadDeadline(time.Now().Add(10 * time.Second)) // a missed check fails, not hangs
	b := make([]byte, 4096)
	var err error
	for err == nil {
		_, err = mc.Read(b)
	}
	if !errors.Is(err, errBareNewlineConn) {
		t.Fatalf("bare LF under read-ahead: got %v, want errBareNewlineConn", err)
	}
}
