# -*- coding: utf-8 -*-
# Copyright: contributors to the zerotrust.cilium collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Probe server of the verify role's lab transport: the stand-in for a probe workload.

Run inside a lab pod's network namespace for the duration of the verify phase:
  python3 probe_server.py READY_FILE tcp:8080 udp:53 ...
Every TCP port answers HTTP (200, any method and path) and every UDP port echoes what it gets,
which is what zerotrust.cilium.connectivity_check's tcp, http and udp probes need to call a
path open. It writes READY_FILE once every port is bound and runs until it is stopped.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ProbeHandler(BaseHTTPRequestHandler):
    """Answer every request with 200 and the probe server's name."""

    def _answer(self):
        body = b"zerotrust.cilium probe server\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _answer

    def log_message(self, *args):
        """Stay quiet: the probes are the record."""


def serve_udp(udp_socket):
    while True:
        data, peer = udp_socket.recvfrom(65535)
        udp_socket.sendto(data, peer)


def main(argv):
    ready_file, listeners = argv[0], argv[1:]
    threads = []
    for listener in listeners:
        protocol, port = listener.split(":")
        if protocol == "tcp":
            ThreadingHTTPServer.allow_reuse_address = True
            server = ThreadingHTTPServer(("0.0.0.0", int(port)), ProbeHandler)
            threads.append(threading.Thread(target=server.serve_forever, daemon=True))
        elif protocol == "udp":
            udp_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp_socket.bind(("0.0.0.0", int(port)))
            threads.append(threading.Thread(target=serve_udp, args=(udp_socket,), daemon=True))
        else:
            sys.exit("probe_server: %r is not tcp:PORT or udp:PORT" % listener)
    for thread in threads:
        thread.start()
    with open(ready_file, "w") as ready:
        ready.write("ready\n")
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1:])
