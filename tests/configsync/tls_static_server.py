"""A static HTTPS server (its own process, standard library only): serves the
files of a directory over TLS with the given certificate, so a test can be a
remote instance whose /api/v1/config is a file it wrote.

    python tls_static_server.py DIRECTORY PORT CERT KEY
"""
import functools
import http.server
import ssl
import sys


def main() -> None:
    directory, port, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory)
    server = http.server.HTTPServer(("127.0.0.1", port), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
