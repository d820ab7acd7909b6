package channel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/flynn/noise"
)

const (
	// maxFrame is the largest frame body: the 2-byte length field's range.
	maxFrame = 65535
	// tagSize is the ChaChaPoly authentication tag carried by every frame.
	tagSize = 16
	// maxPlain is the most plaintext one frame carries.
	maxPlain = maxFrame - tagSize
)

// framePool recycles frame buffers so an idle connection holds none: a buffer
// is taken when a frame starts arriving (or is written) and given back once
// its plaintext has been consumed.
var framePool = sync.Pool{New: func() any {
	b := make([]byte, 2+maxFrame)
	return &b
}}

// frameReader reads length-prefixed frames and keeps partial progress across
// calls, so a read deadline that fires in the middle of a frame (net/http
// does this on purpose to stop its background read) does not desynchronise
// the stream: the next call continues where the last one stopped.
type frameReader struct {
	r    io.Reader
	hdr  [2]byte
	hdrN int
	buf  *[]byte // pooled; nil while idle
	need int     // body length of the current frame
	got  int     // body bytes read so far
	// inFrame is set once a header has been read and its body is pending.
	inFrame bool
}

// next returns the body of the next complete frame. The slice aliases a
// pooled buffer owned by the reader: it stays valid until release or the
// next call. min is the smallest body length accepted; shorter is ErrFrame.
func (f *frameReader) next(min int) ([]byte, error) {
	if !f.inFrame {
		for f.hdrN < 2 {
			n, err := f.r.Read(f.hdr[f.hdrN:])
			f.hdrN += n
			if f.hdrN == 2 {
				break
			}
			if err != nil {
				if err == io.EOF && f.hdrN > 0 {
					err = io.ErrUnexpectedEOF
				}
				return nil, err
			}
		}
		f.need = int(binary.BigEndian.Uint16(f.hdr[:]))
		if f.need < min {
			return nil, fmt.Errorf("%w: frame of %d bytes is shorter than %d", ErrFrame, f.need, min)
		}
		if f.buf == nil {
			f.buf = framePool.Get().(*[]byte)
		}
		f.got = 0
		f.inFrame = true
	}
	body := (*f.buf)[:f.need]
	for f.got < f.need {
		n, err := f.r.Read(body[f.got:])
		f.got += n
		if f.got == f.need {
			break
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	f.hdrN = 0
	f.inFrame = false
	return body, nil
}

// release gives the buffer back to the pool, unless a frame is half read.
func (f *frameReader) release() {
	if f.buf != nil && !f.inFrame {
		framePool.Put(f.buf)
		f.buf = nil
	}
}

// abandon drops a half-read frame after a fatal error.
func (f *frameReader) abandon() {
	f.inFrame = false
	f.release()
}

// writeFrame sends body as one frame in a single Write, so a frame is never
// interleaved with another writer's bytes.
func writeFrame(w io.Writer, body []byte) error {
	if len(body) > maxFrame {
		return fmt.Errorf("channel: frame of %d bytes exceeds %d", len(body), maxFrame)
	}
	bp := framePool.Get().(*[]byte)
	defer framePool.Put(bp)
	b := (*bp)[:2+len(body)]
	binary.BigEndian.PutUint16(b, uint16(len(body)))
	copy(b[2:], body)
	_, err := w.Write(b)
	return err
}

// sealFrame encrypts plain (at most maxPlain bytes) into one frame, header
// included, in a buffer from the pool that the caller must put back.
func sealFrame(cs *noise.CipherState, plain []byte) (*[]byte, []byte, error) {
	bp := framePool.Get().(*[]byte)
	out, err := cs.Encrypt((*bp)[2:2], nil, plain)
	if err != nil {
		framePool.Put(bp)
		return nil, nil, fmt.Errorf("channel: encrypt: %w", err)
	}
	binary.BigEndian.PutUint16(*bp, uint16(len(out)))
	return bp, (*bp)[:2+len(out)], nil
}

// openFrame decrypts a frame body in place. Any failure is ErrFrame: with
// Noise's implicit nonce a replayed, reordered, dropped or altered frame all
// look the same — the tag does not verify.
func openFrame(cs *noise.CipherState, body []byte) ([]byte, error) {
	plain, err := cs.Decrypt(body[:0], nil, body)
	if err != nil {
		return nil, fmt.Errorf("%w: frame does not authenticate (replayed, reordered, dropped or altered)", ErrFrame)
	}
	return plain, nil
}

// isTimeout reports whether err is a deadline expiry, which leaves the stream
// intact and may be retried; every other read or write error is final.
func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}
