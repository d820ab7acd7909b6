package smtpd

import (
	"io"
	"sync"
)

// mxHeadroom is space kept free in front of the message in its read
// buffer, so that the Authentication-Results field can be put before the
// message without copying the message.
const mxHeadroom = 1024

// mxMaxPooled bounds the buffers kept for reuse: one huge message must not
// pin its memory for the life of the process.
const mxMaxPooled = 1 << 20

// mxBuffers recycles DATA buffers between messages; without it every
// message regrows a buffer from nothing, several times over.
var mxBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, 64<<10)
	return &b
}}

func mxGetBuffer() *[]byte { return mxBuffers.Get().(*[]byte) }

func mxPutBuffer(b *[]byte) {
	if cap(*b) <= mxMaxPooled {
		*b = (*b)[:0]
		mxBuffers.Put(b)
	}
}

// mxReadData reads r to its end into buf after mxHeadroom bytes of
// headroom. It returns the grown buffer (headroom included) even on error,
// so the caller can put it back in the pool.
func mxReadData(buf []byte, r io.Reader) ([]byte, error) {
	buf = buf[:0]
	if cap(buf) < mxHeadroom+4096 {
		buf = make([]byte, 0, 64<<10)
	}
	buf = buf[:mxHeadroom]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// mxPrepend returns hdr followed by the message read into buf by
// mxReadData, using the headroom when hdr fits there.
func mxPrepend(buf []byte, hdr string) []byte {
	raw := buf[mxHeadroom:]
	if len(hdr) <= mxHeadroom {
		start := mxHeadroom - len(hdr)
		copy(buf[start:], hdr)
		return buf[start:]
	}
	msg := make([]byte, 0, len(hdr)+len(raw))
	return append(append(msg, hdr...), raw...)
}
