package smtpd

import (
	"github.com/emersion/go-sasl"
)

// subLoginServer is the server side of the LOGIN mechanism (the
// draft-murchison-sasl-login mechanism that Outlook-era clients and
// Thunderbird still offer): a "Username:" challenge, then "Password:".
// go-sasl ships only its client side. An initial response, if the client
// sent one, is the user name.
type subLoginServer struct {
	check func(user, pass string) error
	step  int
	user  string
}

var _ sasl.Server = (*subLoginServer)(nil)

// subMaxLoginField bounds a user name or password.
const subMaxLoginField = 1024

// Next implements sasl.Server.
func (l *subLoginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	if len(response) > subMaxLoginField {
		return nil, false, subReplyAuthFailed
	}
	switch l.step {
	case 0:
		l.step = 1
		if response == nil {
			return []byte("Username:"), false, nil
		}
		fallthrough
	case 1:
		l.user = string(response)
		l.step = 2
		return []byte("Password:"), false, nil
	case 2:
		l.step = 3
		if err := l.check(l.user, string(response)); err != nil {
			return nil, false, err
		}
		return nil, true, nil
	}
	return nil, false, subReplyAuthFailed
}
