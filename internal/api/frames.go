package api

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Binary bodies are a sequence of frames, each a 4-byte big-endian length
// followed by that many bytes. The frame count is implied by the call (for
// example one header blob per requested id), so a reader always knows when
// to stop and a truncated body is detected.

// frameHeaderLen is the size of a frame's length prefix.
const frameHeaderLen = 4

// appendFrame appends one frame holding p to dst.
func appendFrame(dst, p []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(p)))
	return append(dst, p...)
}

// writeFrame writes one frame to w.
func writeFrame(w io.Writer, p []byte) error {
	var h [frameHeaderLen]byte
	binary.BigEndian.PutUint32(h[:], uint32(len(p)))
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(p)
	return err
}

// splitFrames cuts b into exactly n frames (n < 0: as many as there are,
// at most maxFrames). The frames alias b. Trailing bytes are an error.
func splitFrames(b []byte, n, maxFrames int) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if n >= 0 && len(out) == n || n < 0 && len(out) == maxFrames {
			return nil, invalidf("too many frames in body")
		}
		if len(b) < frameHeaderLen {
			return nil, invalidf("truncated frame header")
		}
		l := binary.BigEndian.Uint32(b)
		b = b[frameHeaderLen:]
		if uint64(l) > uint64(len(b)) {
			return nil, invalidf("frame length %d exceeds body", l)
		}
		out = append(out, b[:l:l])
		b = b[l:]
	}
	if n >= 0 && len(out) != n {
		return nil, invalidf("body has %d frames, want %d", len(out), n)
	}
	return out, nil
}

// readFrame reads one frame of at most max bytes from r. io.EOF means a
// clean end before any byte of the frame.
func readFrame(r io.Reader, max int64) ([]byte, error) {
	var h [frameHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("%w: truncated frame: %v", ErrProtocol, err)
	}
	l := int64(binary.BigEndian.Uint32(h[:]))
	if l > max {
		return nil, fmt.Errorf("%w: frame of %d bytes exceeds limit %d", ErrProtocol, l, max)
	}
	p := make([]byte, l)
	if _, err := io.ReadFull(r, p); err != nil {
		return nil, fmt.Errorf("%w: truncated frame: %v", ErrProtocol, err)
	}
	return p, nil
}

// DecodeFrames reads exactly n frames of at most max bytes each from r, as
// the client does for a header-blob batch.
func DecodeFrames(r io.Reader, n int, max int64) ([][]byte, error) {
	out := make([][]byte, 0, n)
	for i := 0; i < n; i++ {
		p, err := readFrame(r, max)
		if err == io.EOF {
			return nil, fmt.Errorf("%w: got %d of %d frames", ErrProtocol, i, n)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	var one [1]byte
	if k, _ := r.Read(one[:]); k > 0 {
		return nil, fmt.Errorf("%w: trailing bytes after %d frames", ErrProtocol, n)
	}
	return out, nil
}
