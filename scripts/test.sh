#!/usr/bin/env bash
# Run the whole ocistack test suite: `bash scripts/test.sh` (or `npm test`).
#
#  1. checks Node >= 20 and the Debian tools the integration tests drive
#     (installs missing ones with apt-get when run as root);
#  2. installs node dependencies when node_modules is missing or stale;
#  3. compiles with `tsc -p .` (type errors count as one failure);
#  4. runs every compiled uvu test file dist/test/**/*.test.js in its own node
#     process and process group, so a file that crashes at import time is
#     reported as a failure and cannot hide the others, and nothing it started
#     (registries, nginx, containers) outlives it;
#  5. prints as its LAST line `N passed, N failed` (`, N skipped` when uvu
#     reported skips), summed over all files, and exits non-zero on any
#     failure or when no test ran.
#
# Environment:
#   OCISTACK_CONFORMANCE_DIR    conformance suite (default ../shared/conformance)
#   OCISTACK_TEST_FILTER        only run test files whose path matches this extended regex
#   OCISTACK_TEST_FILE_TIMEOUT  seconds one test file may run (default 420)
#   OCISTACK_TEST_BUDGET        seconds the whole script may take before files are
#                               no longer started (default 1140: the brief keeps CI under 20 minutes;
#                               a fresh machine also debootstraps the Debian bases in the background)
#   OCISTACK_TEST_JOBS          test files run at once (default 2)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

say() { printf '%s\n' "$*"; }
section() { printf '\n=== %s\n' "$*"; }

# --- the summary line, printed on every exit path ----------------------------------
# A failure before any test runs (no node, old node, apt-get or npm ci failing,
# an unexpected error under `set -e`) still ends with `N passed, N failed`, the
# setup failure counted as 1 failed, so whoever reads only the last line sees it.
failed=0
passed=0
skipped=0
problems=()
nfiles=0
summary_printed=0
workdir=
print_summary() {
  summary_printed=1
  section "summary"
  if [ -n "${OCISTACK_KEEP_TMP:-}" ] && [ -n "$workdir" ]; then say "logs and temp files kept in $workdir"; fi
  say "$nfiles test files"
  for p in "${problems[@]+"${problems[@]}"}"; do say "FAILED: $p"; done
  if [ $((passed + failed)) -eq 0 ]; then
    say "no tests ran"
  fi
  local summary="$passed passed, $failed failed"
  if [ "$skipped" -gt 0 ]; then summary="$summary, $skipped skipped"; fi
  say "$summary"
}
on_exit() {
  local code=$?
  if [ "$summary_printed" -eq 0 ]; then
    if [ "$code" -ne 0 ] && [ "$failed" -eq 0 ]; then
      failed=1
      problems+=("test setup or runner failed with exit code $code (see the output above)")
    fi
    print_summary
  fi
  if [ -n "$workdir" ] && [ -z "${OCISTACK_KEEP_TMP:-}" ]; then rm -rf "$workdir"; fi
  if [ "$code" -eq 0 ] && [ "$failed" -gt 0 ]; then code=1; fi
  exit "$code"
}
trap on_exit EXIT
# A setup step that cannot go on: counted as one failure, then exit 1 (the summary comes from on_exit).
setup_failed() {
  say "error: $*"
  failed=$((failed + 1))
  problems+=("setup: $*")
  exit 1
}

# --- Node ------------------------------------------------------------------
if ! command -v node >/dev/null 2>&1; then
  setup_failed "node is not installed; ocistack needs Node.js >= 20"
fi
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
  setup_failed "Node.js >= 20 is required, found $(node --version)"
fi

# --- Debian tools -----------------------------------------------------------
# package:command-that-proves-it-is-installed. busybox-static is checked with
# dpkg because a dynamically linked busybox cannot be copied into an image.
# Every command a test or helper spawns is here (grep the tests for run(,
# execFileSync(, spawn( and sh(` when adding one): GNU tar with --zstd needs
# zstd, tar -j/-J need bzip2/xz, layer.test.ts pipes through sha256sum, the
# differential suite reads xattrs with getfattr and its own test uses mknod/setfattr;
# debootstrap (and chroot) make the Debian base images of run-realistic.test.ts;
# tmux is the real terminal progress-tty.test.ts renders the live progress in;
# docker-load.test.ts starts a private dockerd (docker.io) and loads a build with
# its Debian client /usr/bin/docker, imports it with containerd's ctr (as kind load
# image-archive does), then checks `podman load` of the same kind of
# archive (podman needs no service for that).
REQUIRED="docker-registry:docker-registry skopeo:skopeo umoci:umoci runc:runc buildah:buildah
busybox-static:- nginx-light:nginx apache2-utils:htpasswd openssl:openssl uidmap:newuidmap
bzip2:bzip2 xz-utils:xz libcap2-bin:setcap libcap2-bin:getcap zstd:zstd gzip:gzip tar:tar
coreutils:sha256sum coreutils:mknod coreutils:chroot attr:getfattr attr:setfattr openssh-client:ssh-agent debootstrap:debootstrap tmux:tmux docker.io:dockerd containerd:ctr podman:podman"
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
missing=()
for entry in $REQUIRED; do
  pkg=${entry%%:*}
  cmd=${entry#*:}
  if [ "$cmd" = "-" ]; then
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$pkg")
    fi
  elif ! command -v "$cmd" >/dev/null 2>&1; then
    missing+=("$pkg")
  fi
done
# The tests read GNU tar's listing format and use its --xattrs/--zstd/--full-time.
if command -v tar >/dev/null 2>&1 && ! tar --version 2>/dev/null | head -1 | grep -q 'GNU tar'; then
  setup_failed "the tests need GNU tar, found: $(tar --version 2>&1 | head -1)"
fi
# Several entries can name the same package.
if [ ${#missing[@]} -gt 0 ]; then mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u); fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    section "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update || setup_failed "apt-get update failed"
    apt-get install -y --no-install-recommends "${missing[@]}" || setup_failed "apt-get install ${missing[*]} failed"
  else
    say "install them with:  sudo apt-get install -y ${missing[*]}"
    setup_failed "the tests need these Debian packages: ${missing[*]}"
  fi
fi

# --- IDPBuilder's host names ----------------------------------------------------
# The stack tests serve their registry under the names idpbuilder gives Gitea,
# gitea.cnoe.localtest.me and cnoe.localtest.me (test/helpers/gitea-registry.ts).
# Public DNS maps localtest.me to 127.0.0.1, but CI and sandboxes may have no
# DNS: add them to /etc/hosts when they do not resolve (once; as root only,
# the helper says what to add otherwise).
idp_names="gitea.cnoe.localtest.me cnoe.localtest.me"
for name in $idp_names; do
  if ! getent ahostsv4 "$name" 2>/dev/null | grep -q '^127\.0\.0\.1 '; then
    if [ "$(id -u)" -eq 0 ] && [ -w /etc/hosts ]; then
      say "adding \"127.0.0.1 $idp_names\" to /etc/hosts"
      printf '127.0.0.1 %s\n' "$idp_names" >>/etc/hosts
    else
      say "warning: $name does not resolve to 127.0.0.1; the stack tests will ask for \"127.0.0.1 $idp_names\" in /etc/hosts"
    fi
    break
  fi
done

# --- node dependencies ---------------------------------------------------------
stamp=node_modules/.package-lock.json
if [ ! -d node_modules ] || [ ! -f "$stamp" ] || [ package.json -nt "$stamp" ] || { [ -f package-lock.json ] && [ package-lock.json -nt "$stamp" ]; }; then
  # --ignore-scripts: `prepare` compiles, and we compile below where a type
  # error is reported as a test failure instead of aborting the install.
  if [ -f package-lock.json ]; then
    section "npm ci"
    npm ci --ignore-scripts --no-audit --no-fund || setup_failed "npm ci failed"
  else
    section "npm install"
    npm install --ignore-scripts --no-audit --no-fund || setup_failed "npm install failed"
  fi
fi

# --- compile -------------------------------------------------------------------
section "tsc -p ."
# Compiled tests whose source is gone would still run: remove them first.
if [ -d dist/test ]; then
  while IFS= read -r -d '' js; do
    src=${js#dist/}
    src=${src%.js}.ts
    if [ ! -f "$src" ]; then rm -f "$js" "$js.map" "${js%.js}.d.ts"; fi
  done < <(find dist/test -name '*.test.js' -print0)
fi
if npx tsc -p .; then
  say "compiled without errors"
else
  # tsc still emits JavaScript, so the tests can run; the type errors are a failure.
  failed=$((failed + 1))
  problems+=("tsc: type errors (see above)")
fi

# --- tests -----------------------------------------------------------------------
export OCISTACK_CONFORMANCE_DIR="${OCISTACK_CONFORMANCE_DIR:-$ROOT/../shared/conformance}"
if [ -d "$OCISTACK_CONFORMANCE_DIR" ]; then
  OCISTACK_CONFORMANCE_DIR=$(cd "$OCISTACK_CONFORMANCE_DIR" && pwd)
fi
export NODE_DISABLE_COLORS=1 FORCE_COLOR=0
file_timeout=${OCISTACK_TEST_FILE_TIMEOUT:-420}
budget=${OCISTACK_TEST_BUDGET:-1140}
jobs=${OCISTACK_TEST_JOBS:-2}
# Logs and each test file's TMPDIR live here; removed at the end unless
# OCISTACK_KEEP_TMP is set (for debugging).
workdir=$(mktemp -d "${TMPDIR:-/tmp}/ocistack-test-run.XXXXXX")
logdir="$workdir/logs"
mkdir -p "$logdir"
# --- layer audit (layers helper): keep every layer the tests write, see scripts/layer-audit.sh
source scripts/layer-audit.sh

mapfile -t files < <(find dist/test -name '*.test.js' -type f 2>/dev/null | LC_ALL=C sort)
if [ -n "${OCISTACK_TEST_FILTER:-}" ]; then
  mapfile -t files < <(printf '%s\n' "${files[@]}" | grep -E -- "$OCISTACK_TEST_FILTER" || true)
fi
# An empty find result leaves one empty element.
if [ ${#files[@]} -eq 1 ] && [ -z "${files[0]}" ]; then files=(); fi
nfiles=${#files[@]}

# --- Debian base images (run-realistic.test.ts) ----------------------------------
# A cold debootstrap takes minutes (cached afterwards in /var/cache/ocistack-test),
# more than one test file's time limit should absorb. So the images are made in
# the background while the other files run, the files that need them go last,
# and they start only once it has finished (its log is shown then). The helper
# takes a lock per image, so a test file started anyway would wait, not redo it.
prep_pid=
prep_log="$logdir/debian-bases.log"
needs_debian() { [[ "$1" == *run-realistic.test.js ]]; }
if [ ${#files[@]} -gt 0 ]; then
  later=()
  others=()
  for f in "${files[@]}"; do
    if needs_debian "$f"; then later+=("$f"); else others+=("$f"); fi
  done
  if [ ${#later[@]} -gt 0 ]; then
    files=("${others[@]+"${others[@]}"}" "${later[@]}")
    section "making the Debian base images in the background (debootstrap; cached in ${OCISTACK_TEST_IMAGE_CACHE:-/var/cache/ocistack-test})"
    # setsid: its own process group, so Ctrl-C can stop debootstrap with it.
    setsid node --enable-source-maps dist/test/helpers/prepare-debian-bases.js >"$prep_log" 2>&1 &
    prep_pid=$!
  fi
fi
# Wait for the background image step (once) and show what it said.
finish_prep() {
  [ -n "$prep_pid" ] || return 0
  local code=0 t0=$SECONDS
  wait "$prep_pid" || code=$?
  prep_pid=
  section "Debian base images (exit code $code; waited $((SECONDS - t0)) s for them)"
  cat "$prep_log"
}

# Remove what a test file left behind: its process group and its runc containers.
reap() {
  local pgid=$1 run_id=$2
  kill -KILL -- "-$pgid" 2>/dev/null || true
  if command -v runc >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    local c
    for c in $(runc list -q 2>/dev/null | grep -E "^ocistack-test-${run_id}-" || true); do
      runc delete -f "$c" >/dev/null 2>&1 || true
    done
  fi
}

# Start test file number $1 in the background. setsid: a new session and
# process group led by `timeout`, so everything the file spawned can be killed
# at once afterwards. OCISTACK_TEST_RUN_ID names the runc containers the
# helpers create.
declare -A running=()
# The test files run in their own sessions, so Ctrl-C does not reach them: kill them ourselves.
trap 'for p in "${!running[@]}" ${prep_pid:+"$prep_pid"}; do kill -KILL -- "-$p" 2>/dev/null || true; done; exit 130' INT TERM
start_file() {
  local i=$1 limit=$file_timeout left=$((budget - SECONDS))
  if [ "$left" -lt "$limit" ]; then limit=$left; fi
  echo "$limit" >"$logdir/$i.limit"
  # A private TMPDIR per file: whatever a killed file leaves in it is removed with it.
  # HOME, the XDG dirs and the blob cache live inside it too, so the machine's
  # ~/.docker/config.json, containers auth.json, certs.d and ~/.cache/ocistack
  # can neither help nor break a test (test/helpers.test.ts checks this from
  # inside). DOCKER_CONFIG is unset, so docker's config is $HOME/.docker; not
  # pointed at an empty dir, because buildah then fails on the missing
  # config.json. Credentials from the outer environment are dropped.
  local t="$workdir/tmp-$i"
  mkdir -p "$t/home" "$t/xdg/cache" "$t/xdg/config" "$t/xdg/data" "$t/xdg/runtime" "$t/cache"
  chmod 700 "$t/xdg/runtime"
  TMPDIR="$t" OCISTACK_TEST_TMP="$t" OCISTACK_TEST_RUN_ID="$$-$i" \
    HOME="$t/home" OCISTACK_CACHE_DIR="$t/cache" \
    XDG_CACHE_HOME="$t/xdg/cache" XDG_CONFIG_HOME="$t/xdg/config" XDG_DATA_HOME="$t/xdg/data" XDG_RUNTIME_DIR="$t/xdg/runtime" \
    env -u DOCKER_CONFIG -u REGISTRY_AUTH_FILE -u OCISTACK_USERNAME -u OCISTACK_PASSWORD -u OCISTACK_GITEA_HOSTS \
    setsid timeout -s KILL "$limit" node --enable-source-maps "${files[$i]}" >"$logdir/$i.log" 2>&1 &
  running[$!]=$i
}

# Show the output of test file number $1 (exit code $3, process group $2) and add up uvu's totals.
finish_file() {
  local i=$1 pgid=$2 code=$3 f=${files[$1]} log="$logdir/$1.log"
  reap "$pgid" "$$-$i"
  if [ -z "${OCISTACK_KEEP_TMP:-}" ]; then rm -rf "$workdir/tmp-$i"; fi
  section "$f"
  cat "$log"
  local clean total ok skip file_failed
  clean=$(sed -e 's/\x1b\[[0-9;]*m//g' "$log")
  total=$(printf '%s\n' "$clean" | sed -n 's/^ *Total: *\([0-9][0-9]*\).*/\1/p' | tail -1)
  ok=$(printf '%s\n' "$clean" | sed -n 's/^ *Passed: *\([0-9][0-9]*\).*/\1/p' | tail -1)
  skip=$(printf '%s\n' "$clean" | sed -n 's/^ *Skipped: *\([0-9][0-9]*\).*/\1/p' | tail -1)
  if [ -z "$total" ] || [ -z "$ok" ]; then
    # Crashed before uvu printed its summary (import error, timeout, ...), or not a uvu file.
    failed=$((failed + 1))
    if [ "$code" -eq 137 ]; then
      problems+=("$f: killed after $(cat "$logdir/$i.limit")s without a summary")
    else
      problems+=("$f: exited with code $code without a uvu summary (crash at import time, or test.run() never called)")
    fi
    return 0
  fi
  passed=$((passed + ok))
  skipped=$((skipped + ${skip:-0}))
  file_failed=$((total - ok))
  failed=$((failed + file_failed))
  if [ "$file_failed" -gt 0 ]; then
    problems+=("$f: $file_failed of $total failed")
  elif [ "$code" -ne 0 ]; then
    # All tests passed but the process failed afterwards (unhandled rejection, killed, ...).
    failed=$((failed + 1))
    problems+=("$f: all tests passed but the process exited with code $code")
  fi
}

# Run up to $jobs files at once (each has its own registries on free ports);
# outputs are shown whole, in the order the files finish.
section "running ${#files[@]} test files, $jobs at a time"
next=0
while [ "$next" -lt ${#files[@]} ] || [ ${#running[@]} -gt 0 ]; do
  while [ "$next" -lt ${#files[@]} ] && [ ${#running[@]} -lt "$jobs" ]; do
    if needs_debian "${files[$next]}"; then finish_prep; fi
    if [ $((budget - SECONDS)) -le 10 ]; then
      failed=$((failed + 1))
      problems+=("${files[$next]}: not run, the ${budget}s time budget (OCISTACK_TEST_BUDGET) was used up")
    else
      start_file "$next"
    fi
    next=$((next + 1))
  done
  [ ${#running[@]} -gt 0 ] || continue
  set +e
  done_pid=
  # 2>/dev/null: bash would print "Killed" for a file the timeout stopped; we report it ourselves.
  wait -n -p done_pid "${!running[@]}" 2>/dev/null
  code=$?
  set -e
  if [ -z "${done_pid:-}" ] || [ -z "${running[$done_pid]+set}" ]; then continue; fi
  i=${running[$done_pid]}
  unset "running[$done_pid]"
  finish_file "$i" "$done_pid" "$code"
done

finish_prep
layer_audit_run
print_summary
if [ "$failed" -gt 0 ] || [ "$passed" -eq 0 ]; then
  exit 1
fi
exit 0
