package smtpd

import (
	"smessenger/pgp"
)

// mxSealed is one message sealed for one account.
type mxSealed struct {
	header, body []byte
}

// mxSeal seals msg for the owner of key: the header blob is the sealed
// summary (pgp.EncodeSummary: what a message list needs), the body blob the
// sealed message. pgp.SealBlobs wraps one session key for both blobs, so
// the public-key step, most of the cost for a small message, is paid once.
// The summary is computed once per message (it also enforces the MIME
// limits) and sealed to each recipient account in turn.
//
// A message that already is OpenPGP-encrypted (PGP/MIME or inline) is kept
// as received inside the body blob; the summary then holds only its outer
// headers and has Encrypted set, so the bridge decrypts the body itself.
func mxSeal(summary, msg []byte, key *pgp.Key) (mxSealed, error) {
	hb, bb, err := pgp.SealBlobs(summary, msg, []*pgp.Key{key}, pgp.SealOptions{})
	if err != nil {
		return mxSealed{}, err
	}
	return mxSealed{header: hb, body: bb}, nil
}
