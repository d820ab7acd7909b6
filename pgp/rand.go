package pgp

import "crypto/rand"

// randReader is the entropy source for boundaries.
var randReader = rand.Reader
