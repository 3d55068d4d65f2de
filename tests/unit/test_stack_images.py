"""Images a fleet host lacks: ``ensure_stack_images`` (operations/nextcloud_stack.py) and the
door's ``copy_image_to`` (adapters/docker_engine.py), against FAKE engines and FAKE SDK
objects (no Docker engine here; the real copy runs against engines in the e2e tests)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest
import requests.exceptions

from smartpraxx_provision.adapters.docker_engine import DockerEngine
from smartpraxx_provision.config import load_settings
from smartpraxx_provision.errors import ExternalServiceError, ServiceUnavailableError
from smartpraxx_provision.operations import nextcloud_stack
from smartpraxx_provision.operations.nextcloud_stack import ensure_stack_images
from smartpraxx_provision.render.stack import StackPlan, slot_stack
from tests.unit.test_render import SAMPLES

REMOTE = "tcp://fleet-host-1.example:2376"
LOCAL = "unix:///var/run/docker.sock"


# --- ensure_stack_images ------------------------------------------------------------------


class _Reporter:
    def __init__(self) -> None:
        self.skips: list[str] = []
        self.changes: list[str] = []

    def skip(self, line: str) -> None:
        self.skips.append(line)

    def change(self, line: str) -> None:
        self.changes.append(line)


class ImageEngine:
    """A FAKE engine for the image step: a set of tags; records copies it makes."""

    def __init__(self, url: str, images: Iterable[str] = (), *, answers: bool = True) -> None:
        self.url = url
        self.is_local = url.startswith("unix://")
        self.images = set(images)
        self.answers = answers
        self.copied: list[tuple[str, str]] = []
        self.closed = False

    def image_exists(self, tag: str) -> bool:
        if not self.answers:
            raise ServiceUnavailableError(f"Docker engine at {self.url} does not answer")
        return tag in self.images

    def copy_image_to(self, tag: str, target: ImageEngine) -> int:
        assert not target.is_local, "never copy onto the local engine"
        self.copied.append((tag, target.url))
        target.images.add(tag)
        return 123_456_789

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def stack(tmp_path: Path) -> StackPlan:
    spec, slot, profile = SAMPLES["gp"]
    settings = load_settings(env={}, overrides={"profile": profile, "state_dir": str(tmp_path)})
    return slot_stack(spec, slot, settings)


def _ensure(engine: ImageEngine, stack: StackPlan, source: ImageEngine | None) -> Any:
    reporter = _Reporter()
    copied = ensure_stack_images(engine, stack, reporter, source)  # type: ignore[arg-type]
    return copied, reporter


def test_stack_images_are_distinct_and_skip_absent_containers(stack: StackPlan) -> None:
    images = stack.images()
    assert len(images) == len(set(images))
    assert set(images) == {c.image for c in stack.containers}
    # app and cron share the Nextcloud image; the absent idp gateway needs none
    assert len(images) == len(stack.containers) - 1
    assert not any("idp-gateway" in tag for tag in images)


def test_present_images_are_skipped_and_the_source_is_not_asked(stack: StackPlan) -> None:
    engine = ImageEngine(REMOTE, stack.images())
    source = ImageEngine(LOCAL, answers=False)  # would raise if asked
    copied, reporter = _ensure(engine, stack, source)
    assert copied == [] and source.copied == [] and reporter.changes == []
    assert reporter.skips == [f"image {tag} present on {REMOTE}" for tag in stack.images()]


def test_missing_images_are_copied_from_the_source(stack: StackPlan) -> None:
    first, *others = stack.images()
    engine = ImageEngine(REMOTE, others)
    source = ImageEngine(LOCAL, stack.images())
    copied, reporter = _ensure(engine, stack, source)
    assert copied == [first] and source.copied == [(first, REMOTE)]
    assert len(reporter.changes) == 1
    assert reporter.changes[0].startswith(f"image {first} copied to {REMOTE} (123.5 MB, ")
    assert reporter.changes[0].endswith(" s)")
    assert not source.closed  # a given source stays the caller's
    again, reporter = _ensure(engine, stack, source)  # idempotent
    assert again == [] and reporter.changes == [] and len(source.copied) == 1


@pytest.mark.parametrize("answers", [True, False])
def test_an_image_nobody_has_is_refused_naming_image_and_engine(
    stack: StackPlan, answers: bool
) -> None:
    first, *others = stack.images()
    engine = ImageEngine(REMOTE, others)
    source = ImageEngine(LOCAL, others, answers=answers)
    with pytest.raises(ExternalServiceError) as err:
        _ensure(engine, stack, source)
    exc = err.value
    assert first in exc.message and REMOTE in exc.message and exc.obj == first
    assert exc.hint is not None and "smartpraxx-provision dev-stack up" in exc.hint
    assert REMOTE in exc.hint
    assert exc.details["image"] == first and exc.details["engine"] == REMOTE
    assert ("does not answer" in exc.details["reason"]) is not answers
    assert source.copied == []


def test_a_local_engine_never_gets_a_copy(stack: StackPlan) -> None:
    first, *others = stack.images()
    engine = ImageEngine(LOCAL, others)
    source = ImageEngine("tcp://other.example:2376", stack.images())
    with pytest.raises(ExternalServiceError) as err:
        _ensure(engine, stack, source)
    assert first in err.value.message and LOCAL in err.value.message
    assert err.value.hint == "smartpraxx-provision dev-stack up builds the local images"
    assert source.copied == []


def test_the_source_is_never_the_engine_itself(stack: StackPlan) -> None:
    _, *others = stack.images()
    engine = ImageEngine(REMOTE, others)
    with pytest.raises(ExternalServiceError, match="itself"):
        _ensure(engine, stack, ImageEngine(REMOTE, others))


def test_the_default_source_is_the_local_engine_opened_only_when_needed(
    stack: StackPlan, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[ImageEngine] = []

    def local_engine() -> ImageEngine:
        made.append(ImageEngine(LOCAL, stack.images()))
        return made[-1]

    monkeypatch.setattr(nextcloud_stack, "DockerEngine", local_engine)
    _ensure(ImageEngine(REMOTE, stack.images()), stack, None)
    assert made == []
    copied, _ = _ensure(ImageEngine(REMOTE), stack, None)
    assert copied == list(stack.images())
    assert len(made) == 1 and made[0].closed


# --- DockerEngine.copy_image_to --------------------------------------------------------------


class _Image:
    def __init__(self, image_id: str) -> None:
        self.id = image_id


class _Images:
    def __init__(self, ids: dict[str, str]) -> None:
        self.ids = ids

    def get(self, tag: str) -> _Image:
        if tag not in self.ids:
            raise docker.errors.ImageNotFound(f"No such image: {tag}")
        return _Image(self.ids[tag])


class _SourceApi:
    def __init__(self, chunks: list[bytes], die_after: int | None = None) -> None:
        self.chunks = chunks
        self.die_after = die_after

    def get_image(self, tag: str) -> Iterator[bytes]:
        for n, chunk in enumerate(self.chunks):
            if n == self.die_after:
                raise requests.exceptions.ConnectionError("connection reset")
            yield chunk


class _TargetApi:
    """load_image like SDK 7: sends the generator (consumed here), returns the progress."""

    def __init__(self, images: _Images, loaded_id: str, progress: list[dict[str, Any]]) -> None:
        self.images = images
        self.loaded_id = loaded_id
        self.progress = progress
        self.received = b""

    def load_image(self, data: Iterable[bytes]) -> Iterator[dict[str, Any]]:
        self.received = b"".join(data)
        return self._stream()

    def _stream(self) -> Iterator[dict[str, Any]]:
        yield from self.progress
        if not any("error" in e for e in self.progress):
            self.images.ids[TAG] = self.loaded_id


class _DeadApi:
    def load_image(self, data: Iterable[bytes]) -> Iterator[dict[str, Any]]:
        raise requests.exceptions.ConnectionError("connection refused")


class _Client:
    def __init__(self, api: Any, images: _Images) -> None:
        self.api = api
        self.images = images

    def close(self) -> None:
        pass


TAG = "smartpraxx/mariadb:dev"
CHUNKS = [b"a" * 2048, b"b" * 1000, b"c"]


def _engines(
    *,
    loaded_id: str = "sha256:1",
    progress: list[dict[str, Any]] | None = None,
    die_after: int | None = None,
    dead_target: bool = False,
) -> tuple[DockerEngine, DockerEngine, _TargetApi]:
    source, target = DockerEngine(), DockerEngine(REMOTE)
    source._client = _Client(_SourceApi(CHUNKS, die_after), _Images({TAG: "sha256:1"}))
    images = _Images({})
    api = _TargetApi(images, loaded_id, progress or [{"stream": f"Loaded image: {TAG}\n"}])
    target._client = _Client(_DeadApi() if dead_target else api, images)
    return source, target, api


def test_copy_streams_the_saved_image_and_counts_the_bytes() -> None:
    source, target, api = _engines()
    assert source.copy_image_to(TAG, target) == sum(len(c) for c in CHUNKS)
    assert api.received == b"".join(CHUNKS)
    assert target.image_id(TAG) == "sha256:1"


def test_copy_with_another_image_id_on_the_target_fails() -> None:
    source, target, _ = _engines(loaded_id="sha256:2")
    with pytest.raises(ExternalServiceError) as err:
        source.copy_image_to(TAG, target)
    assert TAG in err.value.message and REMOTE in err.value.message
    assert err.value.details["wanted"] == "sha256:1"
    assert err.value.details["loaded"] == "sha256:2"
    assert err.value.details["bytes"] == sum(len(c) for c in CHUNKS)


def test_an_error_in_the_load_stream_fails_the_copy() -> None:
    source, target, _ = _engines(progress=[{"error": "no space left on device"}])
    with pytest.raises(ExternalServiceError, match="no space left on device") as err:
        source.copy_image_to(TAG, target)
    assert REMOTE in err.value.message


def test_a_dead_target_or_source_is_named() -> None:
    source, target, _ = _engines(dead_target=True)
    with pytest.raises(ServiceUnavailableError) as err:
        source.copy_image_to(TAG, target)
    assert err.value.obj == REMOTE
    source, target, _ = _engines(die_after=1)
    with pytest.raises(ServiceUnavailableError) as err:
        source.copy_image_to(TAG, target)
    assert err.value.obj == source.url
