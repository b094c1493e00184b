#!/usr/bin/env python3
"""Health probe for one benchmark target: TLS (trusting --ca, SNI localhost), the
WebSocket upgrade, a Verto `login`, one `echo`. Exits 0 and prints one line when the
whole chain answers, 1 with the reason otherwise. Python 3 standard library only.

    bench/wss_probe.py --port 28443 --ca CA.crt [--login 1000@bench.test] [--timeout 5]
"""
import argparse
import base64
import json
import os
import socket
import ssl
import struct
import sys
import time
import uuid


def send_text(sock, text):
    payload = text.encode()
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x81, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x81, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(header + mask + masked)


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by the peer")
        buf += chunk
    return buf


def recv_frame(sock):
    b0, b1 = recv_exact(sock, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", recv_exact(sock, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", recv_exact(sock, 8))[0]
    mask = recv_exact(sock, 4) if b1 & 0x80 else None
    data = recv_exact(sock, n)
    if mask:
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return b0 & 0x0F, data


def call(sock, msg_id, method, params, deadline):
    """Sends one request and returns its reply, skipping server requests in between."""
    send_text(sock, json.dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": msg_id}))
    for _ in range(16):  # bounded: the node sends at most a verto.clientReady in between
        if time.monotonic() > deadline:
            break
        opcode, data = recv_frame(sock)
        if opcode == 0x8:
            code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
            raise ConnectionError(f"closed with {code} {data[2:].decode(errors='replace')}")
        if opcode != 0x1:
            continue
        reply = json.loads(data)
        if reply.get("id") == msg_id and ("result" in reply or "error" in reply):
            return reply
    raise TimeoutError(f"no reply to {method}")


def probe(args):
    deadline = time.monotonic() + args.timeout
    ctx = ssl.create_default_context(cafile=args.ca)
    raw = socket.create_connection((args.host, args.port), timeout=args.timeout)
    with ctx.wrap_socket(raw, server_hostname=args.sni) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            (f"GET / HTTP/1.1\r\nHost: {args.sni}:{args.port}\r\nUpgrade: websocket\r\n"
             f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
             "\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 16384:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the upgrade")
            head += chunk
        status = head.split(b"\r\n", 1)[0].decode(errors="replace")
        if " 101 " not in status + " ":
            raise ConnectionError(f"upgrade refused: {status}")
        sessid = str(uuid.uuid4())
        login = call(sock, 1, "login", {"login": args.login, "passwd": args.password, "sessid": sessid}, deadline)
        if "result" not in login:
            raise ConnectionError(f"login refused: {login.get('error')}")
        echo = call(sock, 2, "echo", {"probe": "vertogw-bench", "sessid": sessid}, deadline)
        if "result" not in echo:
            raise ConnectionError(f"echo refused: {echo.get('error')}")
        return f"{sock.version()} {sock.cipher()[0]}, {status}, login ok, echo ok"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--sni", default="localhost")
    p.add_argument("--login", default="1000@bench.test")
    p.add_argument("--password", default="1234")
    p.add_argument("--timeout", type=float, default=5.0)
    args = p.parse_args()
    try:
        print(f"probe 127.0.0.1:{args.port}: {probe(args)}")
        return 0
    except (OSError, ValueError, TimeoutError) as err:
        print(f"probe 127.0.0.1:{args.port} failed: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
