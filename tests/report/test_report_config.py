"""``[tool.dlaudit]`` configuration from pyproject.toml or ``--config``."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlaudit.errors import ConfigError, GateError
from dlaudit.report.config import AuditConfig, load_config
from dlaudit.report.gates import Gate


def test_no_pyproject_or_no_table_is_no_configuration(tmp_path: Path) -> None:
    assert load_config(cwd=tmp_path) == AuditConfig()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert load_config(cwd=tmp_path) == AuditConfig()


def test_pyproject_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.dlaudit]\ngates = ["performance.accuracy < 0.95", "robustness.pgd_linf.acc@0.1 <= 0.5"]\n'
        'checks = ["performance", "robustness"]\nfast = true\nbaseline = "reports/base.json"\nmax_drop = 0.01\n'
    )
    config = load_config(cwd=tmp_path)
    assert config.gates == [Gate("performance.accuracy", "<", 0.95), Gate("robustness.pgd_linf.acc@0.1", "<=", 0.5)]
    assert config.checks == ["performance", "robustness"]
    assert config.fast is True and config.max_drop == 0.01
    assert config.baseline == tmp_path / "reports" / "base.json"
    assert config.source == tmp_path / "pyproject.toml"


def test_config_file_with_top_level_keys(tmp_path: Path) -> None:
    path = tmp_path / "dlaudit.toml"
    path.write_text('gates = ["performance.accuracy < 0.9"]\nchecks = "performance, fairness"\nmax-drop = 0\n')
    config = load_config(path)
    assert config.checks == ["performance", "fairness"] and config.max_drop == 0.0


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        (
            '[tool.dlaudit]\ngate = ["a >= 1"]\n',
            ConfigError,
            "unknown key(s) gate; valid keys: gates, fail-on, checks, fast, baseline, max-drop",
        ),
        ('[tool.dlaudit]\ngates = ["a => 1"]\n', GateError, "malformed gate 'a => 1'"),
        ('[tool.dlaudit]\ngates = "a >= 1"\n', ConfigError, "gates must be a list of strings"),
        ('[tool.dlaudit]\nfast = "yes"\n', ConfigError, "fast must be true or false"),
        ("[tool.dlaudit]\nmax-drop = -1\n", ConfigError, "max-drop must be a number >= 0"),
        ("[tool.dlaudit\n", ConfigError, "is not valid TOML"),
        ("[tool]\nother = 1\n", ConfigError, "has no [tool.dlaudit] table"),
    ],
)
def test_bad_configuration(tmp_path: Path, text: str, error: type[Exception], message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(error) as err:
        load_config(path)
    assert message in str(err.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
