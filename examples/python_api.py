"""Audit a model from Python: train (or load) it, audit, gate, save. Run: python examples/python_api.py"""

import sys

import dlaudit

model = dlaudit.train("cnn", "digits", seed=0)  # or: dlaudit.load_model("cnn.pt")
report = dlaudit.audit(model, checks=["performance", "robustness"], fast=True, seed=0)

print(f"accuracy {report.metrics['performance.accuracy']:.3f}")
for section in report.sections:
    print(f"{section.title:<12} {section.status:<8} {section.summary or section.reason}")
for finding in report.findings:
    print(f"  {finding.severity:<8} {finding.message}")

for gate in dlaudit.check_report(report, ["performance.accuracy < 0.9"]):
    print("PASS" if gate.passed else "FAIL", gate.gate, f"(value {gate.value})")
dlaudit.save_report(report, "reports/python-api.html")  # .json, .md and .xml work the same way
dlaudit.save_report(report, "reports/python-api.json")
sys.exit(0 if report.passed else 1)
