# zkleader — the two commands a newcomer needs are `make demo` and `make test`.
# Every target installs what is missing first (scripts/setup.sh, idempotent).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
# Node 24 from the npm registry lands in .tools/node when the system node is older.
export PATH := $(CURDIR)/.tools/node/bin:$(PATH)
export npm_config_update_notifier := false

JEST_RESULTS := test-results/jest.json

.PHONY: all setup build typecheck lint test golden clean demo demo-clusters bench

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

# Every benchmark on the project's Node: each `bench:*` script of package.json in turn (so a
# new one is run without touching this target), whatever the node first on the caller's PATH.
# A bench prints its Markdown section for bench/RESULTS.md on stdout: it goes to the screen and
# to test-results/bench/NAME.md (untracked); progress goes to stderr. No bench rewrites a
# tracked file: bench/RESULTS.md is edited by hand from those sections, and the run says so if
# a tracked file changed under it. A failed bench does not stop the others; the target then
# fails. Each bench's own settings pass through the environment (BENCH_SECONDS, NEMESIS_MINUTES, ...).
BENCH_RESULTS := test-results/bench
bench:
	@scripts/setup.sh bench
	@mkdir -p $(BENCH_RESULTS)
	@before="$$(scripts/tracked-state.sh)"; failed=""; written=""; \
	  for script in $$(node -p "Object.keys(require('./package.json').scripts).filter((s) => s.startsWith('bench:')).join(' ')"); do \
	    out="$(BENCH_RESULTS)/$${script#bench:}.md"; \
	    echo "[bench] npm run $$script > $$out" >&2; \
	    if npm run --silent "$$script" | tee "$$out"; then written="$$written $$out"; else failed="$$failed $$script"; fi; \
	  done; \
	  after="$$(scripts/tracked-state.sh)"; \
	  [[ "$$before" == "$$after" ]] || { echo "[bench] tracked files changed during the run (by a bench or by someone else):" >&2; diff <(echo "$$before") <(echo "$$after") >&2 || true; }; \
	  echo "[bench] results (Markdown sections for bench/RESULTS.md):$${written:- none}" >&2; \
	  [[ -z "$$failed" ]] || { echo "[bench] failed:$$failed" >&2; exit 1; }

clean:
	rm -rf dist dist-demo test-results .jest-cache
