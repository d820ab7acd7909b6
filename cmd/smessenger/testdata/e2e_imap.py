#!/usr/bin/env python3
"""IMAP client side of the sMessenger e2e test, with Python's imaplib.

usage: e2e_imap.py fetch HOST PORT USER PASS
         prints every INBOX message as "=== UID n" followed by the message
       e2e_imap.py idle HOST PORT USER PASS TIMEOUT
         prints "IDLING" once the server accepted IDLE, then "EXISTS n" when
         a new message is announced, then that message as in fetch.
Exit status 0 on success, 1 with a message on stderr otherwise.
"""
import imaplib
import socket
import sys


def login(host, port, user, password):
    m = imaplib.IMAP4(host, int(port), timeout=30)
    m.login(user, password)
    typ, _ = m.select("INBOX")
    if typ != "OK":
        raise SystemExit("select failed")
    return m


def dump(m, uids):
    for uid in uids:
        typ, data = m.uid("FETCH", uid, "(RFC822)")
        if typ != "OK" or not data or not isinstance(data[0], tuple):
            raise SystemExit("fetch %s failed: %r" % (uid, data))
        sys.stdout.write("=== UID %s\n" % uid.decode())
        sys.stdout.write(data[0][1].decode("utf-8", "replace"))
        sys.stdout.write("\n")
    sys.stdout.flush()


def all_uids(m):
    typ, data = m.uid("SEARCH", None, "ALL")
    if typ != "OK":
        raise SystemExit("search failed")
    return data[0].split()


def fetch(host, port, user, password):
    m = login(host, port, user, password)
    dump(m, all_uids(m))
    m.logout()


def idle(host, port, user, password, timeout):
    m = login(host, port, user, password)
    before = set(all_uids(m))
    tag = m._new_tag()
    m.send(tag + b" IDLE\r\n")
    line = m.readline()
    if not line.startswith(b"+"):
        raise SystemExit("IDLE refused: %r" % line)
    print("IDLING", flush=True)
    m.sock.settimeout(float(timeout))
    try:
        while True:
            line = m.readline()
            if not line:
                raise SystemExit("connection closed during IDLE")
            parts = line.split()
            if len(parts) >= 3 and parts[0] == b"*" and parts[2].upper() == b"EXISTS":
                print("EXISTS %s" % parts[1].decode(), flush=True)
                break
    except socket.timeout:
        raise SystemExit("no EXISTS within %s s" % timeout)
    m.send(b"DONE\r\n")
    while True:
        line = m.readline()
        if line.startswith(tag):
            break
        if not line:
            raise SystemExit("connection closed after DONE")
    m.sock.settimeout(30)
    dump(m, [u for u in all_uids(m) if u not in before])
    m.logout()


def main(argv):
    if len(argv) >= 6 and argv[1] == "fetch":
        fetch(*argv[2:6])
    elif len(argv) >= 7 and argv[1] == "idle":
        idle(*argv[2:7])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
