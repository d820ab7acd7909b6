package relay

import (
	"errors"

	"bufio"
	"bytes"
	"crypto"
	"smessenger/internal/store"
)

type cryptoSigner = crypto.Signer

func bufioFrom(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

func isQueueEmpty(err error) bool { return errors.Is(err, store.ErrQueueEmpty) }
