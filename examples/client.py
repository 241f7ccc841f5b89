#!/usr/bin/env python3
"""client.py — an orphand client in Python, standard library only.

It registers itself with the orphand agent, spawns a few children — one of
which double-forks a setsid daemon — and then dies by SIGKILL. The agent
kills every one of them anyway.

Protocol v1: one JSON object per line over a Unix stream socket.

    python3 examples/client.py [--socket PATH] [--children N] [--linger SECONDS]

The socket is found as orphanctl finds it: $ORPHAND_SOCKET, else your
per-user agent's socket ($XDG_RUNTIME_DIR/orphand/orphand.sock) if it exists,
else the system agent's, /run/orphand/orphand.sock. On
stdout it prints one JSON line — the group id and every pid it started:

    {"group": "3f9c2a1b7d04", "spawner": 4242, "children": [4243, 4244], "daemon": 4250}
"""

import argparse
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time


def find_socket():
    """$ORPHAND_SOCKET, else the caller's own per-user agent's socket if it
    exists, else the system agent's (docs/protocol.md)."""
    if os.environ.get("ORPHAND_SOCKET"):
        return os.environ["ORPHAND_SOCKET"]
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if not os.path.isabs(runtime):
        runtime = f"/run/user/{os.geteuid()}"
    user = os.path.join(runtime, "orphand", "orphand.sock")
    try:
        st = os.lstat(user)
        if stat.S_ISSOCK(st.st_mode) and st.st_uid == os.geteuid():
            return user
    except OSError:
        pass
    return "/run/orphand/orphand.sock"


class AgentError(Exception):
    """The agent refused a request: code is one of the protocol's codes."""

    def __init__(self, op, code, message):
        super().__init__(f"{op} refused: {code}: {message}")
        self.code = code


class Client:
    """A connection to the agent; one request at a time."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.connect(path)
        except OSError as e:
            self.sock.close()
            sys.exit(f"client.py: cannot reach orphand at {path}: {e.strerror} "
                     "(is orphand running? start it with `orphand serve`, or your own with "
                     "`systemctl --user enable --now orphand.socket`, or set ORPHAND_SOCKET)")
        self.file = self.sock.makefile("rwb")
        self.next_id = 0

    def request(self, op, **fields):
        self.next_id += 1
        req = dict(fields, op=op, id=self.next_id)
        self.file.write(json.dumps(req).encode() + b"\n")
        self.file.flush()
        line = self.file.readline()
        if not line:
            raise ConnectionError("the agent closed the connection")
        resp = json.loads(line)
        if resp.get("id") != self.next_id:
            raise ConnectionError(f"response id {resp.get('id')}, want {self.next_id}")
        if not resp.get("ok"):
            err = resp.get("error") or {}
            raise AgentError(op, err.get("code"), err.get("message"))
        return resp

    def close(self):
        self.file.close()
        self.sock.close()


def start_daemon():
    """Double-forks a setsid daemon and returns its pid."""
    r, w = os.pipe()
    mid = os.fork()
    if mid == 0:
        try:
            os.close(r)
            os.setsid()
            pid = os.fork()
            if pid == 0:
                os.close(w)
                devnull = os.open(os.devnull, os.O_RDWR)
                os.dup2(devnull, 0)
                os.dup2(devnull, 1)
                os.execvp("sleep", ["sleep", "3600"])
            os.write(w, f"{pid}\n".encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        daemon = int(f.readline())
    os.waitpid(mid, 0)
    return daemon


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--socket", default=find_socket())
    p.add_argument("--children", type=int, default=2)
    p.add_argument("--linger", type=float, default=1.0)
    args = p.parse_args()

    c = Client(args.socket)
    hello = c.request("hello", version=1)
    print(f"client.py: orphand {hello['agent']} ({hello['backend']} backend)", file=sys.stderr)
    # No pid: the agent registers the caller (the socket's peer).
    group = c.request("register", name="client.py")["group"]
    print(f"client.py: registered as group {group['id']}", file=sys.stderr)
    c.close()  # the group lives on: the trigger is our exit

    kids = [subprocess.Popen(["sleep", "3600"]).pid for _ in range(args.children)]
    daemon = start_daemon()

    print(json.dumps({"group": group["id"], "spawner": os.getpid(), "children": kids, "daemon": daemon}), flush=True)
    print(f"client.py: children {kids} and daemon {daemon} started; dying by SIGKILL in {args.linger}s",
          file=sys.stderr)
    time.sleep(args.linger)
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    main()
