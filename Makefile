# gridvirt.kvm: every entry point. `make demo` sets up everything on a fresh machine and
# deploys the example VMs on the local lab; `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

REPO      := $(CURDIR)
VENV      := $(REPO)/.venv
BIN       := $(VENV)/bin
# ansible-core >= 2.20 needs Python >= 3.12 on the controller.
PYTHON    ?= $(firstword $(wildcard /root/.pyenv/versions/3.12*/bin/python3) $(shell command -v python3.12 python3.13 2>/dev/null) python3)
IMAGES    := $(REPO)/.lab/images
GUEST     := $(IMAGES)/guest.qcow2
LINK      := $(REPO)/.build/ansible_collections/gridvirt/kvm
# Outside the checkout: inside it, git (which ansible-test asks) ignores .build/.
SANITY_DIR := $(or $(TMPDIR),/tmp)/gridvirt-kvm-sanity/ansible_collections/gridvirt/kvm
# Every Python ansible-test may target that is installed here (pyenv).
SANITY_PYTHONS ?= $(shell for v in 3.9 3.10 3.11 3.12 3.13; do ls -d /root/.pyenv/versions/$$v.* >/dev/null 2>&1 && echo $$v; done)
# One ansible-test run with all of them on PATH: the tests that depend on the Python version
# (compile, import) run on each, the others once.
EMPTY :=
SANITY_PATHS := $(subst $(EMPTY) :,:,$(foreach v,$(SANITY_PYTHONS),:$(lastword $(sort $(wildcard /root/.pyenv/versions/$(v).*)))/bin))
# make lab-up NODES=3: the three-node lab (lab/nodes.sh) instead of the one-node one.
NODES     ?= 1
NODES_INVENTORY := inventories/lab3/hosts.yml
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(REPO)/ansible.cfg
# The lab3 inventory's connection (lab_node) is the lab's, not the collection's: wired here only.
export ANSIBLE_CONNECTION_PLUGINS := $(REPO)/lab/plugins/connection

.PHONY: help packages venv links image lab-up lab-down lab-status demo test sanity lint unit \
        integration hypervisor-tests multinode-tests molecule bench clean \
        lab-lane static-lane molecule-sharing hypervisor-layers

help:
	@echo "make demo        fresh machine -> packages, venv, lab up, example VMs deployed, status"
	@echo "make test        every test: sanity, lint, molecule, unit + integration on the lab"
	@echo "make lab-up      start the lab (libvirtd + virtlogd, Ceph, Corosync + Pacemaker), build the test guest image"
	@echo "make lab-up NODES=3   the three-node lab instead: fencing, failover, live migration"
	@echo "make lab-down    stop every lab daemon by PID, power off and remove every lab node"
	@echo "make sanity      ansible-test sanity on every installed Python"
	@echo "make lint        ansible-lint (production profile), antsibull-docs and antsibull-changelog lint; no lab"
	@echo "make unit | integration | hypervisor-tests | multinode-tests | molecule | bench"

packages:
	@lab/install-packages.sh

$(BIN)/ansible: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

venv: packages $(BIN)/ansible

links:
	@mkdir -p $(dir $(LINK))
	@[ -L $(LINK) ] || ln -s ../../.. $(LINK)

$(GUEST): lab/guest/init lab/guest/build-image.sh
	lab/guest/build-image.sh $(GUEST)

image: packages $(GUEST)

# The lab's hypervisor is prepared by the collection's own role, as a real one would be.
lab-up: packages venv image links
ifeq ($(NODES),1)
	lab/lab.sh up
	ansible-playbook playbooks/prepare_hypervisors.yaml
else ifeq ($(NODES),3)
	lab/lab.sh nodes-up 3
	ansible-playbook -i $(NODES_INVENTORY) playbooks/prepare_hypervisors.yaml
else
	@echo "NODES is 1 or 3 (inventories/lab/ and inventories/lab3/ describe those)"; exit 2
endif

lab-down:
	lab/lab.sh down dhcp
	lab/lab.sh down
	lab/lab.sh nodes-down

lab-status:
	lab/lab.sh status

# lab-up has prepared the hypervisor with playbooks/prepare_hypervisors.yaml.
demo: venv lab-up
	ansible-playbook playbooks/deploy_vms_cluster.yaml
	ansible-playbook playbooks/deploy_vms_standalone.yaml
	ansible-playbook playbooks/vm_status.yaml
	ansible-inventory -i inventories/fleet/lab.gridvirt.yml --graph

# ansible-test bootstraps pip in its venvs with a script from a host outside the registries;
# it reads it from its cache first, where we put an equivalent that uses ensurepip + PyPI.
sanity: venv
	@[ -n "$(strip $(SANITY_PYTHONS))" ] || { echo "make sanity: no Python 3.9-3.13 found under /root/.pyenv/versions: nothing would be checked"; exit 1; }
	mkdir -p ~/.ansible/test/cache
	pip_version=$$($(BIN)/python -c "import ansible_test._internal.python_requirements as r; print(r.get_venv_packages(type('P', (), {'version': ''})())['pip'])") && \
	    cp tests/sanity/get_pip_offline.py ~/.ansible/test/cache/get_pip_$${pip_version//./_}.py
	rm -rf $(SANITY_DIR) && mkdir -p $(SANITY_DIR)
	git ls-files -z --cached --others --exclude-standard | rsync -a --from0 --files-from=- ./ $(SANITY_DIR)/
	cd $(SANITY_DIR) && PATH=$(BIN)$(SANITY_PATHS):$$PATH ansible-test sanity --venv --color no

# Static checks of the collection's content, no lab: ansible-lint with the production profile
# (.ansible-lint: offline, no rule skipped), the plugins' and roles' documentation as the
# Ansible docsite builds it, the changelog fragments. (The execution environment's definition
# is checked by tests/unit/test_execution_environment.py.)
lint: venv links
	ansible-lint
	antsibull-docs lint-collection-docs --plugin-docs .
	antsibull-changelog lint

unit: venv links
	python -m pytest -n 2 tests/unit

integration: venv lab-up
	python -m pytest tests/integration

# Layers that need the hypervisor's own Python (Debian's rados/rbd bindings are built for it).
hypervisor-tests: lab-up links
	$(HYPERVISOR_TESTS)

# Failover, fencing, partition, live migration and maintenance on the three-node lab. The
# one-node lab is stopped first: both at once would not fit this machine's two cores.
multinode-tests: venv image links
	lab/lab.sh down
	$(MAKE) lab-up NODES=3
	python -m pytest --durations=15 tests/multinode

molecule: venv lab-up
	cd extensions && molecule test --all

HYPERVISOR_TESTS := /usr/bin/python3 -m pytest tests/hypervisor
# molecule's hypervisor scenario spoils what the role installs (agent, Ceph secret, hooks)
# before the role restores it: nothing else may use the lab meanwhile. The other scenarios
# only touch their own VMs.
MOLECULE_SCENARIOS := $(notdir $(wildcard extensions/molecule/*))
MOLECULE_SHARING   := $(filter-out hypervisor,$(MOLECULE_SCENARIOS))

# `make test`: two lanes at once, then the three-node lab.
# - The lab lane, on the one-node lab started once: molecule's scenarios with the hypervisor
#   layer tests beside them, molecule's hypervisor scenario alone, the integration tests.
# - The static lane, needing no lab: sanity, lint, unit, under nice 19. The lab lane keeps
#   about one of the two cores busy (50 % over the lifecycle tests: it mostly waits for
#   Pacemaker, Ceph and the guests); the static lane takes what it leaves idle and yields
#   the CPU whenever the lab lane wants it. Its output is printed once the lanes are done.
# Each stage prints how long it took (CI has a hard limit; the figures show which stage grew).
STAGE = lab/stage.sh
export STAGE_LOG := $(REPO)/.build/stage-durations.log
STATIC_LANE_LOG := $(REPO)/.build/static-lane.log
test: venv links
	@mkdir -p $(dir $(STAGE_LOG)) && rm -f $(STAGE_LOG) $(STATIC_LANE_LOG)
	@$(MAKE) --no-print-directory -j2 lab-lane static-lane; rc=$$?; \
	    echo "=== static lane output"; cat $(STATIC_LANE_LOG); exit $$rc
	@$(STAGE) multinode-tests $(MAKE) --no-print-directory multinode-tests
	@lab/stage.sh --summary

lab-lane: venv links
	@$(STAGE) lab-up $(MAKE) --no-print-directory lab-up
	@$(STAGE) molecule+hypervisor $(MAKE) --no-print-directory -j2 --output-sync=recurse \
	    timed-molecule-sharing timed-hypervisor-layers
	@$(STAGE) molecule-hypervisor bash -c 'cd extensions && molecule test -s hypervisor'
	@$(STAGE) integration python -m pytest --durations=25 tests/integration

static-lane: venv links
	@nice -n 19 $(MAKE) --no-print-directory -j1 -k timed-sanity timed-lint timed-unit \
	    >$(STATIC_LANE_LOG) 2>&1

# The lab lane's parts, on the lab it started (no lab-up prerequisite: it runs once).
molecule-sharing:
	cd extensions && for scenario in $(MOLECULE_SHARING); do molecule test -s $$scenario || exit 1; done

hypervisor-layers:
	$(HYPERVISOR_TESTS)

timed-%:
	@$(STAGE) $* $(MAKE) --no-print-directory $*

bench: venv lab-up
	python benchmarks/run.py

clean: lab-down
	rm -rf .build .lab tests/output benchmarks/results
