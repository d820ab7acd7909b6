package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"smessenger/bridge"
	"smessenger/pgp"
)

// Accounts on the benchmark node.
const (
	alice = "alice@" + benchDomain // the bridge user: corpus, IMAP, submission
	bob   = "bob@" + benchDomain   // the MX recipient and submission target
)

// benchPass protects the throw-away bridge vaults of a run.
var benchPass = []byte("benchmark passphrase, not a secret")

// run holds one benchmark run's state and results.
type run struct {
	o      options
	sc     scripts
	dir    string // this run's folder under work
	logDir string
	corpus string
	notes  []string

	node      *child
	nodeInfo  nodeReady
	aliceKey  *pgp.Key
	aliceDir  string
	alicePass string // bridge password (for the mail client)
	info      corpusInfo

	mxOurs, mxPeer, subPeer  figures
	mxErr, mxPeerErr         error
	mxRedis                  figures // the MX on a redis-server store
	mxRedisErr               error
	sub                      loadResult
	subErr                   error
	bridgeInfo               bridgeReady
	bridgeErr                error
	imapOurs, imapPeer       figures
	imapErr, imapPeerErr     error
	bridgeHWM, nodeHWM       int64
	bridgeSyncHWM, nodeMXHWM int64 // peaks at the end of the sync and of the MX load
	crypto                   cryptoResult
	cryptoErr                error
	cryptoPeer               figures
	cryptoPeerErr            error
	idleOpen                 int
	idleBase, idleRSS        int64
	idleErr                  error
	cli                      cliResult
}

func newRun(o options) (*run, error) {
	if err := os.MkdirAll(o.work, 0o755); err != nil {
		return nil, fmt.Errorf("bench: work folder: %w", err)
	}
	dir, err := os.MkdirTemp(o.work, "run-")
	if err != nil {
		return nil, fmt.Errorf("bench: run folder: %w", err)
	}
	r := &run{o: o, dir: dir, logDir: filepath.Join(dir, "logs"), corpus: filepath.Join(o.work, fmt.Sprintf("corpus-%d", o.n))}
	if err := os.MkdirAll(r.logDir, 0o755); err != nil {
		return nil, err
	}
	r.sc = scripts{dir: o.shared, work: o.work, corpus: r.corpus, logDir: r.logDir}
	return r, nil
}

// cleanup stops what is still running and removes the data folders (the
// logs stay for inspection).
func (r *run) cleanup() {
	if r.node != nil {
		_ = r.node.stop()
	}
	for _, d := range []string{"node", "node-redis", "redis", "idle-node", "alice", "alice-cli", "bob", "bob-redis", "smessenger"} {
		_ = os.RemoveAll(filepath.Join(r.dir, d))
	}
}

func (r *run) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

func (r *run) step(name string) func() {
	t := time.Now()
	fmt.Fprintf(os.Stderr, "== %s\n", name)
	return func() { fmt.Fprintf(os.Stderr, "   %s: %s\n", name, time.Since(t).Round(10*time.Millisecond)) }
}

// all runs every step in order; a failed step is recorded and the run goes
// on, so that the table shows what was measured and why the rest was not.
// Each peer runs right after our side of the same figure: the machine is
// shared, and its load drifts within minutes.
func (r *run) all() {
	var info corpusInfo
	var corpusErr error
	if !r.o.mxOnly {
		done := r.step("corpus")
		info, corpusErr = ensureCorpus(r.o.shared, r.corpus, r.o.n)
		done()
		if corpusErr != nil {
			r.note("corpus: %v", corpusErr)
		}
	}
	r.info = info
	var setupErr error
	var done func()
	if !r.o.skipPeers && !r.o.mxOnly {
		done = r.step("peer setup (setup.sh if Dovecot is missing)")
		setupErr = r.sc.setup()
		done()
	}
	if err := r.startNode(); err != nil {
		r.mxErr, r.bridgeErr, r.subErr = err, err, err
		r.note("server node: %v", err)
	} else {
		r.mxLoad()
		r.nodeMXHWM, _ = procStatusKB(r.node.pid(), "VmHWM")
		r.smtpPeers()
		r.redisMX()
		if r.o.mxOnly {
			corpusErr = errors.New("skipped (-mx-only)")
		}
		if corpusErr == nil {
			r.bridgeBench()
		} else {
			r.bridgeErr, r.subErr = corpusErr, corpusErr
		}
		r.nodeHWM, _ = procStatusKB(r.node.pid(), "VmHWM")
		if err := r.node.stop(); err != nil {
			r.note("server node stop: %v", err)
		}
		r.node = nil
	}
	if !r.o.skipPeers && !r.o.mxOnly {
		done = r.step("peer: Dovecot")
		r.imapPeer, r.imapPeerErr = r.sc.imap("imap-dovecot", "", "", "", 0, r.o.runs)
		if setupErr != nil {
			r.imapPeerErr = setupErr
		}
		done()
	}
	if !r.o.skipIdle {
		r.idleStreams()
	}
	if !r.o.skipCrypto {
		done = r.step("seal/open, ours")
		r.crypto, r.cryptoErr = measureCrypto(3, 300*time.Millisecond)
		done()
		if !r.o.skipPeers {
			done = r.step("peer: go-crypto and GnuPG")
			r.cryptoPeer, r.cryptoPeerErr = r.sc.crypto()
			done()
		}
	}
}

// startNode starts the server node child and logs in the two bridges'
// vaults (alice with a key this process keeps, to seal her corpus).
func (r *run) startNode() error {
	defer r.step("server node + logins")()
	var err error
	r.node, err = startChild("node", filepath.Join(r.logDir, "node.log"), nil, 60*time.Second, &r.nodeInfo,
		"node", "-dir", filepath.Join(r.dir, "node"), "-users", alice+","+bob)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if r.aliceKey, err = pgp.GenerateKey("Alice", alice); err != nil {
		return err
	}
	armored, err := r.aliceKey.ExportPrivate(benchPass)
	if err != nil {
		return err
	}
	r.aliceDir = filepath.Join(r.dir, "alice")
	res, err := bridge.Login(ctx, r.login(alice, r.aliceDir, armored))
	if err != nil {
		return err
	}
	r.alicePass = res.BridgePassword
	_, err = bridge.Login(ctx, r.login(bob, filepath.Join(r.dir, "bob"), nil))
	return err
}

func (r *run) login(addr, dir string, key []byte) bridge.LoginConfig {
	return bridge.LoginConfig{DataDir: dir, Address: addr, Name: "Bench", ServerAddr: r.nodeInfo.API,
		ServerKey: r.nodeInfo.ServerKey, Token: r.nodeInfo.Tokens[addr][0], Passphrase: benchPass,
		ImportedKey: key, NewServer: newAPIServer}
}

// mxLoad aims smtp_bench.py at the node's MX (20 sessions, 10 KB).
func (r *run) mxLoad() {
	defer r.step("MX load (smtp_bench.py --target)")()
	r.mxOurs, r.mxErr = r.sc.smtp("smtp-target", r.nodeInfo.MX, r.o.mxRuns, r.o.mxMessages, 20, 10240, true)
}

// bridgeBench loads the corpus, starts the bridge (cold sync), runs the
// IMAP client script against it, then the submission load.
func (r *run) bridgeBench() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	done := r.step("corpus load (seal + deliver)")
	n, err := r.loadAliceCorpus(ctx)
	done()
	if err != nil {
		r.bridgeErr, r.subErr = err, err
		return
	}
	r.note("corpus: %d messages (%.1f MB) sealed with pgp.SealMessage (SEIPDv2) and delivered to %s's INBOX through the API", n, float64(r.info.TotalBytes)/1e6, alice)
	done = r.step("bridge cold first sync")
	br, err := startChild("bridge", filepath.Join(r.logDir, "bridge.log"), []string{passEnv + "=" + string(benchPass)},
		6*time.Minute, &r.bridgeInfo, "bridge", "-dir", r.aliceDir)
	done()
	if err != nil {
		r.bridgeErr, r.subErr = err, err
		return
	}
	r.bridgeSyncHWM, _ = procStatusKB(br.pid(), "VmHWM")
	if r.bridgeInfo.Messages != n {
		r.note("bridge synced %d of %d messages", r.bridgeInfo.Messages, n)
	}
	done = r.step("IMAP client script against the bridge")
	r.imapOurs, r.imapErr = r.sc.imap("imap-target", r.bridgeInfo.IMAP, alice, r.alicePass, br.pid(), r.o.runs)
	done()
	done = r.step("submission load through the bridge")
	r.sub = submitLoad(r.bridgeInfo.SMTP, alice, r.alicePass, bob, 8, r.o.subMessages, 10240, 90*time.Second)
	r.subErr = r.sub.err
	done()
	r.bridgeHWM, _ = procStatusKB(br.pid(), "VmHWM")
	if err := br.stop(); err != nil {
		r.note("bridge stop: %v", err)
	}
	r.cliBridge()
}

func (r *run) loadAliceCorpus(ctx context.Context) (int, error) {
	files, err := corpusFiles(r.corpus, r.info.N)
	if err != nil {
		return 0, err
	}
	c, err := loaderClient(ctx, r.nodeInfo.API, r.nodeInfo.ServerKey, r.nodeInfo.Tokens[alice][1])
	if err != nil {
		return 0, err
	}
	defer c.CloseIdleConnections()
	return loadCorpus(ctx, c, files, r.aliceKey.Public(), alice)
}

// idleStreams starts a fresh node with N registered devices and opens one
// event stream per device from this process; the node's RSS is its own.
func (r *run) idleStreams() {
	defer r.step(fmt.Sprintf("%d idle device streams", r.o.idle))()
	keyFile := filepath.Join(r.dir, "idle-devices.txt")
	defer os.Remove(keyFile)
	var info nodeReady
	node, err := startChild("idle-node", filepath.Join(r.logDir, "idle-node.log"), nil, 3*time.Minute, &info,
		"node", "-dir", filepath.Join(r.dir, "idle-node"), "-devices", fmt.Sprint(r.o.idle), "-device-file", keyFile)
	if err != nil {
		r.idleErr = err
		return
	}
	defer node.stop()
	keys, err := readDeviceKeys(keyFile)
	if err != nil {
		r.idleErr = err
		return
	}
	r.idleBase, _ = procStatusKB(node.pid(), "VmRSS")
	open, closeAll, err := openIdleStreams(info.API, info.ServerKey, keys, 3*time.Minute)
	if err != nil {
		r.idleErr = err
		return
	}
	defer closeAll()
	time.Sleep(2 * time.Second) // let the node's allocations settle
	r.idleOpen = open
	r.idleRSS, _ = procStatusKB(node.pid(), "VmRSS")
	if open < len(keys) {
		r.note("idle streams: only %d of %d opened within the time bound", open, len(keys))
	}
}

// smtpPeers runs smtp-source against smtp-sink with the same loads as
// ours: 20 sessions (MX) and 8 (submission).
func (r *run) smtpPeers() {
	if r.o.skipPeers {
		return
	}
	defer r.step("peer: smtp-source -> smtp-sink")()
	r.mxPeer, r.mxPeerErr = r.sc.smtp("smtp-sink-20", "", r.o.mxRuns, r.o.mxMessages, 20, 10240, true)
	r.subPeer, _ = r.sc.smtp("smtp-sink-8", "", 1, r.o.subMessages, 8, 10240, false)
}
