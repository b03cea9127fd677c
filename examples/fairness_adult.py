"""A tabular fairness audit on UCI Adult: an MLP with sex and race as sensitive features.

Run from the project root (the UCI files are in ../shared/data/adult in this project's CI):

    python examples/fairness_adult.py --data-dir ../shared/data/adult

It trains an MLP on the training file, audits performance and fairness on the
held-out file, prints the group metrics, and fails (exit 1) when the
demographic-parity difference between the sexes is above the limit.
"""

import argparse
import sys

import dlaudit

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--data-dir", default="../shared/data/adult", help="folder with adult.data and adult.test")
parser.add_argument("--epochs", type=int, default=5, help="training epochs (a few are enough for a first look)")
parser.add_argument("--max-dp", type=float, default=0.2, help="largest demographic-parity difference allowed")
parser.add_argument("-o", "--output", default="reports/fairness-adult.html")
args = parser.parse_args()

model = dlaudit.train("mlp", "adult", data_dir=args.data_dir, sensitive=["sex", "race"], epochs=args.epochs, seed=0)
report = dlaudit.audit(model, checks=["performance", "fairness"], seed=0)  # the held-out file, as recorded on the card

print(f"accuracy {report.metrics['performance.accuracy']:.3f}")
for name, value in report.metrics.items():
    if name.startswith("fairness."):
        print(f"{name:<55} {value}")
fairness = report.section("fairness")
if fairness is not None and fairness.status != "ok":
    print(f"fairness section {fairness.status}: {fairness.reason}")

try:
    dlaudit.check_report(report, [f"fairness.sex.demographic_parity_difference <= {args.max_dp}"])
except dlaudit.GateError as err:  # the fairness metrics were not computed
    print(f"gate not checked: {err}")
dlaudit.save_report(report, args.output)
dlaudit.save_report(report, args.output.rsplit(".", 1)[0] + ".json")
print(f"report -> {args.output}")
sys.exit(0 if report.passed else 1)
