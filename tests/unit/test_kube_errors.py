"""An API server error is told by the server's own message (the Status body's ``message``),
never as the raw body bytes the generated client's exception text embeds."""

from __future__ import annotations

from kubernetes_asyncio.client.exceptions import ApiException

from support.kube_status import TOO_LONG, TOO_LONG_MESSAGE
from tradebot_operator.kube.client import KubeApiError, error_message, status_message


def test_the_status_message_is_the_error_text() -> None:
    err = KubeApiError(422, "Unprocessable Entity", TOO_LONG)
    assert isinstance(err, ApiException)  # `except ApiException` and .status keep working
    assert (err.status, err.reason, err.body) == (422, "Unprocessable Entity", TOO_LONG)
    assert err.message == TOO_LONG_MESSAGE == status_message(TOO_LONG)
    assert str(err) == f"{TOO_LONG_MESSAGE} (422 Unprocessable Entity)"
    assert error_message(err) == str(err)


def test_an_exception_of_the_generated_client_is_told_the_same_way() -> None:
    generated = ApiException(status=422, reason="Unprocessable Entity")
    generated.body = TOO_LONG
    assert "HTTP response body: b'" in str(generated)  # what conditions used to show
    assert error_message(generated) == f"{TOO_LONG_MESSAGE} (422 Unprocessable Entity)"


def test_bodies_that_are_not_a_status() -> None:
    proxy = KubeApiError(502, "Bad Gateway", b"<html>bad gateway</html>\n")
    assert str(proxy) == "<html>bad gateway</html> (502 Bad Gateway)"
    assert str(KubeApiError(500, None, None)) == "HTTP 500"
    assert status_message(b"not json") is None and status_message(b"[1]") is None
    assert error_message(TimeoutError("read timed out")) == "TimeoutError: read timed out"
