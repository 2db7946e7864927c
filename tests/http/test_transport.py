"""The request a delivery sends: prepared without ``Session.request``, the same on the wire.

Only loopback addresses are contacted (a sink on 127.0.0.1; made-up names mapped to it).
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator

import pytest
from django.test import override_settings

from tests.support.sinks import Sink, respond
from wagtail_publish_hooks.conf import get_settings
from wagtail_publish_hooks.exceptions import DeliveryError, UnsafeDestination
from wagtail_publish_hooks.http import close_session, post
from wagtail_publish_hooks.http.transport import USER_AGENT, _prepared_url, send_request
from wagtail_publish_hooks.redaction import looks_secret

ALLOW_LOOPBACK = {"WAGTAIL_PUBLISH_HOOKS": {"ALLOW_PRIVATE_NETWORKS": ["127.0.0.0/8"]}}


@pytest.fixture(autouse=True)
def fresh_session() -> Iterator[None]:
    close_session()
    yield
    close_session()


def send(url: str, body: bytes = b'{"a": 1}', **headers: str):
    return post(url, body=body, headers={"Content-Type": "application/json", **headers}, timeout=5)


@override_settings(**ALLOW_LOOPBACK)
def test_the_request_carries_the_headers_and_body_it_did_before():
    with Sink(respond()) as sink:
        result = send(sink.url(path="/in?x=1"), **{"X-Custom": "yes"})
    assert result.status_code == 200
    [request] = sink.requests
    assert request.method == "POST"
    assert request.path == "/in?x=1"
    assert request.body == b'{"a": 1}'
    assert request.header("Content-Length") == "8"
    assert request.header("Content-Type") == "application/json"
    assert request.header("X-Custom") == "yes"
    assert request.header("User-Agent") == USER_AGENT
    assert request.header("Accept-Encoding") == "identity"
    # The session's defaults, as Session.request merged them.
    assert request.header("Accept") == "*/*"
    assert request.header("Connection") == "keep-alive"
    assert request.header("Host") == f"127.0.0.1:{sink.port}"


@override_settings(**ALLOW_LOOPBACK)
def test_an_empty_body_is_sent_with_a_zero_length():
    with Sink(respond()) as sink:
        send_request("PURGE", sink.url(), headers={}, timeout=5)
    [request] = sink.requests
    assert request.method == "PURGE"
    assert request.header("Content-Length") == "0"
    assert request.body == b""


@override_settings(**ALLOW_LOOPBACK)
def test_credentials_in_the_url_are_sent_as_basic_auth_every_time():
    with Sink(respond()) as sink:
        url = sink.url().replace("http://", "http://user:p%40ss@")
        send(url)
        send(url)  # the prepared URL comes from the cache now
    expected = "Basic " + base64.b64encode(b"user:p@ss").decode()
    assert [request.header("Authorization") for request in sink.requests] == [expected] * 2
    assert _prepared_url(url) == (url, True)
    assert _prepared_url(sink.url()) == (sink.url(), False)


@override_settings(**ALLOW_LOOPBACK)
def test_a_cookie_one_receiver_sets_is_not_sent_on():
    with Sink(respond(headers={"Set-Cookie": "session=abc; Path=/"})) as sink:
        send(sink.url())
        send(sink.url())
    assert [request.header("Cookie") for request in sink.requests] == [None, None]


@override_settings(**ALLOW_LOOPBACK)
def test_a_url_requests_cannot_prepare_is_a_failure_that_names_no_path():
    with pytest.raises(DeliveryError) as caught:
        send("http://127.0.0.1:1/sec ret\x00")
    assert "sec" not in caught.value.message


def test_a_cached_url_is_still_resolved_and_checked_at_every_request(monkeypatch):
    """The prepared URL is cached; the name's resolution and its check are not: a name that now
    answers a refused address is refused at once."""
    answers = iter([["127.0.0.1"], ["127.0.0.2"]])
    real = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):
        if host != "moving.test":
            return real(host, port, *args, **kwargs)
        [address] = next(answers)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    with (
        override_settings(WAGTAIL_PUBLISH_HOOKS={"ALLOW_PRIVATE_NETWORKS": ["127.0.0.1/32"]}),
        Sink(respond()) as sink,
    ):
        url = sink.url(host="moving.test")
        assert send(url).status_code == 200
        with pytest.raises(UnsafeDestination):
            send(url)
    assert len(sink.requests) == 1


def test_the_parsed_network_settings_follow_a_change_of_the_setting():
    with override_settings(WAGTAIL_PUBLISH_HOOKS={"ALLOW_PRIVATE_NETWORKS": ["127.0.0.0/8"]}):
        first = get_settings().private_networks_allowed()
        assert get_settings().private_networks_allowed() is first  # parsed once
        with Sink(respond()) as sink:
            assert send(sink.url()).status_code == 200
    with (
        override_settings(WAGTAIL_PUBLISH_HOOKS={"ALLOW_PRIVATE_NETWORKS": ["10.0.0.0/8"]}),
        Sink(respond()) as sink,
    ):
        with pytest.raises(UnsafeDestination):
            send(sink.url())
        assert sink.connections == 0


def test_secret_looking_names_are_recognised_in_any_case_however_often_asked():
    for _ in range(2):
        assert looks_secret("X-Api-Key")
        assert looks_secret("x-api-key")
        assert looks_secret("AUTHORIZATION")
        assert not looks_secret("Content-Type")
