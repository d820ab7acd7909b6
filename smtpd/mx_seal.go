package smtpd

import (
	"smessenger/pgp"
)

// mxSealed is one message sealed for one account.
type mxSealed struct {
	header, body []byte
}

// mxSeal seals msg for the owner of key: the header blob is the sealed
// pgp.Summary (what a message list needs), the body blob the sealed
// message. pgp.SealMessage wraps one session key for both blobs, so the
// public-key step, most of the cost for a small message, is paid once.
//
// Each account gets its own SealMessage call rather than sharing one
// summary: summarizing again costs less than the extra public-key step
// that sealing the two blobs separately would take.
//
// A message that already is OpenPGP-encrypted (PGP/MIME or inline) is kept
// as received inside the body blob; the summary then holds only its outer
// headers and has Encrypted set, so the bridge decrypts the body itself.
func mxSeal(msg []byte, key *pgp.Key) (mxSealed, error) {
	hb, bb, _, err := pgp.SealMessage(msg, []*pgp.Key{key}, pgp.SealOptions{})
	if err != nil {
		return mxSealed{}, err
	}
	return mxSealed{header: hb, body: bb}, nil
}
