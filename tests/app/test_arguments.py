"""The command line offers what the policy and the page take: one list of device choices and modes."""

from __future__ import annotations

from app.arguments import build_parser
from models.policy import DEVICE_CHOICES, MODES


def _choices(dest: str) -> list[str]:
    return list(next(a for a in build_parser()._actions if a.dest == dest).choices)


def test_device_and_mode_choices_are_the_policys_and_the_pages():
    assert _choices("device") == list(DEVICE_CHOICES)
    assert _choices("prefer") == list(MODES)
