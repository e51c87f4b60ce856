"""The Event poster posts each transition once: an Event identical to one just posted for
the same object (two handlers of one object racing, each seeing the transition in a body
older than the other's status write) is not posted again."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from tradebot_operator.kube import events as events_module
from tradebot_operator.kube.events import EventPoster

Manifest = dict[str, Any]


class RecordingApiServer:
    def __init__(self) -> None:
        self.created: list[Manifest] = []

    async def create(self, manifest: Manifest) -> Manifest:
        self.created.append(manifest)
        return manifest


async def posted(poster: EventPoster, api: RecordingApiServer) -> list[tuple[str, str, str]]:
    poster.start()
    await poster.stop(drain_seconds=2)
    return [(e["involvedObject"]["uid"], e["reason"], e["message"]) for e in api.created]


def obj(kind: str, name: str, uid: str) -> Manifest:
    return {"kind": kind, "metadata": {"name": name, "namespace": "trading", "uid": uid}}


async def test_the_same_event_for_the_same_object_is_posted_once() -> None:
    api = RecordingApiServer()
    poster = EventPoster(api)  # type: ignore[arg-type]
    account = obj("ExchangeAccount", "paper", "a-1")
    # what an account's watch event and its timer both told (seen live: three times each)
    for _ in range(3):
        poster.post(account, "Normal", "AccountValid", "Ready is True")
        poster.post(account, "Normal", "NotRequired", "paper mode")
    poster.post(obj("ExchangeAccount", "paper", "a-2"), "Normal", "AccountValid", "Ready is True")
    poster.post(account, "Warning", "AccountInvalid", "spec.exchange: unknown")
    assert await posted(poster, api) == [
        ("a-1", "AccountValid", "Ready is True"),
        ("a-1", "NotRequired", "paper mode"),
        ("a-2", "AccountValid", "Ready is True"),  # another object (a new uid)
        ("a-1", "AccountInvalid", "spec.exchange: unknown"),  # news
    ]


async def test_an_event_repeated_after_the_window_is_posted_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(events_module, "DUPLICATE_WINDOW_SECONDS", 0.0)
    api = RecordingApiServer()
    poster = EventPoster(api)  # type: ignore[arg-type]
    bot = obj("TradingBot", "btc", "b-1")
    poster.post(bot, "Warning", "ShardsNotReady", "phase Running -> Degraded")
    await asyncio.sleep(0)
    poster.post(copy.deepcopy(bot), "Warning", "ShardsNotReady", "phase Running -> Degraded")
    assert len(await posted(poster, api)) == 2
