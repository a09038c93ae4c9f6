# The two commands a newcomer needs:
#   make demo   bring up what the demo needs and show it working
#   make test   install everything (system packages included) and run the
#               unit and functional tests
# Both install into a virtualenv at .venv with the pinned stack in
# constraints.txt. System packages come from bindep.txt (needs root, as do
# the functional tests: they create loop devices and start services).

PYTHON ?= python3
VENV ?= .venv
PIP := $(VENV)/bin/pip
PYTEST_ARGS ?=

.PHONY: demo test unit functional bench soak fuzz ramdisk venv system-deps pep8 genconfig releasenotes docs docs-venv clean

# The product (both extras) and the sandbox, a distribution of its own that
# is never shipped (ipa_cinder_sandbox/pyproject.toml), both editable.
$(VENV)/.installed: requirements.txt test-requirements.txt constraints.txt setup.cfg ipa_cinder_sandbox/pyproject.toml
	@echo "==> creating $(VENV) with the pinned stack (about 1-2 minutes the first time)"
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check -U -c constraints.txt pip setuptools wheel
	$(PIP) install -q -c constraints.txt -r requirements.txt -r test-requirements.txt
	$(PIP) install -q -c constraints.txt --no-deps -e .
	$(PIP) install -q -c constraints.txt --no-deps --no-build-isolation -e ./ipa_cinder_sandbox
	@touch $@

venv: $(VENV)/.installed

system-deps: venv
	@missing="$$($(VENV)/bin/bindep -b sandbox || true)"; \
	if [ -n "$$missing" ]; then \
		echo "==> installing system packages: $$missing"; \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else \
		echo "==> system packages already present"; \
	fi

unit: venv
	$(VENV)/bin/pytest -q tests/unit $(PYTEST_ARGS)

functional: system-deps
	$(VENV)/bin/pytest -v -rs tests/functional $(PYTEST_ARGS)

# The documentation is part of the test: a build that warns fails the run
# before the tests start (it takes under a minute).
# The VM-node tests (ramdisk build, qemu guests) run as a second pytest
# session beside the others: see tools/run-tests.
test: system-deps docs
	VENV=$(VENV) tools/run-tests $(PYTEST_ARGS)

# About 10 minutes: its main act deploys a VM node over iSCSI and boots it
# from its volume (plus 5-7 minutes when the IPA ramdisk must be built).
# make demo DEMO_ARGS=--skip-vm shows the one-minute version.
demo: system-deps
	$(VENV)/bin/python -W ignore -m ipa_cinder_sandbox.demo $(DEMO_ARGS)

# Figures, not a gate, in one run on a private sandbox (about 15 minutes):
# BFV vs direct deploys, the plugin's cost, attach 1 vs 4 volumes, Cinder
# requests of cinder-agent and of Ironic's own cinder interface, image
# write throughput. A table on stdout, everything in bench-attach.json.
# Then the scale section (tests/benchmarks/bench_scale.py, its own sandbox
# with two conductors): 1, 5 and 20 concurrent boot-from-volume deploys,
# table and bench-scale.json.
BENCH_ARGS ?=
BENCH_SCALE_ARGS ?= --sizes 1,5,20
bench: system-deps
	$(VENV)/bin/python -W ignore -m tests.benchmarks.bench_attach --output bench-attach.json $(BENCH_ARGS)
	$(VENV)/bin/python -W ignore -m tests.benchmarks.bench_scale --output bench-scale.json $(BENCH_SCALE_ARGS)

# Leak hunting, not a gate: 200 CLI attach/write/detach cycles and 50
# deploy/undeploy cycles on a private sandbox, then the leak table.
SOAK_ARGS ?= --cycles-cli 200 --cycles-deploy 50
soak: system-deps
	$(VENV)/bin/python -W ignore -m tests.soak $(SOAK_ARGS)

# The IPA ramdisk with the agent half (Debian 12, IPA 13, cloud kernel),
# built with diskimage-builder and ironic-python-agent-builder into
# .cache/ramdisk/<key>/ (needs root; reused while its inputs are
# unchanged; 5-10 minutes when it builds).
ramdisk:
	$(PYTHON) tools/ramdisk/build-ramdisk

# The full fuzzing profile (10,000+ cases; make test runs the quick one).
fuzz: venv
	$(VENV)/bin/pytest -q -p no:warnings tests/unit/fuzz --hypothesis-profile=full --hypothesis-show-statistics

pep8: venv
	$(VENV)/bin/flake8 ipa_cinder ipa_cinder_sandbox tests

# Every option group the ipa-cinder command reads, as in the documentation.
genconfig: venv
	mkdir -p etc/ipa-cinder
	$(VENV)/bin/oslo-config-generator --config-file tools/config/ipa-cinder-config-generator.conf

# Sphinx and its theme on top of the venv: the build imports ipa_cinder
# (the CLI and configuration references come from the code).
$(VENV)/.docs-installed: $(VENV)/.installed doc/requirements.txt constraints.txt
	$(PIP) install -q -c constraints.txt -r doc/requirements.txt
	@touch $@

docs-venv: $(VENV)/.docs-installed

# Warnings are errors; -E re-reads every page, so a warning is never hidden
# by an earlier build. HTML in doc/build/html.
docs: docs-venv
	$(VENV)/bin/sphinx-build -W -E -b html -d doc/build/doctrees doc/source doc/build/html

# reno's checks, then the release notes as HTML in releasenotes/build/html.
releasenotes: docs-venv
	$(VENV)/bin/reno lint
	$(VENV)/bin/sphinx-build -W -E -a -b html -d releasenotes/build/doctrees releasenotes/source releasenotes/build/html

clean:
	rm -rf $(VENV) .pytest_cache .sandbox .sandbox-demo*
