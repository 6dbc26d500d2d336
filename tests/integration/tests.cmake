# One line per integration script (tests/integration/NAME.sh).
