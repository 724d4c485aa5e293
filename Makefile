# Tessera — the commands a new user needs. `make local` and `make test` work from a fresh clone.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.13 from PATH, else pyenv's (its shim only answers with PYENV_VERSION set).
PYTHON313 := $(shell if python3.13 -c '' >/dev/null 2>&1; then command -v python3.13; \
	elif command -v pyenv >/dev/null 2>&1 && [ -x "$$(pyenv prefix 3.13 2>/dev/null | head -1)/bin/python3.13" ]; then \
	echo "$$(pyenv prefix 3.13 | head -1)/bin/python3.13"; fi)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
API_PORT ?= 8000
EMULATOR_PORT ?= 5000
ORDERS_PORT ?= 8001
STAGE ?= dev
# Offline template checks live in their own venv (checkov's pins conflict with the app's).
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed
# chalice package needs a region (no credentials); deployments use the caller's region.
export AWS_DEFAULT_REGION ?= us-east-1
# Deploy settings (README "Deploy to AWS"): the issuer's domain and its ACM certificate (required
# for prod), an optional Route 53 zone, audience, WAF web ACL, alarm topic or e-mail.
DOMAIN ?=
CERTIFICATE_ARN ?=
HOSTED_ZONE_ID ?=
AUDIENCE ?=
WEB_ACL_ARN ?=
ALARM_TOPIC_ARN ?=
ALARM_EMAIL ?=
STACK_NAME ?= tessera-$(STAGE)
DEPLOY_SETTINGS = --stage $(STAGE) --domain "$(DOMAIN)" --certificate-arn "$(CERTIFICATE_ARN)" \
	--hosted-zone-id "$(HOSTED_ZONE_ID)" --audience "$(AUDIENCE)" --web-acl-arn "$(WEB_ACL_ARN)" \
	--alarm-topic-arn "$(ALARM_TOPIC_ARN)" --alarm-email "$(ALARM_EMAIL)"

.PHONY: help venv local test browser lint bench loadtest package check-infra deploy deploy-stack clean

help:
	@echo "make local   - start the emulator, the API on http://127.0.0.1:$(API_PORT) and examples/orders on :$(ORDERS_PORT)"
	@echo "make test    - run the whole test suite"
	@echo "make browser - chromium + chromium-driver for the browser test (apt-get as root, ~120 MB)"
	@echo "make lint    - ruff, mypy, bandit and our own rules (scripts/check_rules.py)"
	@echo "make bench   - benchmarks (writes BENCHMARKS.md)"
	@echo "make loadtest - mixed workload on the local stack, <= 60 s (LOADTEST_SECONDS=30)"
	@echo "make package STAGE=dev      - one CloudFormation artifact in build/STAGE (offline)"
	@echo "make check-infra            - package dev and prod, run cfn-lint and checkov on them"
	@echo "make deploy STAGE=dev       - infra stack + chalice deploy (AWS credentials needed)"
	@echo "make deploy-stack STAGE=prod BUCKET=my-artifacts DOMAIN=auth.acme.io CERTIFICATE_ARN=arn:..."
	@echo "                            - the packaged single stack (README: Deploy to AWS)"

$(STAMP): requirements.txt requirements-dev.txt
	@if [ -z "$(PYTHON313)" ]; then echo "Python 3.13 not found: install it (python3.13 on PATH or pyenv install 3.13)" >&2; exit 1; fi
	@if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then \
		rm -rf $(VENV); $(PYTHON313) -m venv $(VENV); fi
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

venv: $(STAMP)

local: $(STAMP)
	API_PORT=$(API_PORT) EMULATOR_PORT=$(EMULATOR_PORT) ORDERS_PORT=$(ORDERS_PORT) $(PY) -m infra.local_stack

# The browser test (tests/e2e/test_browser_e2e.py) drives Debian's chromium through its own
# chromedriver; Selenium downloads nothing. Installed here when missing and we are root (about
# 120 MB from the distribution's mirror), unless INSTALL_BROWSER=no; otherwise the test is
# skipped and says how to install them.
BROWSER_PACKAGES := chromium chromium-driver
INSTALL_BROWSER ?= yes
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$(INSTALL_BROWSER)" = no ]; then \
		echo "INSTALL_BROWSER=no: the browser test will be skipped" >&2; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing $(BROWSER_PACKAGES) (about 120 MB) for the browser test;" \
			"make test INSTALL_BROWSER=no skips it"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q $(BROWSER_PACKAGES) \
			|| { apt-get update -q && apt-get install -y -q $(BROWSER_PACKAGES); } \
			|| echo "could not install $(BROWSER_PACKAGES): the browser test will be skipped" >&2; \
	else \
		echo "chromium/chromedriver missing: the browser test will be skipped." >&2; \
		echo "Install them with: sudo apt-get install -y $(BROWSER_PACKAGES)" >&2; \
	fi

# On every (logical) core, pytest-xdist; the end-to-end tests share one worker, so one local stack.
test: $(STAMP) browser
	$(PY) -m pytest -n logical --dist loadgroup

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m mypy examples/orders/app.py  # its own run: another project's app.py
	$(PY) -m bandit -q -r app.py chalicelib -s B101,B105  # asserts narrow types; S105 is ruff's
	$(PY) scripts/check_rules.py
	$(VENV)/bin/lint-imports  # the layers point one way (pyproject.toml [tool.importlinter])

loadtest: $(STAMP)
	$(PY) -m bench.loadtest

bench: $(STAMP)
	$(PY) -m bench

$(TOOLS_STAMP): requirements-tools.txt
	@if [ -z "$(PYTHON313)" ]; then echo "Python 3.13 not found" >&2; exit 1; fi
	rm -rf $(TOOLS); $(PYTHON313) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-tools.txt
	@touch $(TOOLS_STAMP)

package: $(STAMP)
	$(PY) -m infra.package --stage $(STAGE) --out build/$(STAGE)

check-infra: $(STAMP) $(TOOLS_STAMP)
	@echo "cfn-lint infra/template.yaml"; $(TOOLS)/bin/cfn-lint infra/template.yaml
	@echo "checkov infra/template.yaml"; \
		$(TOOLS)/bin/checkov --config-file infra/checkov.yaml -f infra/template.yaml
	@for stage in dev prod; do \
		$(PY) -m infra.package --stage $$stage --out build/$$stage || exit 1; \
		echo "cfn-lint build/$$stage/sam.json"; $(TOOLS)/bin/cfn-lint build/$$stage/sam.json || exit 1; \
		echo "checkov build/$$stage/sam.json"; \
		$(TOOLS)/bin/checkov --config-file infra/checkov.yaml -f build/$$stage/sam.json || exit 1; \
	done

# Two-stack path: stateful infra stack, chalice deploy (on a copy of the project whose policy
# files name this account, region and partition), then wire the two (rotation, domain, WAF,
# alarms, 401/403, the plain authorizer handler, throttles). Refuses a placeholder prod issuer.
deploy: $(STAMP)
	@$(PY) -m infra.preflight $(DEPLOY_SETTINGS) check-chalice
	params="$$($(PY) -m infra.wire $(DEPLOY_SETTINGS) parameters --before-deploy)" && \
	aws cloudformation deploy --stack-name tessera-$(STAGE)-infra --template-file infra/template.yaml \
		--parameter-overrides $$params --no-fail-on-empty-changeset
	project="$$($(PY) -m infra.wire --stage $(STAGE) chalice-project)" && \
	$(VENV)/bin/chalice --project-dir "$$project" deploy --stage $(STAGE)
	params="$$($(PY) -m infra.wire $(DEPLOY_SETTINGS) parameters)" && \
	aws cloudformation deploy --stack-name tessera-$(STAGE)-infra --template-file infra/template.yaml \
		--parameter-overrides $$params --no-fail-on-empty-changeset
	$(PY) -m infra.wire --stage $(STAGE) gateway-responses
	$(PY) -m infra.wire --stage $(STAGE) authorizer-handler
	$(PY) -m infra.wire --stage $(STAGE) authorizer-callers
	$(PY) -m infra.wire --stage $(STAGE) throttles

# Single-stack path: the artifact of `make package`, uploaded to BUCKET and deployed as STACK_NAME
# (default tessera-STAGE). Refuses a placeholder prod issuer before packaging anything.
deploy-stack: $(STAMP)
	@if [ -z "$(BUCKET)" ]; then echo "BUCKET=<S3 bucket for the deployment package> is required" >&2; exit 1; fi
	@$(PY) -m infra.preflight $(DEPLOY_SETTINGS) check-stack
	$(PY) -m infra.package --stage $(STAGE) --out build/$(STAGE)
	aws cloudformation package --template-file build/$(STAGE)/sam.json --s3-bucket $(BUCKET) \
		--output-template-file build/$(STAGE)/packaged.yaml
	params="$$($(PY) -m infra.preflight $(DEPLOY_SETTINGS) stack-parameters)" && \
	aws cloudformation deploy --stack-name $(STACK_NAME) --template-file build/$(STAGE)/packaged.yaml \
		--capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND --no-fail-on-empty-changeset \
		--parameter-overrides $$params
	aws cloudformation describe-stacks --stack-name $(STACK_NAME) --query 'Stacks[0].Outputs' --output table

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache build
