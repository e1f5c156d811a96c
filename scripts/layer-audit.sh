# Layer audit for scripts/test.sh (sourced after $workdir/$logdir exist; issue 8).
# Every layer blob the test files leave in their blob stores is extracted with
# GNU tar --warning=all after the run; a warning or error fails the suite.
#   - test/layer-audit-keep.ts is preloaded into every node process the tests
#     start (NODE_OPTIONS --import): before a temp dir is removed, and when a
#     test process ends, it hard-links each blobs/sha256/<hex> into
#     $OCISTACK_LAYER_AUDIT (one file per digest);
#   - layer_audit_run (called before the summary) runs dist/test/layer-audit.js
#     over that directory; the whole audit counts as one test in the totals
#     (failed when any layer warns, or when no layer was kept at all).
# OCISTACK_LAYER_AUDIT=off disables it.
if [ "${OCISTACK_LAYER_AUDIT:-}" != off ]; then
  layer_audit_dir="$workdir/layer-audit"
  mkdir -p "$layer_audit_dir"
  export OCISTACK_LAYER_AUDIT="$layer_audit_dir"
  export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--import=file://${ROOT// /%20}/dist/test/layer-audit-keep.js"
fi

layer_audit_run() {
  [ -n "${layer_audit_dir:-}" ] || return 0
  section "layer audit: every layer the tests wrote, extracted with GNU tar --warning=all"
  local log="$logdir/layer-audit.log" code=0 total ok
  NODE_OPTIONS= OCISTACK_LAYER_AUDIT= node --enable-source-maps dist/test/layer-audit.js "$layer_audit_dir" >"$log" 2>&1 || code=$?
  cat "$log"
  total=$(sed -n 's/^ *Total: *\([0-9][0-9]*\).*/\1/p' "$log" | tail -1)
  ok=$(sed -n 's/^ *Passed: *\([0-9][0-9]*\).*/\1/p' "$log" | tail -1)
  if [ -z "$total" ] || [ -z "$ok" ]; then
    failed=$((failed + 1))
    problems+=("layer audit: exited with code $code without a summary")
    return 0
  fi
  # A filtered run may write no layer at all: nothing to judge then.
  if [ "$total" -eq 0 ] && [ -n "${OCISTACK_TEST_FILTER:-}" ]; then return 0; fi
  # One test in the totals, whatever the number of layers (so the counts stay comparable).
  if [ "$ok" -eq "$total" ] && [ "$total" -gt 0 ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    if [ "$total" -eq 0 ]; then problems+=("layer audit: no layer was kept for checking (the preload did not run?)")
    else problems+=("layer audit: $((total - ok)) of $total layers do not extract cleanly with GNU tar"); fi
  fi
}
