"""Socket helpers of the MQTT publisher: TCP_NODELAY on TCP sockets, connect errors named with their module."""

from __future__ import annotations

import socket
import ssl

from edge_runtime.mqtt_socket import describe_error, set_no_delay


def test_set_no_delay_turns_nagle_off_on_a_tcp_socket():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        set_no_delay(None, None, sock)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_set_no_delay_leaves_a_unix_socket_alone():
    left, right = socket.socketpair(socket.AF_UNIX)
    with left, right:
        set_no_delay(None, None, left)  # no error: the option does not apply


def test_describe_error_names_the_module_of_a_tls_error():
    error = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    assert describe_error(error).startswith("ssl.SSLCertVerificationError: ")
    assert "certificate verify failed" in describe_error(error)


def test_describe_error_of_a_builtin_error_has_no_module():
    assert describe_error(ConnectionRefusedError(111, "Connection refused")) == (
        "ConnectionRefusedError: [Errno 111] Connection refused"
    )
    assert describe_error(None) == "unknown reason"
