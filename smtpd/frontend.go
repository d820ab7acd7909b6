package smtpd

import (
	"errors"
	"net"
	"sync"

	"github.com/emersion/go-smtp"
)

// frontEnd is the lifecycle both SMTP front ends share: Serve until Close,
// and a Close after which Serve refuses to start.
type frontEnd struct {
	srv *smtp.Server

	mu     sync.Mutex
	closed bool
}

// serve runs srv on l; a listener closed by close is a clean stop.
func (f *frontEnd) serve(l net.Listener) error {
	f.mu.Lock()
	closed := f.closed
	f.mu.Unlock()
	if closed {
		return smtp.ErrServerClosed
	}
	err := f.srv.Serve(l)
	if errors.Is(err, net.ErrClosed) || errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// close stops the listeners and closes every connection.
func (f *frontEnd) close() error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	err := f.srv.Close()
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}
