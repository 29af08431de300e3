#!/usr/bin/env python3
"""Opens N logged-in, idle client connections to a PostgreSQL proxy and prints the proxy's resident memory.

    perf/idle-clients.py --port 6432 --pid <proxy pid> [--clients 10000] [--user postgres] [--database postgres]

Each client sends a protocol 3.0 startup packet (trust auth), reads up to ReadyForQuery, and then stays idle.
Raises its own open-file limit; start the proxy with enough of its own (e.g. prlimit --nofile=20000) and
max_client_conn above N. Prints VmRSS before and after, and per idle client.
"""
import argparse, resource, socket, struct, sys, time

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

def startup(user, database):
    body = struct.pack("!i", 3 << 16)
    for k, v in (("user", user), ("database", database)):
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    return struct.pack("!i", len(body) + 4) + body

def read_until_ready(s):
    buf = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError("proxy closed the connection during login")
        buf += chunk
        while len(buf) >= 5:
            code, length = buf[0:1], struct.unpack("!i", buf[1:5])[0]
            if len(buf) < 1 + length:
                break
            if code == b"E":
                raise RuntimeError("login failed: " + buf[5:1 + length].decode(errors="replace"))
            if code == b"Z":
                return
            buf = buf[1 + length:]

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--clients", type=int, default=10000)
    ap.add_argument("--user", default="postgres")
    ap.add_argument("--database", default="postgres")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.clients + 100
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, soft), max(want, hard)))
    before = rss_kib(a.pid)
    packet = startup(a.user, a.database)
    conns = []
    t0 = time.time()
    for i in range(a.clients):
        s = socket.create_connection((a.host, a.port))
        s.sendall(packet)
        read_until_ready(s)
        conns.append(s)
    time.sleep(2)
    after = rss_kib(a.pid)
    print(f"{a.clients} idle clients logged in in {time.time() - t0:.1f} s")
    print(f"proxy VmRSS before: {before / 1024:.1f} MiB, with the clients: {after / 1024:.1f} MiB, "
          f"per client: {(after - before) / a.clients:.1f} KiB")
    for s in conns:
        s.close()

if __name__ == "__main__":
    sys.exit(main())
