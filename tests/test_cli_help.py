"""``dlaudit --help`` and every ``COMMAND --help`` load nothing heavy (so they answer in well under a second).

Measured as which modules the help loads, not as wall time: the machines are shared and noisy.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dlaudit.cli import cli

HEAVY = (
    "torch",
    "torchvision",
    "matplotlib",
    "captum",
    "shap",
    "lime",
    "fairlearn",
    "sklearn",
    "pandas",
    "numpy",
    "jinja2",
)
_PROBE = """
import json, sys
sys.argv = ["dlaudit", *{args!r}]
from dlaudit.cli import main
code = 0
try:
    main()
except SystemExit as exit:
    code = exit.code
print(json.dumps({{"code": code, "heavy": sorted(m for m in {heavy!r} if m in sys.modules)}}), file=sys.stderr)
"""


def _help(*args: str) -> dict:
    code = _PROBE.format(args=[*args, "--help"], heavy=HEAVY)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    return {**json.loads(res.stderr.strip().splitlines()[-1]), "out": res.stdout}


@pytest.mark.parametrize("command", ["", *sorted(cli.commands)])
def test_help_imports_nothing_heavy(command: str) -> None:
    got = _help(*([command] if command else []))
    assert got["code"] in (0, None) and "Usage: dlaudit" in got["out"]
    assert got["heavy"] == [], f"dlaudit {command} --help loads {got['heavy']}"


def test_train_help_describes_data_as_the_training_set() -> None:
    out = " ".join(_help("train")["out"].split())
    assert "Dataset to train on" in out and "held-out split on the model's card" not in out
