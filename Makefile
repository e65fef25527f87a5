# Two commands: `make run CNI=cilium` and `make test`. Both do their own set-up.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CNI ?= canal
# make profiles: each CNI profile of the step chain in turn, then those of its side steps (netlab_profile_chain and
# netlab_profile_side_steps in playbooks/vars/profiles.yml, read through ansible); PROFILES="canal/vxlan
# cilium/native-bpf" runs these instead.
PROFILES ?=
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
ANSIBLE_ARGS ?=
# Short benchmark for tests: the figures are checked for being real, not for being precise.
TEST_BENCH := -e bench_duration=1 -e bench_omit=0 -e bench_repeats=1

export CONTAINERS_CONF := $(CURDIR)/containers.conf
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help venv setup run sample profiles bench mesh scale report teardown image bench-image bench-image-push test lint unit integration lanes lane-a lane-b molecule clean

help:
	@echo "make run CNI=canal|cilium   build the local lab and run the benchmark"
	@echo "make profiles               every CNI profile in turn on the local lab, then the N-way report"
	@echo "make sample                 canal and cilium on the local lab into a scratch folder; refresh docs/sample/"
	@echo "make bench CNI=...          rerun only the benchmark (--tags bench)"
	@echo "make mesh CNI=... AGENTS=4  a lab of AGENTS agents and the node-pair mesh of their cross-node tests"
	@echo "make scale CNI=...          Service scale scenario on the running lab (--tags scale)"
	@echo "make report                 rebuild the newest run's reports"
	@echo "make teardown               remove the local lab (results stay)"
	@echo "make bench-image            build the Kubernetes transport's benchmark image, print its ID"
	@echo "make bench-image-push IMAGE=registry.example/netlab-bench"
	@echo "                            push it to your registry, print its digest"
	@echo "make venv                   only the virtualenv .venv (no root, no Debian packages): for your own cluster"
	@echo "make test                   the node image, then two lanes: the local lab; lint, unit, the rest, molecule"

# The virtualenv alone needs neither root nor Debian packages: enough for a cluster of your own.
venv: $(VENV)/.installed

# The local lab also needs podman, mmdebstrap, clang, ... (scripts/setup-host, as root).
setup: venv
	@scripts/setup-host

$(VENV)/.installed: requirements.txt requirements-test.txt pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-test.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

run: setup
	ansible-playbook site.yml -e cni=$(CNI) $(ANSIBLE_ARGS)
	@echo "report: $(CURDIR)/results/latest/report.md"

# The lab once, then per profile its datapath and the benchmark; the report compares the runs made
# here (results/latest after each), not older runs of other profiles in results/.
profiles: setup
	chain="$(PROFILES)"; [[ -n $$chain ]] || chain=$$(ansible localhost -m ansible.builtin.debug \
	  -e @playbooks/vars/profiles.yml \
	  -a "msg=chain={{ (netlab_profile_chain + (netlab_profile_side_steps | map('last') | list)) | unique | join(' ') }}" \
	  | sed -n 's/^ *"msg": "chain=\(.*\)"$$/\1/p'); \
	[[ -n $$chain ]] || { echo "profiles: cannot read netlab_profile_chain" >&2; exit 1; }; \
	echo "profiles: $$chain"; \
	ansible-playbook site.yml --tags provision $(ANSIBLE_ARGS) || exit 1; \
	runs=; for profile in $$chain; do \
	  ansible-playbook site.yml --tags cluster,bench -e cni=$${profile%/*} -e cni_profile=$${profile#*/} \
	    $(ANSIBLE_ARGS) || exit 1; \
	  runs=$$runs$${runs:+,}$$(basename "$$(readlink -f results/latest)"); \
	done; \
	ansible-playbook site.yml --tags report $$([[ $$runs == *,* ]] && echo "-e compare=$$runs") $(ANSIBLE_ARGS)
	@echo "report: $(CURDIR)/results/comparisons/ (newest), history: $(CURDIR)/results/history/history.md"

# The committed sample (docs/sample/): one canal and one cilium run of the local lab with its default
# settings, in a scratch results folder; their comparison is copied and the README's table rewritten.
SAMPLE_RESULTS ?= $(CURDIR)/.cache/sample-results
sample: setup
	rm -rf $(SAMPLE_RESULTS)
	for cni in canal cilium; do \
	  ansible-playbook site.yml -e cni=$$cni -e netlab_results_dir=$(SAMPLE_RESULTS) $(ANSIBLE_ARGS) || exit 1; \
	done
	$(PY) scripts/sample.py $(SAMPLE_RESULTS) docs/sample README.md

bench: setup
	ansible-playbook site.yml --tags bench -e cni=$(CNI) $(ANSIBLE_ARGS)
	@echo "report: $(CURDIR)/results/latest/report.md"

# Every ordered pair of AGENTS agents (the tests grow with the square of the nodes: the plan says how long).
AGENTS ?= 4
mesh: setup
	ansible-playbook site.yml -e cni=$(CNI) -e netlab_agents=$(AGENTS) -e bench_mesh=true $(ANSIBLE_ARGS)
	@echo "report: $(CURDIR)/results/latest/report.md"

scale: setup
	ansible-playbook site.yml --tags scale -e cni=$(CNI) $(ANSIBLE_ARGS)

report: setup
	ansible-playbook site.yml --tags report $(ANSIBLE_ARGS)

teardown: setup
	ansible-playbook site.yml --tags teardown $(ANSIBLE_ARGS)

image: setup
	ansible-playbook playbooks/image.yml

# The Kubernetes transport's image (iperf3, netperf, non-root), built here from Debian packages.
bench-image: setup
	ansible-playbook playbooks/bench_image.yml $(ANSIBLE_ARGS)

# IMAGE: your registry's repository, optionally with a tag; prints the digest to pin.
bench-image-push: setup
	@if [[ -z "$(IMAGE)" ]]; then \
	  echo "bench-image-push: set IMAGE to your registry's repository, e.g." \
	    "IMAGE=registry.example/netlab-bench make bench-image-push" >&2; exit 2; fi
	ansible-playbook playbooks/bench_image.yml -e bench_image_push="$(IMAGE)" $(ANSIBLE_ARGS)

# The node image both lanes boot, then two lanes side by side (scripts/test_lanes.py): lane A the local
# lab, which holds the only timing-sensitive asserts and takes longest; lane B lint, unit and everything
# else, which fit in lane A's time. Each lane's log is printed when both are done; make test fails if
# either fails.
test: image
	$(MAKE) --no-print-directory lanes

lanes: setup
	$(PY) scripts/test_lanes.py .cache/test-lanes "A=$(MAKE) --no-print-directory lane-a" \
	  "B=$(MAKE) --no-print-directory lane-b"

lint: setup
	ruff check plugins tests molecule netlab_twin scripts roles/lab_cni/files/netlab-counters roles/lab_cni/files/netlab-svcmap
	shellcheck -x scripts/setup-host .ci/run roles/lab_cni/files/netlab-datapath roles/lab_cni/files/datapath/*.sh \
	  netlab_twin/kube/lab_node.sh
	yamllint --strict .
	ansible-lint --profile production
	# site.yml with each inventory, as its users run it.
	for inventory in local proxmox existing; do \
	  ansible-playbook site.yml -i inventories/$$inventory --syntax-check >/dev/null || exit 1; \
	done

unit: setup
	pytest tests/unit

# pytest prints its slowest tests: where an integration run's time goes.
DURATIONS := --durations=20

# Both lanes' tests one after the other.
integration: setup
	pytest $(DURATIONS) tests/integration

# Lane A: the local lab (podman network netlab, 198.18.0.0/24).
lane-a: setup
	pytest $(DURATIONS) tests/integration/local_lab

# Lane B: lint and unit (done before lane A's first timing assert), the Proxmox twin (198.18.8.0/24 and
# 198.18.9.0/24), the benchmark image, molecule (198.18.2.0/24 and 198.18.3.0/24).
lane-b: setup
	$(MAKE) --no-print-directory lint unit
	pytest $(DURATIONS) tests/integration --ignore=tests/integration/local_lab
	$(MAKE) --no-print-directory molecule

# lab_cni has no scenario of its own: the local lab's integration tests check what it leaves on the nodes,
# after each CNI's converge and after a node restart (tests/integration/local_lab/datapath_checks.py).
molecule: image
	scripts/molecule-test node_prep
	# rke2: a Canal cluster with its reference and a Cilium cluster with RKE2's default profile, in one converge.
	scripts/molecule-test rke2

clean:
	rm -rf $(VENV)
