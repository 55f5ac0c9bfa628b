#!/usr/bin/env python3
"""Records NBD client traffic for fuzz seeds: listens on a Unix socket,
forwards each connection to blockd's NBD socket and writes the bytes the
client sent, one file per connection, into an output directory.

usage: nbd-record.py LISTEN_SOCKET SERVER_SOCKET OUT_DIR
"""
import os
import socket
import sys
import threading

listen_path, server_path, out_dir = sys.argv[1:4]
os.makedirs(out_dir, exist_ok=True)
counter = [0]
lock = threading.Lock()


def pump(src, dst, record):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if record is not None:
                record.append(data)
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def handle(client):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.connect(server_path)
    sent = []
    t1 = threading.Thread(target=pump, args=(client, server, sent))
    t2 = threading.Thread(target=pump, args=(server, client, None))
    t1.start()
    t2.start()
    t1.join()
    t2.join()
    with lock:
        counter[0] += 1
        n = counter[0]
    data = b"".join(sent)
    # The server's greeting precedes the client's flags: what we record is
    # exactly the client's stream, as the fuzz target expects.
    if data:
        with open(os.path.join(out_dir, "rec-%03d" % n), "wb") as f:
            f.write(data[: 1 << 20])
    client.close()
    server.close()


if os.path.exists(listen_path):
    os.unlink(listen_path)
lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
lsock.bind(listen_path)
lsock.listen(16)
while True:
    c, _ = lsock.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
