"""TextAttack's DeepWordBug recipe against dlaudit's charswap, on the same Hugging Face model and texts.

TextAttack does not install beside transformers 5 (dlaudit's test extra), so this script runs in
a throwaway virtual environment of its own, with ``transformers<5``::

    python3 -m venv /tmp/ta
    /tmp/ta/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
    /tmp/ta/bin/pip install textattack "transformers<5"
    OMP_NUM_THREADS=1 /tmp/ta/bin/python bench/text_textattack.py FOLDER TEXTS.csv [--n 100] [--budget 3]

``FOLDER`` is a text classifier written with ``save_pretrained`` (``bench/text_bert.py --keep``
writes one), ``TEXTS.csv`` has ``text`` and ``label`` columns (label = the model's class index).
Both attacks query the same ``transformers`` model through the same wrapper, in one process:

- TextAttack: ``DeepWordBugGao2018`` (greedy word-importance ranking with UNK, four character
  edits, Levenshtein <= 30, no repeated or stop-word edits) with ``MaxWordsPerturbed(budget)``
  added, so both attacks change at most ``budget`` words;
- dlaudit: :func:`dlaudit.text.attacks.deepwordbug` (importance by deletion, the same four
  edits, two candidates per edit), budget ``budget`` words.

Prints success rates (over the texts the model classifies correctly) and seconds per attacked
text, and their ratio. Timings depend on the machine and its load: quote ratios from one run.

Status on the project's offline machine (2026-12-05): not run. ``download.pytorch.org`` does not
resolve, so torch came from dlaudit's venv (a ``.pth`` file naming its site-packages, after
``pip install --no-deps textattack "transformers<5" "tokenizers>=0.22,<=0.23" "huggingface_hub<1"
"datasets<4" "dill<0.3.9"`` and about 40 more of textattack's and flair's dependencies one by
one). ``import textattack`` then fails: ``textattack/augmentation/recipes.py`` builds a
``StopwordModification()`` at import time, which reads NLTK's ``stopwords`` corpus, and
``nltk.download`` cannot reach its data server (textattack's post-install step tries and fails
the same way). DeepWordBugGao2018 itself uses that stop-word list, so writing another list in
its place would not be TextAttack's recipe. With network access to NLTK's data (or an
``NLTK_DATA`` folder holding ``corpora/stopwords``) the script can be tried; it has not run anywhere yet.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np
import pandas as pd
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("texts", type=Path)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--budget", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import textattack
    import transformers
    from textattack.attack_recipes import DeepWordBugGao2018
    from textattack.constraints.overlap import MaxWordsPerturbed
    from textattack.models.wrappers import HuggingFaceModelWrapper

    from dlaudit.text.attacks import deepwordbug

    torch.manual_seed(args.seed)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(str(args.folder), local_files_only=True)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(args.folder), local_files_only=True)
    model.eval()
    wrapper = HuggingFaceModelWrapper(model, tokenizer)
    frame = pd.read_csv(args.texts).head(args.n)
    texts, labels = frame["text"].astype(str).tolist(), frame["label"].astype(int).tolist()

    def predict_proba(batch: list[str]) -> np.ndarray:
        with torch.no_grad():
            logits = torch.as_tensor(np.asarray(wrapper(list(batch))))
        return torch.softmax(logits.float(), dim=1).numpy()

    correct = predict_proba(texts).argmax(1) == np.asarray(labels)

    attack = DeepWordBugGao2018.build(wrapper)
    attack.constraints.append(MaxWordsPerturbed(max_num_words=args.budget))
    dataset = textattack.datasets.Dataset(list(zip(texts, labels)))
    attack_args = textattack.AttackArgs(
        num_examples=len(texts), disable_stdout=True, silent=True, random_seed=args.seed
    )
    start = time.perf_counter()
    results = textattack.Attacker(attack, dataset, attack_args).attack_dataset()
    ta_s = time.perf_counter() - start
    ta_success = sum(isinstance(r, textattack.attack_results.SuccessfulAttackResult) for r in results)
    ta_skipped = sum(isinstance(r, textattack.attack_results.SkippedAttackResult) for r in results)

    start = time.perf_counter()
    ours = deepwordbug(predict_proba, texts, labels, budget=args.budget, seed=args.seed)
    ours_s = time.perf_counter() - start

    attacked = int(correct.sum())
    print("| what | TextAttack DeepWordBugGao2018 | dlaudit charswap |\n|---|---|---|")
    print(f"| texts (classified correctly) | {len(texts)} ({len(texts) - ta_skipped}) | {len(texts)} ({attacked}) |")
    print(
        f"| success rate, at most {args.budget} words | {ta_success / max(len(texts) - ta_skipped, 1):.3f} | {ours.success_rate:.3f} |"
    )
    print(
        f"| seconds per attacked text | {ta_s / max(len(texts) - ta_skipped, 1):.3f} | {ours_s / max(attacked, 1):.3f} |"
    )
    print(f"| total seconds | {ta_s:.1f} | {ours_s:.1f} |")
    print(f"| time ratio TextAttack / dlaudit | {ta_s / ours_s:.1f} | |")


if __name__ == "__main__":
    main()
