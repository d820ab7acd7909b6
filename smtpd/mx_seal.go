package smtpd

import (
	"smessenger/pgp"
)

// mxSealed is one message sealed for one account.
type mxSealed struct {
	header, body []byte
}

// mxSealer seals one received message for each of its recipients. The
// summary (envelope, structure, preview) is computed once per message, not
// once per recipient: parsing the MIME tree costs more than sealing it.
//
// A message that already is OpenPGP-encrypted (PGP/MIME or inline) is kept
// as received inside the body blob; pgp.Summarize then records only its
// outer headers and sets Summary.Encrypted, so the bridge knows to decrypt
// the body itself.
type mxSealer struct {
	msg     []byte
	summary []byte // encoded pgp.Summary, nil until the first seal
}

// seal returns the header blob (the sealed summary) and the body blob (the
// sealed message) for key.
func (s *mxSealer) seal(key *pgp.Key) (mxSealed, error) {
	to := []*pgp.Key{key}
	if s.summary == nil {
		hb, bb, sum, err := pgp.SealMessage(s.msg, to, pgp.SealOptions{})
		if err != nil {
			return mxSealed{}, err
		}
		s.summary = pgp.EncodeSummary(sum)
		return mxSealed{header: hb, body: bb}, nil
	}
	hb, err := pgp.Seal(s.summary, to, pgp.SealOptions{})
	if err != nil {
		return mxSealed{}, err
	}
	bb, err := pgp.Seal(s.msg, to, pgp.SealOptions{})
	if err != nil {
		return mxSealed{}, err
	}
	return mxSealed{header: hb, body: bb}, nil
}
