"""Stochastic models: detected, attacked with EoT (AutoAttack's rand version), judged by majority vote, seeded."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

import dlaudit
from dlaudit import parallel
from dlaudit.errors import ConfigError
from dlaudit.robust.attacks.apgd import apgd
from dlaudit.robust.attacks.autoattack import RAND_ATTACKS, autoattack
from dlaudit.robust.stochastic import KEY_CHUNK, Keyed, MajorityVote, detect, keyed_rows, seeded, vote_predictions


class DropoutKept(nn.Module):
    """A model whose ``eval()`` keeps its dropout modules in training mode (dropout left on at inference)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def train(self, mode: bool = True) -> DropoutKept:
        super().train(mode)
        for m in self.inner.modules():
            if isinstance(m, nn.Dropout):
                m.train(True)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


@pytest.fixture(scope="module")
def stochastic_cnn(digits_cnn: dlaudit.ModelBundle) -> dlaudit.ModelBundle:
    return dlaudit.ModelBundle(DropoutKept(copy.deepcopy(digits_cnn.module)).eval(), digits_cnn.card, device="cpu")


@pytest.fixture(scope="module")
def batch(digits_splits) -> tuple[torch.Tensor, torch.Tensor]:
    return digits_splits.test.x[:16], digits_splits.test.y[:16]


def test_dropout_left_on_is_detected_and_named(stochastic_cnn, digits_cnn, batch) -> None:
    x = batch[0]
    found = detect(stochastic_cnn.module, x, seed=0)
    assert found is not None and found.differing > 0 and found.max_difference > 0
    assert found.suspects == ("inner.6",)
    assert "dropout left on in eval mode (inner.6)" in found.reason()
    assert detect(digits_cnn.module, x, seed=0) is None
    assert stochastic_cnn.module.training is False  # left as found


def test_detection_leaves_torch_generator_as_it_was(stochastic_cnn, batch) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    detect(stochastic_cnn.module, batch[0], seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_majority_vote_is_the_most_common_prediction() -> None:
    class Cycle(nn.Module):  # predicts class 0, 1, 0, 1, 0, ... on successive calls
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            out = torch.zeros(len(x), 3)
            out[:, (self.calls - 1) % 2] = 1.0
            return out

    assert MajorityVote(Cycle(), passes=5)(torch.zeros(2, 1)).argmax(dim=1).tolist() == [0, 0]
    assert MajorityVote(Cycle(), passes=1)(torch.zeros(2, 1)).argmax(dim=1).tolist() == [0, 0]
    with pytest.raises(ConfigError, match="passes"):
        MajorityVote(Cycle(), passes=0)


def test_eot_averages_identical_passes_to_the_single_pass_on_a_deterministic_model(digits_cnn, batch) -> None:
    x, y = batch
    one = apgd(digits_cnn.module, x, y, eps=0.1, steps=10, seed=3)
    two = apgd(digits_cnn.module, x, y, eps=0.1, steps=10, seed=3, eot=2)  # (g + g) / 2 == g exactly
    assert torch.equal(one[0], two[0]) and torch.equal(one[1], two[1])
    with pytest.raises(ConfigError, match="eot"):
        apgd(digits_cnn.module, x, y, eps=0.1, eot=0)


def test_rand_autoattack_with_eot_is_at_least_as_strong_repeatable_and_batch_free(
    stochastic_cnn, batch, tmp_path
) -> None:
    x, y = batch
    shards = parallel.InProcess(workers=2, checkpoint=parallel.Checkpoint(tmp_path / "ck", {"run": "rand"}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eot = autoattack(stochastic_cnn, x, y, eps=0.08, version="rand", seed=1, batch_size=16, eot=5)
        single = autoattack(stochastic_cnn, x, y, eps=0.08, version="rand", seed=1, batch_size=16, eot=1)
        with parallel.active(shards):  # shards of batches of 7
            again = autoattack(stochastic_cnn, x, y, eps=0.08, version="rand", seed=1, batch_size=7, eot=5)
    assert eot.attacks == RAND_ATTACKS and eot.complete
    assert eot.rejected == {}  # every success the attacks' own votes saw, the engine's vote confirms
    assert eot.metric_name == "robustness.autoattack_rand_linf.acc@0.08"
    assert eot.robust_accuracy <= single.robust_accuracy
    assert eot.clean_accuracy > 0.5 and eot.robust_accuracy < eot.clean_accuracy
    # each sample's passes are keyed by its index: shards of batches of 7 give what one batch of 16 gives
    assert shards.stats["shards"] >= 2
    assert torch.equal(eot.robust, again.robust) and torch.equal(eot.clean_correct, again.clean_correct)
    assert torch.equal(eot.breaker, again.breaker)


def test_seeded_gives_the_same_draws_and_restores_the_generator() -> None:
    torch.manual_seed(7)
    with seeded(4):
        a = torch.rand(5)
    with seeded(4):
        b = torch.rand(5)
    assert torch.equal(a, b)
    after = torch.rand(1)
    torch.manual_seed(7)
    assert torch.equal(torch.rand(1), after)


_SECTION = {
    "n": 16, "steps": 4, "certify": "off", "smoothing": False, "corruptions": False, "masking": False,
    "attacks": ["pgd_linf"], "eps": [0.1], "noise": [], "min_eps_samples": 8, "min_eps_steps": 4, "examples": 0,
}  # fmt: skip


def test_the_section_uses_eot_and_says_why(stochastic_cnn, digits_cnn) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sec = dlaudit.robustness(stochastic_cnn, fast=True, **_SECTION)
        plain = dlaudit.robustness(digits_cnn, fast=True, **_SECTION)
    found = [f for f in sec.findings if f.check == "stochastic-model"]
    assert len(found) == 1 and "rand version" in found[0].message and "majority of 9 passes" in found[0].message
    assert sec.params["autoattack"] == "rand"
    assert not [f for f in plain.findings if f.check == "stochastic-model"]
    assert plain.params["autoattack"] == "fast"
    assert stochastic_cnn.module.training is False


def test_the_attacks_scope_runs_rand_autoattack_judged_by_majority(stochastic_cnn) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sec = dlaudit.robustness(stochastic_cnn, scope="attacks", attacks=["autoattack_linf"], eps=[0.08], n=12)
    assert sec.params["version"] == "rand"
    assert [f.check for f in sec.findings].count("stochastic-model") == 1
    assert 0.0 <= {m.name: m.value for m in sec.metrics}["robustness.autoattack_linf.acc@0.08"] < 1.0


def test_the_estimate_counts_the_rand_version_for_a_stochastic_model(stochastic_cnn, digits_cnn, digits_splits) -> None:
    from dlaudit.robust.analysis import Settings, estimate

    data = digits_splits.test.subset(torch.arange(32))
    rand = estimate(stochastic_cnn, data, Settings.build(stochastic_cnn, fast=True))
    plain = estimate(digits_cnn, data, Settings.build(digits_cnn, fast=True))
    assert rand is not None and plain is not None
    assert "AutoAttack (rand," in rand[1] and "AutoAttack (fast," in plain[1]
    assert rand[0] > plain[0]


def test_keyed_passes_give_each_sample_the_same_logits_in_any_batch(stochastic_cnn, batch) -> None:
    x = batch[0]
    model = Keyed(stochastic_cnn.module, seed=3)
    rows = torch.arange(len(x)) + 5  # chunks straddle the batch's edges
    with torch.no_grad():
        with keyed_rows(rows, "t"):
            whole, second = model(x), model(x)
        parts = []
        for part in (torch.tensor([0, 9, 3]), torch.tensor([15, 1, 2, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14])):
            with keyed_rows(rows[part], "t"):
                parts.append((part, model(x[part])))
        with keyed_rows(rows, "other"):
            other = model(x)
    for part, out in parts:
        assert torch.equal(out, whole[part])  # to the last bit: every chunk runs as a full KEY_CHUNK-row batch
    assert not torch.equal(whole, second) and not torch.equal(whole, other)  # a fresh pass, another call site
    assert KEY_CHUNK == 8


def test_apgd_with_a_vote_stops_a_sample_only_where_its_vote_is_fooled(stochastic_cnn, batch) -> None:
    x, y = batch
    model = Keyed(stochastic_cnn.module, seed=1)
    index = torch.arange(len(x)) + 100
    adv, fooled = apgd(model, x, y, eps=0.08, steps=20, seed=1, index=index, eot=4, vote=9)
    with keyed_rows(index), torch.no_grad():
        verdict = MajorityVote(model, 9)(adv).argmax(dim=1) != y
    assert torch.equal(fooled, verdict)  # robust samples end at points their vote calls correct, fooled ones not
    assert stochastic_cnn.module.training is False  # the wrapper left the model in eval mode
    assert 0 < int(fooled.sum()) < len(x)


def test_vote_predictions_do_not_depend_on_the_batch_size(stochastic_cnn, batch) -> None:
    x, y = batch
    whole = vote_predictions(stochastic_cnn.module, x, seed=4, batch_size=16)
    assert torch.equal(whole, vote_predictions(stochastic_cnn.module, x, seed=4, batch_size=5))
    assert float((whole == y).float().mean()) > 0.5
    assert stochastic_cnn.module.training is False


def test_every_metric_of_a_stochastic_model_is_the_same_for_any_batch_size(stochastic_cnn) -> None:
    params = {
        **_SECTION, "n": 12, "steps": 3, "attacks": ["fgsm_linf", "pgd_linf", "pgd_l2"], "eps": [0.05, 0.15],
        "eps_l2": [0.8], "noise": [0.1, 0.3], "corruptions": True, "min_eps_samples": 4, "min_eps_steps": 3,
        "bisection": 3, "autoattack": "off",
    }  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        small = dlaudit.robustness(stochastic_cnn, fast=True, batch_size=7, **params)
        large = dlaudit.robustness(stochastic_cnn, fast=True, batch_size=32, **params)
    a, b = ({m.name: m.value for m in sec.metrics} for sec in (small, large))
    for stem in ("fgsm_linf.acc@0.15", "pgd_linf.acc@0.15", "pgd_l2.acc@0.8", "noise.acc@0.3", "noise_uniform.acc@0.3",
                 "corruption.mean_acc", "corruption.gaussian_noise.acc@5", "pgd_linf.median_min_eps"):  # fmt: skip
        assert f"robustness.{stem}" in a, stem
    assert a == b  # keyed per sample: another batch size draws the same random numbers for every sample
    assert small.params["batch_size"] == 7 and large.params["batch_size"] == 32
    assert "for any batch size" in next(f.message for f in small.findings if f.check == "stochastic-model")
    assert stochastic_cnn.module.training is False
