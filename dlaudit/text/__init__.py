"""Text classifiers: tokenisation, text data, training the reference models, identity terms and text attacks.

- :mod:`.vocab`: the word-level tokenizer and vocabulary (JSON on a model card), offsets, word merging;
- :mod:`.data`: ``.csv`` / ``.jsonl`` (gzipped too) text files, :class:`TextData`, the :class:`AuditData` adapter;
- :mod:`.synthetic`: ``synthetic-text``, templated comments with a known identity bias;
- :mod:`.train`: :func:`train_text_model` for ``textcnn`` and ``embedding-bag`` (:mod:`dlaudit.models.text`);
- :mod:`.identity`: the documented identity word lists and whole-word, case-preserving swaps;
- :mod:`.attacks`: DeepWordBug, greedy embedding-neighbour substitution, HotFlip, accuracy under attack.

The fairness metrics on text (Jigsaw bias AUCs, counterfactual token fairness) are in
:mod:`dlaudit.fairness.text_bias` and :mod:`dlaudit.fairness.counterfactual_text`.
Import the modules themselves (this package imports nothing heavy).
"""

from __future__ import annotations
