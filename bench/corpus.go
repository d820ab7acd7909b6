package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"time"

	"smessenger/bridge"
	"smessenger/internal/api"
	"smessenger/internal/channel"
	"smessenger/pgp"
)

// corpusInfo is the part of gen_corpus.py's corpus.json the bench uses.
type corpusInfo struct {
	N             int    `json:"n"`
	TotalBytes    int64  `json:"total_bytes"`
	Token         string `json:"token"`
	TokenMessages int    `json:"token_messages"`
}

// errCorpus reports a corpus folder that does not hold what corpus.json says.
var errCorpus = errors.New("bench: corpus does not match corpus.json")

// parseCorpusInfo decodes corpus.json and checks it makes sense.
func parseCorpusInfo(b []byte) (corpusInfo, error) {
	var ci corpusInfo
	if err := json.Unmarshal(b, &ci); err != nil {
		return corpusInfo{}, fmt.Errorf("bench: corpus.json: %w", err)
	}
	if ci.N <= 0 || ci.N > 1_000_000 || ci.TotalBytes <= 0 || ci.TokenMessages < 0 || ci.TokenMessages > ci.N {
		return corpusInfo{}, fmt.Errorf("%w: implausible counts", errCorpus)
	}
	return ci, nil
}

// ensureCorpus makes the shared synthetic corpus under dir with
// gen_corpus.py unless it is there already (it is deterministic: seed 42).
func ensureCorpus(shared, dir string, n int) (corpusInfo, error) {
	info := filepath.Join(dir, "corpus.json")
	if _, err := os.Stat(info); err != nil {
		cmd := exec.Command("python3", filepath.Join(shared, "gen_corpus.py"), "--n", fmt.Sprint(n), "--out", dir)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return corpusInfo{}, fmt.Errorf("bench: gen_corpus.py: %w", err)
		}
	}
	b, err := os.ReadFile(info)
	if err != nil {
		return corpusInfo{}, fmt.Errorf("bench: %w", err)
	}
	return parseCorpusInfo(b)
}

// corpusFiles lists the corpus's .eml files in order (their order is the
// UID order the Maildir peer sees as well).
func corpusFiles(dir string, want int) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "eml", "*.eml"))
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	sort.Strings(files)
	if len(files) != want {
		return nil, fmt.Errorf("%w: %d .eml files, corpus.json says %d", errCorpus, len(files), want)
	}
	return files, nil
}

// loaderClient enrols a second device of the account with token (the
// bridge is the first) and returns an API client for it.
func loaderClient(ctx context.Context, apiAddr, serverKey, token string) (*api.Client, error) {
	key, err := channel.ParseFingerprint(serverKey)
	if err != nil {
		return nil, err
	}
	kp, err := channel.GenerateKeyPair()
	if err != nil {
		return nil, err
	}
	cc := channel.ClientConfig{ServerKey: key, Static: kp, Payload: []byte(token), HandshakeTimeout: 30 * time.Second}
	first := api.NewClient(apiAddr, cc)
	_, err = first.WhoAmI(ctx)
	first.CloseIdleConnections()
	if err != nil {
		return nil, fmt.Errorf("bench: enrol loader device: %w", err)
	}
	cc.Payload = nil
	return api.NewClient(apiAddr, cc), nil
}

// sealed is one corpus message ready for delivery.
type sealed struct {
	i int
	d api.Delivery
}

// loadCorpus seals every corpus message to key with pgp.SealMessage (on
// all cores; CRLF line ends, as SMTP would deliver it) and delivers them in
// order to rcpt's INBOX through the API, in batches of at most 100
// messages or 16 MB. It returns the number delivered.
func loadCorpus(ctx context.Context, c *api.Client, files []string, key *pgp.Key, rcpt string) (int, error) {
	// Cancelling on return stops the feeder and the sealers when delivery
	// fails half way.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan int)
	out := make(chan sealed, 64)
	errc := make(chan error, runtime.GOMAXPROCS(0)+1)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				raw, err := os.ReadFile(files[i])
				if err == nil {
					raw = bridge.NormalizeNewlines(raw)
					var hb, bb []byte
					hb, bb, _, err = pgp.SealMessage(raw, []*pgp.Key{key}, pgp.SealOptions{AEAD: true})
					if err == nil {
						select {
						case out <- sealed{i: i, d: api.Delivery{Recipient: rcpt, Size: int64(len(raw)), HeaderBlob: hb, BodyBlob: bb}}:
						case <-ctx.Done():
							return
						}
						continue
					}
				}
				errc <- fmt.Errorf("bench: seal %s: %w", filepath.Base(files[i]), err)
				return
			}
		}()
	}
	go func() {
		defer close(work)
		for i := range files {
			select {
			case work <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(out) }()
	return deliverInOrder(ctx, c, out, errc, len(files))
}

// deliverInOrder reorders sealed messages by index and delivers batches.
func deliverInOrder(ctx context.Context, c *api.Client, in <-chan sealed, errc <-chan error, n int) (int, error) {
	pending := map[int]api.Delivery{}
	next, done := 0, 0
	var batch []api.Delivery
	var batchBytes int
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := c.Deliver(ctx, batch); err != nil {
			return fmt.Errorf("bench: deliver corpus: %w", err)
		}
		done += len(batch)
		batch, batchBytes = nil, 0
		return nil
	}
	for s := range in {
		pending[s.i] = s.d
		for {
			d, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			batch = append(batch, d)
			batchBytes += len(d.HeaderBlob) + len(d.BodyBlob)
			if len(batch) >= 100 || batchBytes >= 16<<20 {
				if err := flush(); err != nil {
					return done, err
				}
			}
		}
	}
	select {
	case err := <-errc:
		return done, err
	default:
	}
	if err := flush(); err != nil {
		return done, err
	}
	if done != n {
		return done, fmt.Errorf("bench: delivered %d of %d corpus messages", done, n)
	}
	return done, nil
}
