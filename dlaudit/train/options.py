"""``dlaudit train``'s training options, declared next to the trainer's settings (:class:`.trainer.TrainConfig`,
:class:`dlaudit.robust.training.AdversarialTraining`); each fills the keyword of :func:`dlaudit.train` of its name.

A module that imports no torch, so ``dlaudit --help`` stays quick; the CLI builds its Click options from it.
"""

from __future__ import annotations

from ..analysis import Option

__all__ = ["OPTIONS"]

OPTIONS = (
    Option("train", ("--epochs",), "epochs", "Training epochs (default per model).", type="int", min=1),
    Option("train", ("--lr",), "lr", "Learning rate (default per model).", type="float"),
    Option("train", ("--batch-size",), "batch_size", type="int", min=1),
    Option("train", ("--optimizer",), "optimizer", choices=("adam", "sgd")),
    Option("train", ("--weight-decay",), "weight_decay", type="float", default=0.0, show_default=True, min=0),
    Option("train", ("--hidden",), "hidden", "Hidden sizes of mlp / numpy-mlp, e.g. 128,64."),
    Option("train", ("--adversarial",), "adversarial",
           "Adversarial training: pgd (Madry et al. 2018), fgsm (fast, random start, Wong et al. 2020), trades (Zhang et al. 2019).",
           choices=("none", "pgd", "fgsm", "trades")),
    Option("train", ("--eps",), "eps", "Adversarial training budget (L-inf, input units), e.g. 0.1.", type="float"),
    Option("train", ("--alpha",), "alpha", "Attack step size (default 2.5*eps/steps; fgsm 1.25*eps).", type="float"),
    Option("train", ("--steps",), "steps", "Attack steps per batch (default 10; fgsm 1).", type="int"),
    Option("train", ("--beta",), "beta", "TRADES robustness weight (default 6).", type="float"),
    Option("train", ("--warmup",), "warmup",
           "Adversarial training: share of the epochs over which eps ramps up to its value (default 0.3; 0: off).",
           type="float", min=0, max=1),
    Option("train", ("--lr-schedule",), "lr_schedule",
           "Learning-rate schedule (default cosine for adversarial and certified training, else constant).",
           choices=("constant", "cosine")),
    Option("train", ("--certified",), "certified",
           "Certified training: ibp (interval bound propagation, Gowal et al. 2018) at --eps; 30 epochs by default.",
           choices=("ibp",)),
    Option("train", ("--noise-sigma",), "noise_sigma",
           "Train on inputs with Gaussian noise of this standard deviation (for randomized smoothing, Cohen et al. 2019).",
           type="float", min=0, min_open=True),
    Option("train", ("--keep-dropout",), "keep_dropout",
           "cnn: keep the dropout on in eval mode (Monte Carlo dropout): a model random at inference, "
           "audited with AutoAttack's rand version and majority votes.", type="flag"),
)  # fmt: skip
"""Every training option, in the order ``dlaudit train --help`` lists them."""
