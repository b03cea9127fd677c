"""Models whose graphs would write files (or print, reseed, call unknown operators): refused before anything runs.

Each payload is first shown to be real where it writes a file: torch's own loader
(unchecked) creates the marker. dlaudit then refuses the model with one line naming
the operator, exit 2; the marker never appears and nothing in the folder changes.
The same allow-list must let every genuine model through: dlaudit's reference models
and torchvision's resnet18, scripted, traced and exported.
"""

from __future__ import annotations

import json
import time
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import dlaudit
from dlaudit.archive import _safe_expression
from dlaudit.cli import cli
from dlaudit.errors import ModelLoadError
from dlaudit.models import build_model
from dlaudit.operators import RefusedOperator, check_fx_graph, check_torchscript, target_refusal
from tests.hostile.crafted import digest

# -- custom operators (an extension the user imported) --------------------------------------------


@torch.library.custom_op("dlaudit_test::double", mutates_args=())
def _double(x: torch.Tensor) -> torch.Tensor:
    return x * 2


@_double.register_fake
def _double_fake(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


@torch.library.custom_op("dlaudit_test::fromfile", mutates_args=())
def _fromfile(filename: str, shared: bool, size: int) -> torch.Tensor:
    """Has aten::from_file's argument names; its serialized target is then renamed to that operator."""
    return torch.zeros(size)


@_fromfile.register_fake
def _fromfile_fake(filename: str, shared: bool, size: int) -> torch.Tensor:
    return torch.empty(size)


# -- payloads -----------------------------------------------------------------------------------


def _script(module: nn.Module, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(module.eval()), path)
    return path


class _FromFile(nn.Module):
    """``torch.from_file(marker, shared=True)`` then ``copy_``: writes the marker when it runs."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.from_file(self.marker, shared=True, size=4, dtype=torch.uint8)
        t.copy_(torch.full([4], 65, dtype=torch.uint8))
        return self.fc(x.flatten(1)) + t[0].float() * 0


class _Writer(nn.Module):
    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    def write(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.from_file(self.marker, shared=True, size=4, dtype=torch.uint8)
        t.copy_(torch.full([4], 65, dtype=torch.uint8))
        return x + t[0].float() * 0

    @torch.jit.export
    def unused(self, x: torch.Tensor) -> torch.Tensor:
        return self.write(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.write(x)


class _ViaSubmodule(nn.Module):
    def __init__(self, marker: str) -> None:
        super().__init__()
        self.enc = _Writer(marker)
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.enc(x).flatten(1))


class _HiddenWriter(_Writer):
    """Its forward is clean; only its exported method ``unused`` writes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class _UnusedMethod(nn.Module):
    """forward is clean; a submodule's exported method (never called by forward) writes."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.enc = _HiddenWriter(marker)
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


class _InABranch(nn.Module):
    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x.flatten(1))
        if bool(x.sum() > -1e9):
            for _ in range(1):
                t = torch.from_file(self.marker, shared=True, size=4, dtype=torch.uint8)
                t.copy_(torch.full([4], 65, dtype=torch.uint8))
                y = y + t[0].float() * 0
        return y


class _SetState(nn.Module):
    """``__setstate__`` writes: torch runs it while it loads the archive, before any forward pass."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker
        self.weight = nn.Parameter(torch.zeros(10, 64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.weight.t()

    @torch.jit.export
    def __getstate__(self) -> tuple[torch.Tensor, str, bool]:
        return (self.weight, self.marker, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[torch.Tensor, str, bool]) -> None:
        t = torch.from_file(state[1], shared=True, size=4, dtype=torch.uint8)
        t.copy_(torch.full([4], 65, dtype=torch.uint8))
        self.weight = state[0]
        self.marker = state[1]
        self.training = state[2] or bool(t[0] > 255)


class _Prints(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        print("\x1b]0;owned\x07")
        return self.fc(x.flatten(1))


class _Reseeds(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(0)
        return self.fc(x.flatten(1))


class _Custom(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.ops.dlaudit_test.double(x).flatten(1))


class _StagedFromFile(nn.Module):
    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.ops.dlaudit_test.fromfile(self.marker, True, 4)
        t.copy_(torch.full((4,), 65.0))
        return self.fc(x.flatten(1)) + t[0] * 0


def _export(module: nn.Module, path: Path, *, dynamic: bool = False) -> Path:
    shapes = ({0: torch.export.Dim("batch", min=1, max=4096)},) if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.export.save(torch.export.export(module.eval(), (torch.zeros(2, 1, 8, 8),), dynamic_shapes=shapes), path)
    return path


def _rewrite(src: Path, dst: Path, change: Callable[[str, bytes], bytes | None]) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            data = zin.read(name)
            new = change(name, data)
            zout.writestr(name, data if new is None else new)
    return dst


def _renamed_target(folder: Path, marker: Path, target: str) -> Path:
    """A torch.export program whose staged operator is renamed to ``target`` in its serialized graph."""
    staged = _export(_StagedFromFile(str(marker)), folder / "staged.pt2")
    old = b"torch.ops.dlaudit_test.fromfile.default"
    path = _rewrite(
        staged,
        folder / "evil.pt2",
        lambda n, d: d.replace(old, target.encode()) if n.endswith("models/model.json") else None,
    )
    staged.unlink()
    return path


def _ts(cls: type[nn.Module]) -> Callable[[Path, Path], Path]:
    return lambda d, marker: _script(cls(str(marker)), d / "evil.pt")  # type: ignore[call-arg]


Payload = Callable[[Path, Path], Path]

# case -> (builder(folder, marker) -> model path, fragment of the message, how torch's own reader runs it or None)
FILE_WRITERS: dict[str, tuple[Payload, str, str]] = {
    "TorchScript forward: from_file + copy_": (_ts(_FromFile), "from_file", "run"),
    "TorchScript: a submodule's method": (_ts(_ViaSubmodule), "from_file", "run"),
    "TorchScript: a method forward never calls": (_ts(_UnusedMethod), "from_file", "call enc.unused"),
    "TorchScript: inside an if branch and a loop": (_ts(_InABranch), "from_file", "run"),
    "TorchScript: __setstate__, run while torch loads": (_ts(_SetState), "from_file", "load"),
    "torch.export: from_file + copy_": (
        lambda d, m: _renamed_target(d, m, "torch.ops.aten.from_file.default"),
        "aten.from_file",
        "run exported",
    ),
}

OTHER_OPERATORS: dict[str, tuple[Payload, str]] = {
    "TorchScript: print (a terminal escape)": (lambda d, m: _script(_Prints(), d / "evil.pt"), "print"),
    "TorchScript: torch.manual_seed": (lambda d, m: _script(_Reseeds(), d / "evil.pt"), "manual_seed"),
    "TorchScript: a custom namespace": (lambda d, m: _script(_Custom(), d / "evil.pt"), "dlaudit_test"),
    "torch.export: a custom namespace": (lambda d, m: _export(_Custom(), d / "evil.pt2"), "dlaudit_test.double"),
    "torch.export: aten._print": (lambda d, m: _renamed_target(d, m, "torch.ops.aten._print.default"), "_print"),
    "torch.export: aten.save": (lambda d, m: _renamed_target(d, m, "torch.ops.aten.save.default"), "aten.save"),
    "torch.export: a profiler operator": (
        lambda d, m: _renamed_target(d, m, "torch.ops.profiler._record_function_enter.default"),
        "profiler",
    ),
    "torch.export: an operator torch does not know": (
        lambda d, m: _renamed_target(d, m, "torch.ops.aten.no_such_operator.default"),
        "no_such_operator",
    ),
    "torch.export: a higher-order operator that is not control flow": (
        lambda d, m: _renamed_target(d, m, "torch.ops.higher_order.with_effects"),
        "with_effects",
    ),
}


def _run_under_torch(path: Path, how: str) -> None:
    """What torch's own reader does with the file: the payload is real when the marker then exists."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if how == "run exported":
            torch.export.load(str(path)).module()(torch.zeros(2, 1, 8, 8))
            return
        module = torch.jit.load(str(path))
        if how == "run":
            module(torch.zeros(2, 1, 8, 8))
        elif how == "call enc.unused":
            module.enc.unused(torch.zeros(2, 64))


def _refused(folder: Path, argv: list[str], fragment: str) -> str:
    """Run the CLI in ``folder``: exit 2, one line naming ``fragment``, nothing in the folder changed."""
    before = digest(folder)
    result = CliRunner().invoke(cli, argv, catch_exceptions=False)
    out = result.output.strip()
    assert result.exit_code == 2, out
    assert "Traceback" not in out and len(out.splitlines()) == 1, out
    assert out.startswith("dlaudit: error:") and fragment in out, out
    assert digest(folder) == before, "an input was changed"
    assert "\x1b" not in out and "\x07" not in out
    return out


COMMANDS = {
    "info": lambda m, d: ["info", str(m), "--input-shape", "1,8,8", "--num-classes", "10"],
    "report": lambda m, d: [
        "report",
        str(m),
        "--input-shape",
        "1,8,8",
        "--num-classes",
        "10",
        "--data",
        "digits",
        "--checks",
        "performance",
        "-o",
        str(d / "r.html"),
    ],
    "attack": lambda m, d: ["attack", str(m), "--input-shape", "1,8,8", "--num-classes", "10", "--data", "digits"],
}


@pytest.mark.parametrize("case", list(FILE_WRITERS))
def test_a_model_that_writes_a_file_is_refused(tmp_path: Path, case: str) -> None:
    build, fragment, how = FILE_WRITERS[case]
    marker = tmp_path / "marker.pth"
    work = tmp_path / "work"
    work.mkdir()
    path = build(work, marker)
    _run_under_torch(path, how)
    assert marker.exists(), "the payload did not write its file under torch's own reader"
    marker.unlink()
    out = _refused(work, COMMANDS["info"](path, work), fragment)
    assert "reads or writes files" in out
    assert not marker.exists()


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_refuses_before_running_the_model(tmp_path: Path, command: str) -> None:
    marker = tmp_path / "marker.pth"
    work = tmp_path / "work"
    work.mkdir()
    path = _script(_FromFile(str(marker)), work / "evil.pt")
    _refused(work, COMMANDS[command](path, work), "from_file")
    assert not marker.exists() and not (work / "r.html").exists()


@pytest.mark.parametrize("case", list(OTHER_OPERATORS))
def test_an_operator_off_the_allow_list_is_refused(tmp_path: Path, case: str) -> None:
    build, fragment = OTHER_OPERATORS[case]
    marker = tmp_path / "marker.pth"
    work = tmp_path / "work"
    work.mkdir()
    path = build(work, marker)
    _refused(work, COMMANDS["info"](path, work), fragment)
    assert not marker.exists()


def test_trust_ops_lets_a_custom_namespace_through(tmp_path: Path) -> None:
    for path in (_script(_Custom(), tmp_path / "custom.pt"), _export(_Custom(), tmp_path / "custom.pt2")):
        out = _refused(tmp_path, COMMANDS["info"](path, tmp_path), "--trust-ops")
        assert "dlaudit_test" in out
        res = CliRunner().invoke(cli, [*COMMANDS["info"](path, tmp_path), "--trust-ops"], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        bundle = dlaudit.load_model(path, card={"input_shape": [1, 8, 8], "num_classes": 10}, trust_ops=True)
        assert bundle.logits(torch.zeros(3, 1, 8, 8)).shape == (3, 10)


def test_trust_ops_does_not_let_a_file_writer_through(tmp_path: Path) -> None:
    marker = tmp_path / "marker.pth"
    path = _script(_FromFile(str(marker)), tmp_path / "evil.pt")
    _refused(tmp_path, [*COMMANDS["info"](path, tmp_path), "--trust-ops"], "from_file")
    with pytest.raises(ModelLoadError, match="from_file"):
        dlaudit.load_model(path, card={"input_shape": [1, 8, 8], "num_classes": 10}, trust_ops=True)
    assert not marker.exists()


# -- the loaded-graph checks on their own (the second line of defence) -------------------------------


@pytest.mark.parametrize(
    ("module", "where"),
    [
        (_FromFile, "method forward of the top module"),
        (_UnusedMethod, "method unused of submodule enc"),
        (_InABranch, "method forward of the top module"),
    ],
)
def test_torchscript_graph_walk_finds_the_operator(tmp_path: Path, module: type[nn.Module], where: str) -> None:
    scripted = torch.jit.script(module(str(tmp_path / "marker")).eval())  # type: ignore[call-arg]
    with pytest.raises(RefusedOperator) as err:
        check_torchscript(scripted)
    assert err.value.operator == "aten::from_file" and where in err.value.where
    assert not (tmp_path / "marker").exists()


@pytest.mark.parametrize("module", [_FromFile, _UnusedMethod, _InABranch])
def test_loading_walks_the_graphs_when_the_code_scan_misses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: type[nn.Module]
) -> None:
    import dlaudit.archive

    monkeypatch.setattr(dlaudit.archive, "scan_torchscript_code", lambda *args, **kwargs: None)
    marker = tmp_path / "marker"
    path = _script(module(str(marker)), tmp_path / "evil.pt")  # type: ignore[call-arg]
    out = _refused(tmp_path, COMMANDS["info"](path, tmp_path), "calls aten::from_file (in method")
    assert "reads or writes files" in out
    assert not marker.exists()


def test_loading_checks_the_exported_graph_when_the_archive_audit_misses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dlaudit.archive

    marker = tmp_path / "marker"
    path = _renamed_target(tmp_path, marker, "torch.ops.aten.from_file.default")
    monkeypatch.setattr(dlaudit.archive, "target_refusal", lambda *args, **kwargs: None)
    out = _refused(tmp_path, COMMANDS["info"](path, tmp_path), "calls torch.ops.aten.from_file.default (graph node")
    assert "reads or writes files" in out
    assert not marker.exists()


def test_fx_graph_check_finds_a_custom_operator() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.export.export(_Custom().eval(), (torch.zeros(2, 1, 8, 8),))
    with pytest.raises(RefusedOperator, match="dlaudit_test"):
        check_fx_graph(program.graph_module)
    check_fx_graph(program.graph_module, trust_ops=True)


@pytest.mark.parametrize(
    ("target", "allowed"),
    [
        ("torch.ops.aten.conv2d.default", True),
        ("torch.ops.aten.copy_.default", True),
        ("torch.ops.aten.sym_size.int", True),
        ("torch.ops.higher_order.cond", True),
        ("_operator.mul", True),
        ("torch.sym_max", True),
        ("torch.ops.aten.from_file.default", False),
        ("torch.ops.aten.save.default", False),
        ("torch.ops.aten._print.default", False),
        ("torch.ops.aten.manual_seed.default", False),
        ("torch.ops.profiler._record_function_enter.default", False),
        ("torch.ops.c10d.allreduce_.default", False),
        ("torch.ops.mylib.op.default", False),
        ("torch.ops.higher_order.with_effects", False),
        ("torch.ops.higher_order.triton_kernel_wrapper_functional", False),
        ("builtins.print", False),
        ("torch.save", False),
    ],
)
def test_target_allow_list(target: str, allowed: bool) -> None:
    assert (target_refusal(target) is None) is allowed


# -- genuine models still load and run ---------------------------------------------------------------


def _genuine(kind: str, folder: Path) -> tuple[Path, dict[str, Any]]:
    small = {"input_shape": [1, 8, 8], "num_classes": 10}
    if kind.startswith("resnet18"):
        import torchvision

        model: nn.Module = torchvision.models.resnet18(num_classes=10).eval()
        shape, card = (2, 3, 32, 32), {"input_shape": [3, 32, 32], "num_classes": 10}
    else:
        arch = kind.split()[0]
        model, shape, card = build_model(arch, (1, 8, 8), 10).eval(), (2, 1, 8, 8), small
    how = kind.split()[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if how in ("export", "export-dynamic"):
            dyn = ({0: torch.export.Dim("batch", min=1, max=4096)},) if how == "export-dynamic" else None
            path = folder / "m.pt2"
            torch.export.save(torch.export.export(model, (torch.rand(shape),), dynamic_shapes=dyn), path)
        else:
            path = folder / "m.pt"
            scripted = torch.jit.script(model) if how == "script" else torch.jit.trace(model, torch.rand(shape))
            torch.jit.save(scripted, path)
    return path, card


GENUINE = [
    "cnn script",
    "cnn trace",
    "cnn export",
    "cnn export-dynamic",
    "mlp script",
    "mlp export",
    "resnet18 script",
    "resnet18 trace",
    "resnet18 export-dynamic",
]


@pytest.mark.parametrize("kind", GENUINE)
def test_genuine_models_load_and_run(tmp_path: Path, kind: str) -> None:
    path, card = _genuine(kind, tmp_path)
    bundle = dlaudit.load_model(path, card=card, device="cpu")
    assert bundle.logits(torch.rand(3, *card["input_shape"])).shape == (3, 10)
    shape = ",".join(map(str, card["input_shape"]))
    res = CliRunner().invoke(cli, ["info", str(path), "--input-shape", shape, "--num-classes", "10"])
    assert res.exit_code == 0, res.output


# -- archive limits: inflated members, duplicated members, runaway expressions ---------------------------


def _with_bomb(clean: Path, bomb: Path, member_suffix: str, mib: int = 64) -> Path:
    """``clean`` with its member ending in ``member_suffix`` replaced by ``mib`` MiB of zeros, deflated (a few KB)."""
    with zipfile.ZipFile(clean) as zin, zipfile.ZipFile(bomb, "w") as zout:
        for info in zin.infolist():
            if not info.filename.endswith(member_suffix):
                zout.writestr(info, zin.read(info))
                continue
            inflated = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            inflated.compress_type = zipfile.ZIP_DEFLATED
            with zout.open(inflated, "w", force_zip64=True) as fh:
                for _ in range(mib):
                    fh.write(bytes(2**20))
    return bomb


def test_a_member_that_inflates_like_a_zip_bomb_is_refused_before_it_is_read(tmp_path: Path) -> None:
    clean = _script(build_model("mlp", (1, 8, 8), 10), tmp_path / "clean.pt")
    bomb = _with_bomb(clean, tmp_path / "bomb.pt", "/data/0")
    assert bomb.stat().st_size < 2**20
    start = time.perf_counter()
    out = _refused(tmp_path, COMMANDS["info"](bomb, tmp_path), "inflates")
    assert "data/0" in out and "zip bomb" in out
    assert time.perf_counter() - start < 10
    with pytest.raises(ModelLoadError, match="inflates"):  # also when the pickles are trusted
        dlaudit.load_model(bomb, card={"input_shape": [1, 8, 8], "num_classes": 10}, trust_pickle=True)


def test_an_archive_larger_than_memory_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dlaudit.archive

    path = _script(build_model("mlp", (1, 8, 8), 10), tmp_path / "m.pt")
    monkeypatch.setattr(dlaudit.archive, "_memory_bytes", lambda: 1000)  # a machine with 1,000 bytes of memory
    out = _refused(tmp_path, COMMANDS["info"](path, tmp_path), "more than this machine's memory (1,000 bytes)")
    assert "m.pt" in out


def test_a_duplicated_member_is_named(tmp_path: Path) -> None:
    clean = _export(build_model("mlp", (1, 8, 8), 10), tmp_path / "clean.pt2")
    dup = tmp_path / "dup.pt2"
    with zipfile.ZipFile(clean) as zin, zipfile.ZipFile(dup, "w") as zout, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name: that is the point
        names = zin.namelist()
        for name in names:
            zout.writestr(name, zin.read(name))
        graph = next(n for n in names if n.endswith("models/model.json"))
        zout.writestr(
            graph, zin.read(graph).replace(b"torch.ops.aten.relu.default", b"torch.ops.aten.from_file.default")
        )
    out = _refused(tmp_path, COMMANDS["info"](dup, tmp_path), "appears twice")
    assert graph in out


def _with_expression(clean: Path, path: Path, suffix: str) -> Path:
    """A dynamic-batch program whose first symbolic expression gets ``suffix`` appended."""

    def change(name: str, data: bytes) -> bytes | None:
        if not name.endswith("models/model.json"):
            return None
        doc = json.loads(data)
        stack: list[Any] = [doc]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                if isinstance(item.get("expr_str"), str):
                    item["expr_str"] += suffix
                    return json.dumps(doc).encode()
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
        raise AssertionError("no symbolic expression in the program")

    return _rewrite(clean, path, change)


def test_a_runaway_symbolic_expression_is_refused_at_once(tmp_path: Path) -> None:
    clean = _export(build_model("mlp", (1, 8, 8), 10), tmp_path / "clean.pt2", dynamic=True)
    path = _with_expression(clean, tmp_path / "pow.pt2", " + 0*9**9**9**9")
    start = time.perf_counter()
    _refused(tmp_path, COMMANDS["info"](path, tmp_path), "symbolic-shape expression")
    assert time.perf_counter() - start < 10


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        ("s31", True),
        ("s0**2 + 2*s0", True),
        ("PowByNatural(s0, 2)", True),
        ("2**s0", True),
        ("s31 + 0*9**9**9**9", False),
        ("(9**64)**64", False),
        ("Pow(9, Pow(9, 9))", False),
        ("9**(s0 - s0 + 999999999)", False),
        ("1 << 10**9", False),
        ("LShift(1, 100000)", False),
        ("s0 + 123456789012345678901234567890", False),
        ("s0" + " + s0" * 1000, False),
        ("Callable(s0)", False),
    ],
)
def test_expression_limits(text: str, safe: bool) -> None:
    assert _safe_expression(text) is safe
