package channel

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/flynn/noise"
)

// fixedKeys are deterministic so that seeds built from them stay valid.
func fixedKeys(t testing.TB, b byte) KeyPair {
	kp, err := KeyPairFromPrivate(bytes.Repeat([]byte{b}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

var fuzzMessages = [][]byte{[]byte("first"), bytes.Repeat([]byte("second"), 100), {}, []byte("fourth")}

func fuzzCipher() *noise.CipherState {
	return noise.UnsafeNewCipherState(suite, [32]byte{7, 7, 7}, 0)
}

// validStream is what a genuine sender with fuzzCipher's key writes.
func validStream(t testing.TB) []byte {
	cs := fuzzCipher()
	var out []byte
	for _, m := range fuzzMessages {
		bp, frame, err := sealFrame(cs, m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, frame...)
		framePool.Put(bp)
	}
	return out
}

// FuzzFrameDecoder feeds arbitrary bytes to a server-side Conn past its
// handshake. Whatever arrives, Read must not panic, must end with ErrFrame or
// EOF, and must only ever return bytes of genuine frames, in order.
func FuzzFrameDecoder(f *testing.F) {
	valid := validStream(f)
	f.Add(valid)
	f.Add(valid[:len(valid)-1])
	flipped := bytes.Clone(valid)
	flipped[10] ^= 1
	f.Add(flipped)
	f.Add(append(bytes.Clone(valid[:23]), valid[:23]...)) // first frame replayed
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add([]byte{0, 5, 1, 2, 3, 4, 5})
	f.Add([]byte{0xff, 0xff})
	var want []byte
	for _, m := range fuzzMessages {
		want = append(want, m...)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b := net.Pipe()
		c := newConn(a, a)
		c.server = &ServerConfig{}
		c.recv = fuzzCipher()
		c.hsDone.Store(true)
		go func() {
			b.Write(data)
			b.Close()
		}()
		defer c.Close()
		got, err := io.ReadAll(c)
		if !bytes.HasPrefix(want, got) {
			t.Fatalf("decoder returned bytes that no genuine frame carried: %q", got)
		}
		if err != nil && !errors.Is(err, ErrFrame) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("unexpected error kind: %v", err)
		}
		if bytes.Equal(data, valid) && (err != nil || !bytes.Equal(got, want)) {
			t.Fatalf("valid stream: got %q, %v", got, err)
		}
	})
}

// FuzzHandshakeMessage sends arbitrary bytes as handshake message 1 to a
// server Conn. It must fail cleanly, never calling Authorize, unless the
// bytes are a genuine message 1 from the known device.
func FuzzHandshakeMessage(f *testing.F) {
	srv, dev := fixedKeys(f, 1), fixedKeys(f, 2)
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite: suite, Pattern: noise.HandshakeIK, Initiator: true, Prologue: []byte(prologue),
		StaticKeypair: noise.DHKey{Private: dev.Private, Public: dev.Public}, PeerStatic: srv.Public,
	})
	if err != nil {
		f.Fatal(err)
	}
	genuine, _, _, err := hs.WriteMessage(nil, []byte("token"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(genuine)
	f.Add(genuine[:helloMin-1])
	f.Add(bytes.Repeat([]byte{0}, helloMin))
	f.Add(bytes.Repeat([]byte{0xff}, helloMin+MaxPayload+1))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, msg []byte) {
		if len(msg) > maxFrame {
			msg = msg[:maxFrame]
		}
		var called []byte
		cfg := ServerConfig{
			Static: srv, plaintext: true, HandshakeTimeout: 5 * time.Second,
			Authorize: func(_ context.Context, key, payload []byte) (Peer, error) {
				called = key
				return Peer{Account: "a"}, nil
			},
		}
		a, b := net.Pipe()
		c := newServer(a, &cfg)
		defer c.Close()
		go func() {
			writeFrame(b, msg)
			io.Copy(io.Discard, b)
		}()
		err := c.Handshake(context.Background())
		b.Close()
		switch {
		case bytes.Equal(msg, genuine):
			if err != nil || !bytes.Equal(called, dev.Public) {
				t.Fatalf("genuine message 1 refused: %v", err)
			}
		case err == nil:
			if !bytes.Equal(called, dev.Public) {
				t.Fatalf("forged message 1 accepted for key %x", called)
			}
		case !errors.Is(err, ErrHandshake):
			t.Fatalf("error does not match ErrHandshake: %v", err)
		case called != nil:
			t.Fatalf("Authorize called for a failed message 1")
		}
	})
}

// FuzzParseFingerprint: user-typed server keys never panic, and anything
// accepted is a 32-byte key that prints back to a parseable form.
func FuzzParseFingerprint(f *testing.F) {
	f.Add(Fingerprint(fixedKeys(f, 3).Public))
	f.Add("")
	f.Add("  abc==\n")
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		key, err := ParseFingerprint(s)
		if err != nil {
			return
		}
		back, err := ParseFingerprint(Fingerprint(key))
		if len(key) != KeySize || err != nil || !bytes.Equal(back, key) {
			t.Fatalf("accepted %q as %x, round trip %x %v", s, key, back, err)
		}
	})
}
