"""``python -m dlaudit``."""

from dlaudit.cli import main

main()
