package pgp

import (
	"bufio"
	"bytes"
	"io"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// peekSize bounds how far OpenStream looks ahead for the encrypted data
// packet; it holds the key packets of a few hundred recipients.
const peekSize = 64 << 10

// OpenStream decrypts a binary OpenPGP message from src. The contract:
//
//   - If the message is AEAD-protected (SEIPDv2, or the LibrePGP AEAD packet),
//     plaintext is streamed: every byte Read returns has already passed its
//     chunk's authentication tag, and memory does not grow with the message.
//     Read returns io.EOF only after the final tag (which authenticates the
//     chunk count, i.e. detects truncation) has passed. Any other error wraps
//     ErrIntegrity, ErrTooLarge or ErrMalformed and the caller must discard
//     everything read: it is an authentic but incomplete prefix.
//   - Otherwise (SEIPDv1 with MDC, whose check is at the very end) the whole
//     plaintext is decrypted into memory, up to MaxSize, and checked before
//     OpenStream returns; the reader then serves checked plaintext.
//   - Messages without integrity protection fail with ErrNoIntegrity.
//
// The returned function reports the signature outcome and the signer
// fingerprint; it is meaningful only after Read has returned io.EOF, and
// reports SigInvalid before that so that a caller that does not drain the
// stream fails closed.
func OpenStream(src io.Reader, key *Key, opt OpenOptions) (io.ReadCloser, func() (SigStatus, string), error) {
	br := bufio.NewReaderSize(src, peekSize)
	if !isAEADMessage(br) {
		data, err := io.ReadAll(io.LimitReader(br, maxSize(opt)*2+1<<20))
		if err != nil {
			return nil, nil, mapReadErr(err)
		}
		o, err := Open(data, key, opt)
		if err != nil {
			return nil, nil, err
		}
		sig := func() (SigStatus, string) { return o.Signature, o.SignerFingerprint }
		return io.NopCloser(bytes.NewReader(o.Plaintext)), sig, nil
	}
	md, err := begin(br, key, opt)
	if err != nil {
		return nil, nil, err
	}
	sr := &streamReader{md: md, left: maxSize(opt)}
	return sr, sr.status, nil
}

// streamReader enforces the size cap and maps errors on the AEAD path.
type streamReader struct {
	md   *openpgp.MessageDetails
	left int64
	done bool
	err  error
}

func (r *streamReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.done {
		return 0, io.EOF
	}
	n, err := r.md.UnverifiedBody.Read(p)
	r.left -= int64(n)
	if r.left < 0 {
		r.err = ErrTooLarge
		return 0, r.err
	}
	if err == io.EOF {
		r.done = true
		return n, io.EOF
	}
	if err != nil {
		r.err = mapReadErr(err)
		return n, r.err
	}
	return n, nil
}

func (r *streamReader) Close() error { return nil }

func (r *streamReader) status() (SigStatus, string) {
	if !r.done {
		return SigInvalid, ""
	}
	st, fp, _ := sigResult(r.md)
	return st, fp
}

// isAEADMessage walks the packet headers at the start of br without
// consuming them and reports whether the encrypted data packet is AEAD
// protected. Anything unexpected answers false, which selects the safe,
// buffered path.
func isAEADMessage(br *bufio.Reader) bool {
	off := 0
	for i := 0; i < 1000; i++ {
		hdr, _ := br.Peek(min(off+7, peekSize))
		if len(hdr) < off+2 {
			return false
		}
		tag, hl, bodyLen, ok := packetHeader(hdr[off:])
		if !ok {
			return false
		}
		switch tag {
		case 1, 3, 10, 21: // PKESK, SKESK, marker, padding: skip.
			if bodyLen < 0 {
				return false
			}
			off += hl + bodyLen
			if off+7 > peekSize {
				return false
			}
		case 18: // SEIPD: version 2 is AEAD.
			if len(hdr) < off+hl+1 {
				return false
			}
			return hdr[off+hl] == 2
		case 20: // LibrePGP AEAD encrypted data.
			return true
		default:
			return false
		}
	}
	return false
}

// packetHeader decodes an OpenPGP packet header (RFC 9580 section 4.2). A
// bodyLen of -1 means a partial or indeterminate length.
func packetHeader(b []byte) (tag byte, hl, bodyLen int, ok bool) {
	if len(b) < 2 || b[0]&0x80 == 0 {
		return 0, 0, 0, false
	}
	if b[0]&0x40 != 0 { // new format
		tag = b[0] & 0x3f
		l0 := int(b[1])
		switch {
		case l0 < 192:
			return tag, 2, l0, true
		case l0 < 224:
			if len(b) < 3 {
				return 0, 0, 0, false
			}
			return tag, 3, (l0-192)<<8 + int(b[2]) + 192, true
		case l0 == 255:
			if len(b) < 6 {
				return 0, 0, 0, false
			}
			n := int(b[2])<<24 | int(b[3])<<16 | int(b[4])<<8 | int(b[5])
			return tag, 6, n, n >= 0
		default:
			return tag, 2, -1, true
		}
	}
	tag = (b[0] >> 2) & 0x0f
	switch b[0] & 3 {
	case 0:
		return tag, 2, int(b[1]), true
	case 1:
		if len(b) < 3 {
			return 0, 0, 0, false
		}
		return tag, 3, int(b[1])<<8 | int(b[2]), true
	case 2:
		if len(b) < 5 {
			return 0, 0, 0, false
		}
		n := int(b[1])<<24 | int(b[2])<<16 | int(b[3])<<8 | int(b[4])
		return tag, 5, n, n >= 0
	}
	return tag, 1, -1, true
}
