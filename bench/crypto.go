package main

import (
	"bytes"
	"fmt"
	"math/rand"
	"runtime"
	"sort"
	"time"

	"smessenger/pgp"
)

// cryptoSizes are the plaintext sizes of the seal/open figures, as in the
// shared gocrypto and gpg_bench.py baselines.
var cryptoSizes = []int{4096, 65536, 1 << 20}

// textPlaintext makes n bytes of text-like data, like the baselines do.
func textPlaintext(n int) []byte {
	r := rand.New(rand.NewSource(int64(n)))
	const alphabet = "abcdefghijklmnopqrstuvwxyz     ETAOINSHRDLU.,\n"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.Intn(len(alphabet))]
	}
	return b
}

// cryptoResult is msgs/s keyed "seal|open/v1|v2/size".
type cryptoResult map[string]float64

// measureCrypto times pgp.Seal and pgp.Open on one core (GOMAXPROCS=1,
// like the go-crypto baseline), binary output, one recipient, unsigned:
// v1 is SEIPDv1 (MDC), v2 is SEIPDv2 AES-256-GCM between our own keys.
// Each figure is the median of rounds rounds of at least minRound.
func measureCrypto(rounds int, minRound time.Duration) (cryptoResult, error) {
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	key, err := pgp.GenerateKey("Bench", "bench@example.org")
	if err != nil {
		return nil, err
	}
	pub := key.Public()
	res := cryptoResult{}
	for _, mode := range []string{"v1", "v2"} {
		opt := pgp.SealOptions{AEAD: mode == "v2"}
		for _, size := range cryptoSizes {
			msg := textPlaintext(size)
			ct, err := pgp.Seal(msg, []*pgp.Key{pub}, opt)
			if err != nil {
				return nil, err
			}
			o, err := pgp.Open(ct, key, pgp.OpenOptions{})
			if err != nil || !bytes.Equal(o.Plaintext, msg) {
				return nil, fmt.Errorf("bench: %s round trip of %d bytes failed: %v", mode, size, err)
			}
			seal := func() error { _, err := pgp.Seal(msg, []*pgp.Key{pub}, opt); return err }
			open := func() error { _, err := pgp.Open(ct, key, pgp.OpenOptions{}); return err }
			for op, fn := range map[string]func() error{"seal": seal, "open": open} {
				rate, err := medianRate(fn, rounds, minRound)
				if err != nil {
					return nil, err
				}
				res[fmt.Sprintf("%s/%s/%d", op, mode, size)] = rate
			}
		}
	}
	return res, nil
}

// medianRate runs fn in rounds of at least minRound and returns the median
// calls per second.
func medianRate(fn func() error, rounds int, minRound time.Duration) (float64, error) {
	rates := make([]float64, 0, rounds)
	for range rounds {
		n := 0
		start := time.Now()
		for time.Since(start) < minRound {
			if err := fn(); err != nil {
				return 0, err
			}
			n++
		}
		rates = append(rates, float64(n)/time.Since(start).Seconds())
	}
	sort.Float64s(rates)
	return rates[len(rates)/2], nil
}
