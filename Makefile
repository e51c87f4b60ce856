# tradebot — the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: help demo setup binaries cluster-up cluster-down cluster-status test test-unit test-integration lint crds verify-crds clean clean-cache bench chaos

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

demo: setup ## the whole system locally: cluster, Postgres, Redis, OpenBao, simulator, operator, bots trading (Ctrl-C stops all)
	@$(PY) -m devenv demo $(DEMO_ARGS)

setup: ## install apt packages, the venv and the control-plane binaries (idempotent)
	@hack/setup.sh

binaries: ## build or reuse the control-plane binaries in ~/.cache/tradebot/bin
	@hack/build-binaries.sh

cluster-up: setup ## start a local cluster (kwokctl, binary runtime); prints the kubeconfig path
	@hack/cluster.sh up

cluster-down: ## stop the local cluster and every process it started
	@hack/cluster.sh down

cluster-status: ## show the local cluster's components and nodes
	@hack/cluster.sh status

lint: setup ## ruff, mypy, and every generated artifact current (make verify)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	@$(MAKE) --no-print-directory verify

test: setup lint ## everything CI runs: lint, unit, integration (starts its own cluster and servers)
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: ## fast tests without any server
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: setup ## tests against the real control plane, PostgreSQL, Redis, Vault
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

bench: setup ## every benchmark (tens of minutes; BENCH_ONLY="risk hotpath" for a subset); figures go to tests/bench/RESULTS.md
	@hack/bench.sh

chaos: setup ## the long chaos suite (100 leader kills, fault storms, dependency outages); CI runs the short variant
	TRADEBOT_CHAOS=long $(PY) -m pytest tests/chaos $(PYTEST_ARGS)

clean: cluster-down ## remove local state (.state/)
	rm -rf .state

clean-cache: ## remove cached binaries (next build is cold)
	rm -rf $${TRADEBOT_CACHE:-$$HOME/.cache/tradebot}

# ---- packaging: image, Helm chart, kustomize base, Argo CD (generated artifacts are verified
# by tests/unit/test_crd_drift.py and tests/integration/test_chart_render.py) ----------------
HELM = $(shell bash -c 'source hack/lib.sh && bin_path helm')
IMAGE ?= tradebot:0.1.0
VERSION ?= 0.1.0

.PHONY: image crds chart-crds verify-crds manifests verify-manifests verify helm-lint hadolint

image: ## build the container image with Docker (IMAGE=tradebot:0.1.0); both entry points
	docker build --tag $(IMAGE) --build-arg VERSION=$(VERSION) \
	  --build-arg REVISION=$$(git rev-parse HEAD) --build-arg CREATED=$$(date -u +%Y-%m-%dT%H:%M:%SZ) .

crds: ## regenerate crds/ and the chart's CRD templates from the pydantic models
	$(PY) -m tradebot_operator.crdgen --out crds --chart charts/tradebot/templates/crds

chart-crds: crds ## regenerate the chart's CRD templates (same as make crds)

verify-crds: ## fail with a diff when crds/ or the chart's CRDs drift from the models
	$(PY) -m tradebot_operator.crdgen --out crds --chart charts/tradebot/templates/crds --check

manifests: ## regenerate manifests/base/tradebot.yaml (from the chart) and argocd-cm-health.yaml
	HELM=$(HELM) $(PY) manifests/generate.py

verify-manifests: ## fail with a diff when manifests/ drifts from the chart or the Lua checks
	HELM=$(HELM) $(PY) manifests/generate.py --check

verify: verify-crds verify-manifests helm-lint hadolint ## every generated artifact is current; chart and Dockerfile lint

helm-lint: ## helm lint the chart (strict)
	$(HELM) lint --strict charts/tradebot

hadolint: ## lint the Dockerfile (hadolint from the dev dependencies)
	$(VENV)/bin/hadolint Dockerfile
