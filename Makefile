# zkleader — the two commands a newcomer needs are `make demo` and `make test`.
# Every target installs what is missing first (scripts/setup.sh, idempotent).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
# Node 24 from the npm registry lands in .tools/node when the system node is older.
export PATH := $(CURDIR)/.tools/node/bin:$(PATH)
export npm_config_update_notifier := false

JEST_RESULTS := test-results/jest.json

.PHONY: all setup build typecheck lint test golden clean demo demo-clusters

all: build

setup:
	@scripts/setup.sh all

build:
	@scripts/setup.sh build
	@npm run --silent build

typecheck:
	@scripts/setup.sh build
	@npm run --silent typecheck

lint:
	@scripts/setup.sh build
	@npm run --silent lint

# Everything CI runs: set-up, build, type check, lint, then every jest test.
# The closing line "N passed, N failed[, N skipped]" counts the jest tests, plus
# one failure for the type check or the lint if either fails.
test:
	@scripts/setup.sh all
	@npm run --silent build
	@mkdir -p test-results && rm -f $(JEST_RESULTS) test-results/checks.txt
	@status=0; \
	  npm run --silent typecheck || { echo typecheck >> test-results/checks.txt; status=1; }; \
	  npm run --silent lint || { echo lint >> test-results/checks.txt; status=1; }; \
	  ZKLEADER_NO_GOLDEN_UPDATE=1 npm test --silent -- --json --outputFile=$(JEST_RESULTS) $(JEST_ARGS) || status=1; \
	  node scripts/test-summary.js $(JEST_RESULTS) test-results/checks.txt || status=1; \
	  exit $$status

# Rewrites the injector's golden files from the current output (review the diff before committing).
# `make test` and CI never rewrite them, whatever UPDATE_GOLDEN says.
golden:
	@scripts/setup.sh build
	@UPDATE_GOLDEN=1 ZKLEADER_NO_GOLDEN_UPDATE= CI= npm test --silent -- test/unit/inject/golden.test.ts

# ZooKeeper, the API emulator, the webhook and three pods on this machine (demo/; its output is in the README).
# demo/ runs test/support's harnesses, so it is built apart from dist/ into dist-demo/.
demo:
	@scripts/setup.sh all
	@npm run --silent build
	@node node_modules/typescript/bin/tsc -p tsconfig.demo.json
	@node dist-demo/demo/main.js

# Two clusters (two API emulators, each with its webhook: cluster east and west) sharing one
# ZooKeeper ensemble: one leader across both, a failover from one cluster to the other.
demo-clusters:
	@scripts/setup.sh all
	@npm run --silent build
	@node node_modules/typescript/bin/tsc -p tsconfig.demo.json
	@node dist-demo/demo/clustersMain.js

clean:
	rm -rf dist dist-demo test-results .jest-cache
