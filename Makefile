# pyqmail: two commands for a fresh machine with Python 3.11.
#   make run    the main job: svscan supervising the example services in .scratch/
#   make test   the whole test suite
# a system-wide interpreter when there is one: the qmail accounts and the test
# accounts must be able to run our programs, and a pyenv under /root is not theirs
PYTHON ?= $(shell test -x /usr/bin/python3.11 && echo /usr/bin/python3.11 || echo python3.11)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test venv reference bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]' --config-settings editable_mode=compat
	# byte-compile now: with PYTHONDONTWRITEBYTECODE set, every start would compile again
	$(BIN)/python -m compileall -q pyqmail svtools tcpserver mta service
	touch $@

venv: $(STAMP)

reference: venv
	$(BIN)/python -m tests.reference

run: venv
	$(BIN)/python examples/quickstart.py

test: venv reference
	$(BIN)/python -m pytest -n 4 -q

bench: venv reference
	$(BIN)/python bench/supervise.py

clean:
	rm -rf $(VENV) .ref .scratch
