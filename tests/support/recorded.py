"""The catalog as shipped and the recorded machines' expected profiles (tests/fixtures/machines/NAME/expected.json)."""

from __future__ import annotations

from capabilities import MachineProfile
from models.catalog import load_catalog
from tests.support import machines

CATALOG = load_catalog()


def profile(name: str) -> MachineProfile:
    return MachineProfile.from_json((machines.MACHINES / name / "expected.json").read_text())
