"""A remote that dies mid-transfer: a relay (run as its own process) that
passes one request to a real PyScaler, sends back the answer's headers and
half of its body, writes a marker file, and then hangs until the test kills
it with SIGKILL. Standard library only.

    python halfway_relay.py LISTEN_PORT UPSTREAM_PORT MARKER
"""
import socket
import sys
import time


def read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def fetch(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as upstream:
        upstream.sendall(request)
        answer = b""
        while chunk := upstream.recv(65536):
            answer += chunk
    return answer


def main() -> None:
    listen_port, upstream_port, marker = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", listen_port))
    server.listen(1)
    while True:  # a connection that sends nothing (a port probe) is not the request
        conn, _ = server.accept()
        request = read_request(conn)
        if request:
            break
        conn.close()
    answer = fetch(upstream_port, request)
    head, _, body = answer.partition(b"\r\n\r\n")
    conn.sendall(head + b"\r\n\r\n" + body[: len(body) // 2])
    with open(marker, "w") as fh:
        fh.write(f"{len(body)}\n")
    while True:  # hang, holding the connection open, until killed
        time.sleep(1)


if __name__ == "__main__":
    main()
