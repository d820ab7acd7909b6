package main

import (
	"fmt"
	"strings"
)

// short keeps an error's first line, bounded, for a table cell.
func short(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

// pick returns a script's figure, or why it is missing (the script's
// error first: it explains a missing figure better than its absence).
func pick(f figures, err error, name, source string) value {
	if x, ok := f[name]; ok {
		return measured(x)
	}
	if err != nil {
		return missing(short(err))
	}
	return f.from(name, source)
}

func kib(k int64, err error) value {
	if err != nil {
		return missing(short(err))
	}
	if k <= 0 {
		return missing("process gone before it was sampled")
	}
	return measured(mb(k))
}

func (r *run) rows() []row {
	var rows []row
	rows = append(rows, r.smtpRows()...)
	rows = append(rows, r.imapRows()...)
	rows = append(rows, r.cliRows()...)
	rows = append(rows, r.cryptoRows()...)
	rows = append(rows, r.memRows()...)
	return rows
}

func (r *run) smtpRows() []row {
	const src, sink = "smtp_bench.py --target (MX)", "smtp_bench.py (sink)"
	peer := "smtp-source → smtp-sink"
	sub := missing(short(fmt.Errorf("no result")))
	if r.subErr != nil {
		sub = missing(short(r.subErr))
	} else if r.sub.sent > 0 {
		sub = measured(r.sub.rate())
	}
	return []row{
		{fmt.Sprintf("MX accept 10 KB, 20 senders, smtp-source -d (sealed + bbolt commit), median of %d runs of %d msgs", r.o.mxRuns, r.o.mxMessages), "msgs/s",
			pick(r.mxOurs, r.mxErr, "smtp_source_reuse_msgs_per_s", src), pick(r.mxPeer, r.mxPeerErr, "smtp_source_reuse_msgs_per_s", sink), peer},
		{fmt.Sprintf("MX accept 10 KB, 20 senders, smtp-source -d (sealed + Redis commit, appendfsync always), median of %d runs of %d msgs", r.o.mxRuns, r.o.mxMessages), "msgs/s",
			pick(r.mxRedis, r.mxRedisErr, "smtp_source_reuse_msgs_per_s", src), pick(r.mxPeer, r.mxPeerErr, "smtp_source_reuse_msgs_per_s", sink), peer},
		{"MX accept 10 KB, 20 senders, new connection per message", "msgs/s",
			pick(r.mxOurs, r.mxErr, "smtp_source_connect_msgs_per_s", src), pick(r.mxPeer, r.mxPeerErr, "smtp_source_connect_msgs_per_s", sink), peer},
		{"MX accept 10 KB, Python smtplib, 20 threads", "msgs/s",
			pick(r.mxOurs, r.mxErr, "smtplib_reuse_msgs_per_s", src), pick(r.mxPeer, r.mxPeerErr, "smtplib_reuse_msgs_per_s", sink), "smtplib → smtp-sink"},
		{fmt.Sprintf("internal submission via bridge, 10 KB, 8 go-smtp clients, %d msgs", r.o.subMessages), "msgs/s",
			sub, pick(r.subPeer, nil, "smtp_source_reuse_msgs_per_s", sink), "smtp-source -d, 8 sessions → smtp-sink"},
	}
}

func (r *run) imapRows() []row {
	const ours, dc = "dovecot_imap.py --target (bridge)", "dovecot_imap.py (Dovecot)"
	dv := "Dovecot, same corpus & client"
	o := func(name string) value {
		if r.bridgeErr != nil {
			return missing(short(r.bridgeErr))
		}
		return pick(r.imapOurs, r.imapErr, name, ours)
	}
	p := func(name string) value { return pick(r.imapPeer, r.imapPeerErr, name, dc) }
	sync := missing("bridge did not sync")
	if r.bridgeErr != nil {
		sync = missing(short(r.bridgeErr))
	} else if r.bridgeInfo.SyncSecs > 0 {
		sync = measured(r.bridgeInfo.SyncSecs)
	}
	open := value{}
	if sync.ok {
		open = measured(r.bridgeInfo.OpenSecs)
	}
	n := r.info.N
	return []row{
		{fmt.Sprintf("cold first sync of %d msgs (bridge: Open + Run until synced; Dovecot: fresh index, LOGIN+SELECT+FETCH ENVELOPE BODYSTRUCTURE)", n), "s",
			sync, p("py_headers_cold_s"), dv},
		{"of which bridge.Open (vault unlock: Argon2id, secret key)", "s", open, value{}, "–"},
		{"first header FETCH 1:* after sync, imaplib (Dovecot: cold)", "s", o("py_headers_cold_s"), p("py_headers_cold_s"), dv},
		{"warm header fetch, ENVELOPE+BODYSTRUCTURE, imaplib", "s", o("py_headers_warm_s"), p("py_headers_warm_s"), dv},
		{"warm header fetch, Thunderbird HEADER.FIELDS, imaplib", "s", o("py_tbheaders_warm_s"), p("py_tbheaders_warm_s"), dv},
		{"warm header fetch, go-imap v2 client", "s", o("go_headers_warm_s"), p("go_headers_warm_s"), dv},
		{"full body download BODY.PEEK[], imaplib", "s", o("py_bodies_s"), p("py_bodies_s"), dv},
		{"full body download, raw socket reader", "MB/s", o("raw_bodies_MB_per_s"), p("raw_bodies_MB_per_s"), dv},
		{"full body download, go-imap v2", "s", o("go_bodies_s"), p("go_bodies_s"), dv},
		{"UID SEARCH TEXT (token in ~1% of msgs), imaplib", "s", o("py_search_text_s"), p("py_search_text_s"), dv},
		{"UID SEARCH TEXT, go-imap v2 (incl. login)", "s", o("go_search_text_total_s"), p("go_search_text_total_s"), dv},
		{"peak RSS during the IMAP client runs (bridge process / all Dovecot processes)", "MB",
			o("target_peak_rss_sum_all_processes_MB"), p("dovecot_peak_rss_sum_all_processes_MB"), dv},
	}
}

func (r *run) cryptoRows() []row {
	if r.o.skipCrypto {
		return nil
	}
	var rows []row
	ours := func(k string) value {
		if r.cryptoErr != nil {
			return missing(short(r.cryptoErr))
		}
		if x, ok := r.crypto[k]; ok {
			return measured(x)
		}
		return missing("no figure " + k)
	}
	const src = "crypto_bench.sh"
	for _, size := range cryptoSizes {
		for _, op := range []string{"seal", "open"} {
			pop := map[string]string{"seal": "encrypt", "open": "decrypt"}[op]
			label := fmt.Sprintf("%s %s, 1 core", op, sizeName(size))
			rows = append(rows,
				row{label + ", v1 (SEIPDv1) vs raw go-crypto v4", "msgs/s", ours(fmt.Sprintf("%s/v1/%d", op, size)),
					pick(r.cryptoPeer, r.cryptoPeerErr, fmt.Sprintf("gocrypto/v4/%s/binary/%d/msgs_per_s", pop, size), src), "go-crypto v4 binary"},
				row{label + ", v2 (SEIPDv2 GCM) vs raw go-crypto v6", "msgs/s", ours(fmt.Sprintf("%s/v2/%d", op, size)),
					pick(r.cryptoPeer, r.cryptoPeerErr, fmt.Sprintf("gocrypto/v6/%s/binary/%d/msgs_per_s", pop, size), src), "go-crypto v6 binary (OCB)"},
				row{label + ", v1 vs GnuPG", "msgs/s", ours(fmt.Sprintf("%s/v1/%d", op, size)),
					pick(r.cryptoPeer, r.cryptoPeerErr, fmt.Sprintf("gpg/%s/armor/%d/msgs_per_s", pop, size), src), "gpg, one process per msg"},
			)
		}
	}
	return rows
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

func (r *run) memRows() []row {
	none := value{}
	var nodeErr, bridgeErr error
	if r.nodeHWM == 0 {
		nodeErr = fmt.Errorf("server node did not run")
	}
	if r.bridgeErr != nil {
		bridgeErr = r.bridgeErr
	}
	rows := []row{
		{"server node peak RSS after the MX load", "MB", kib(r.nodeMXHWM, nodeErr), none, "–"},
		{"server node peak RSS over the run (MX load, corpus load, sync, IMAP, submission)", "MB", kib(r.nodeHWM, nodeErr), none, "–"},
		{"bridge peak RSS at the end of the cold sync", "MB", kib(r.bridgeSyncHWM, bridgeErr), none, "–"},
		{"bridge peak RSS over the run (cold sync of the corpus, IMAP client runs, submission)", "MB", kib(r.bridgeHWM, bridgeErr),
			pick(r.imapPeer, r.imapPeerErr, "dovecot_peak_rss_sum_all_processes_MB", "dovecot_imap.py (Dovecot)"), "Dovecot, all processes"},
	}
	if r.o.skipIdle {
		return rows
	}
	idle, per := missing("no streams opened"), value{}
	switch {
	case r.idleErr != nil:
		idle = missing(short(r.idleErr))
	case r.idleOpen > 0:
		idle = measured(mb(r.idleRSS))
		per = measured(float64(r.idleRSS-r.idleBase) / float64(r.idleOpen))
	}
	return append(rows,
		row{fmt.Sprintf("server RSS with %d idle device event streams (%d requested)", r.idleOpen, r.o.idle), "MB", idle, none, "–"},
		row{"server RSS added per idle device stream", "KiB", per, none, "–"},
	)
}

// cliRows are the figures of the real `smessenger bridge run` process.
func (r *run) cliRows() []row {
	c := r.cli
	dv := "Dovecot, same corpus & client"
	p := func(name string) value { return pick(r.imapPeer, r.imapPeerErr, name, "dovecot_imap.py (Dovecot)") }
	fail := func() (value, bool) {
		switch {
		case r.bridgeErr != nil:
			return missing(short(r.bridgeErr)), true
		case c.syncSecs == 0 && c.err != nil:
			return missing(short(c.err)), true
		case c.syncSecs == 0:
			return missing("the CLI bridge step did not run"), true
		}
		return value{}, false
	}
	sync, syncHWM, hwm := measured(c.syncSecs), kib(c.syncHWM, nil), kib(c.hwm, nil)
	o := func(name string) value { return pick(c.imap, c.err, name, "dovecot_imap.py --target (CLI bridge)") }
	if v, bad := fail(); bad {
		sync, syncHWM, hwm = v, v, v
		o = func(string) value { return v }
	}
	const cli = "CLI bridge (`smessenger bridge run`, prefetch on)"
	return []row{
		{cli + ": cold first sync, process start until STATUS INBOX shows the whole corpus", "s", sync, p("py_headers_cold_s"), dv},
		{cli + ": peak RSS at the end of the cold sync", "MB", syncHWM, value{}, "–"},
		{cli + ": full body download, imaplib, one run", "s", o("py_bodies_s"), p("py_bodies_s"), dv},
		{cli + ": UID SEARCH TEXT, imaplib, one run", "s", o("py_search_text_s"), p("py_search_text_s"), dv},
		{cli + ": peak RSS after one IMAP client pass (vs all Dovecot processes)", "MB", hwm, p("dovecot_peak_rss_sum_all_processes_MB"), "Dovecot, all processes"},
	}
}
