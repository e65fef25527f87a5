#!/usr/bin/python3
"""Backend of the Service scale scenario: answers one byte with one byte, then closes."""

import socket
import sys

server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", int(sys.argv[1])))
server.listen(1024)
while True:
    conn, _ = server.accept()
    with conn:
        try:
            if conn.recv(1):
                conn.sendall(b"y")
        except OSError:
            pass
