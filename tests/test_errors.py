"""One error root: every room's errors are KarungErrors, and the edges map them generically."""

from __future__ import annotations

import pytest

from karung.batch.errors import BatchError
from karung.batch.inputs import InputError
from karung.cli.main import main
from karung.errors import KarungError
from karung.serve.auth.keys import DuplicateKeyName, KeyManagementError
from karung.serve.auth.scopes import UnknownScope
from karung.serve.bank.errors import BankError, BankNotFound, EntryNotFound
from karung.serve.batcher import BatcherClosed
from karung.serve.errors import (
    BankUnavailable,
    ItemError,
    ModelUnavailable,
    NotFound,
    Unauthorized,
    item_error,
)
from karung.serve.fetch_errors import FetchError, HttpStatus
from karung.serve.policy import InvalidThresholds
from karung.serve.review.errors import AuthenticationFailed, NotClaimed, ReviewError
from karung.serve.scoring import InvalidBase64
from karung.training.errors import KarungTrainingError, ParityError
from karung.training.synth.errors import SynthConfigError, SynthError
from karung.vision.errors import CorruptImage, ImageTooComplex, KarungVisionError

ROOTS = [
    KarungVisionError,
    KarungTrainingError,
    SynthError,
    BankError,
    ReviewError,
    ItemError,
    FetchError,
    KeyManagementError,
    BatchError,
]


@pytest.mark.parametrize("root", ROOTS, ids=lambda r: r.__name__)
def test_every_room_roots_in_karung_error(root: type[Exception]) -> None:
    assert issubclass(root, KarungError)


@pytest.mark.parametrize(
    ("error", "code", "status"),
    [  # what platforms and tests rely on: unchanged by the one root
        (Unauthorized, "unauthorized", 401),
        (NotFound, "not_found", 404),
        (ModelUnavailable, "model_unavailable", 503),
        (BankUnavailable, "bank_unavailable", 503),
        (NotClaimed, "not_claimed", 409),
        (AuthenticationFailed, "authentication_failed", 401),
        (EntryNotFound, "entry_not_found", 404),
        (BankNotFound, "bank_not_found", 404),
        (InvalidThresholds, "invalid_thresholds", 422),
        (UnknownScope, "unknown_scope", 422),
        (BatcherClosed, "shutting_down", 503),  # was internal_error
    ],
)
def test_codes_and_statuses(error: type[KarungError], code: str, status: int) -> None:
    assert (error.code, error.http_status) == (code, status)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (CorruptImage("bad bytes"), "corrupt_image"),
        (ImageTooComplex("too big"), "image_too_complex"),
        (HttpStatus(404), "http_status"),
        (InvalidBase64("no"), "invalid_base64"),
        (BatcherClosed("stopping"), "shutting_down"),
        (DuplicateKeyName("k"), "duplicate_key_name"),
        (InputError("x"), "input_invalid"),
        (RuntimeError("secret path /etc"), "internal_error"),
    ],
)
def test_item_errors_map_any_karung_error(exc: Exception, code: str) -> None:
    err = item_error(exc)
    assert err["code"] == code
    if code == "internal_error":  # an unknown exception's text never reaches the platform
        assert "secret" not in err["message"]
    else:
        assert err["message"] == str(exc)


def test_class_keywords_set_code_status_and_exit() -> None:
    class Room(KarungError, code="room_error", status=418, exit_code=4):
        """A room."""

    class Leaf(Room, code="leaf"):
        """Inherits the status and exit status."""

    assert (Leaf.code, Leaf.http_status, Leaf.exit_code) == ("leaf", 418, 4)
    assert Leaf("m").to_dict() == {"code": "leaf", "message": "m"}
    assert (SynthConfigError.exit_code, ParityError.exit_code, SynthError.exit_code) == (2, 3, 1)


def test_the_cli_reports_any_karung_error_with_its_code(capsys: pytest.CaptureFixture[str]) -> None:
    # n=0 is a SynthConfigError raised deep in the synthesiser: exit 2 with its code.
    assert main(["synth", "--out", "/nonexistent/karung-synth", "--n", "0"]) == 2
    assert "error: bad_config:" in capsys.readouterr().err
