#!/usr/bin/env python3
"""A Thunderbird-like IMAP session with Python's imaplib, for imapd's tests.

usage: thunderbird_session.py HOST PORT USER PASSWORD
Prints one JSON object with what it saw; exits non-zero on any failure
other than the expected answer to ID (the server has no ID extension).
"""
import imaplib
import json
import re
import socket
import sys
import time

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
out = {}
imaplib.Commands.setdefault("ID", ("AUTH", "SELECTED"))

m = imaplib.IMAP4(host, port, timeout=10)
typ, caps = m.capability()
out["capability"] = caps[0].decode()
m.login(user, password)

# Thunderbird sends ID after login; go-imap's server has no ID and answers
# BAD. imaplib raises; the session must go on.
try:
    typ, data = m._simple_command("ID", '("name" "Thunderbird" "version" "128.0")')
    out["id"] = typ
except imaplib.IMAP4.error as e:
    out["id"] = "BAD"

typ, data = m._simple_command("LIST", '""', '"*"', "RETURN", "(SPECIAL-USE STATUS (MESSAGES UNSEEN SIZE))")
listing = m._untagged_response(typ, data, "LIST")[1]
statuses = m._untagged_response(typ, data, "STATUS")[1]
out["list"] = [l.decode() for l in listing if l]
out["status"] = [s.decode() for s in statuses if s]

typ, data = m.select("INBOX")
out["exists"] = int(data[0])
typ, data = m.uid("FETCH", "1:*", "(FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE)")
fetched = [d for d in data if d]
out["fetched"] = len([d for d in fetched if isinstance(d, bytes) or isinstance(d, tuple)])
out["fetch_sample"] = (fetched[0][0] if isinstance(fetched[0], tuple) else fetched[0]).decode(errors="replace")

# IDLE by hand (imaplib before 3.14 has no idle()): wait for EXISTS pushed
# by another device, then DONE.
tag = m._new_tag().decode()
m.send(f"{tag} IDLE\r\n".encode())
line = m.readline()
assert line.startswith(b"+"), line
print("IDLING", flush=True)
m.sock.settimeout(5)
pushed = b""
deadline = time.time() + 5
while time.time() < deadline:
    line = m.readline()
    pushed += line
    if b"EXISTS" in line:
        break
m.send(b"DONE\r\n")
while True:
    line = m.readline()
    if line.startswith(tag.encode()):
        out["idle_end"] = line.decode().strip()
        break
out["idle_pushed"] = pushed.decode(errors="replace").strip()
m.sock.settimeout(10)

msg = b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: sent by imaplib\r\n\r\nhello\r\n"
typ, data = m.append("Sent", "(\\Seen)", imaplib.Time2Internaldate(time.time()), msg)
out["append"] = data[0].decode()
m.logout()
print(json.dumps(out))
