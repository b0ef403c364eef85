#!/usr/bin/env bash
# The whole test suite, exactly what CI runs (.ci/run). From a fresh clone, as root, it installs
# what it needs (scripts/setup.sh), then runs: lint (ruff, ansible-lint production profile),
# pytest (unit, property, collection, Pulumi-mock and live-Prometheus tests), and every molecule
# scenario (create, converge, idempotence, verify, destroy) on the locally built systemd image.
#   scripts/test.sh                 everything
#   scripts/test.sh --no-molecule   lint and pytest only
#   scripts/test.sh --only-molecule [scenario ...]
set -uo pipefail
source "$(dirname "$0")/env.sh"
cd "$LLMOPS_ROOT"

run_lint=1 run_pytest=1 run_molecule=1
scenarios=()
case "${1:-}" in
  --no-molecule) run_molecule=0 ;;
  --only-molecule) run_lint=0 run_pytest=0; shift; scenarios=("$@") ;;
esac

scripts/setup.sh || { echo "setup failed"; exit 1; }

# The Kubernetes bundle (scripts/kube-build.sh: ~15 min from scratch on 2 cores, seconds when cached)
# builds niced in the background while lint, pytest and the other scenarios run; the scenarios
# that install it run last and wait for it. It needs the lab image (kube-proxy's base).
kube_build_pid="" kube_build_rc=0
if ((run_molecule)); then
  scripts/build-image.sh || { echo "image build failed"; exit 1; }
  mkdir -p out
  nice -n 15 scripts/kube-build.sh > out/kube-build.log 2>&1 &
  kube_build_pid=$!
fi
kube_bundle() {  # wait for the background build once; its status for every scenario that needs it
  if [[ -n "$kube_build_pid" ]]; then
    echo "=== waiting for scripts/kube-build.sh (out/kube-build.log)"
    wait "$kube_build_pid"; kube_build_rc=$?; kube_build_pid=""
    tail -n 12 out/kube-build.log
  fi
  return "$kube_build_rc"
}

serving_image_pid="" serving_image_rc=0
serving_image() {  # the same for the serving image
  if [[ -n "$serving_image_pid" ]]; then
    echo "=== waiting for scripts/build-serving-image.sh (out/serving-image.log)"
    wait "$serving_image_pid"; serving_image_rc=$?; serving_image_pid=""
    tail -n 3 out/serving-image.log
  fi
  return "$serving_image_rc"
}

live_api_tests() {
  local settings status
  settings=$(scripts/kube-apiserver-local.sh up | sed -n 's/^export //p') || return 1
  # shellcheck disable=SC2086  # NAME=value words for env
  env $settings python -m pytest -q -p no:cacheprovider $(grep -rl LLMOPS_TEST_KUBECONFIG tests --include='test_*.py')
  status=$?
  scripts/kube-apiserver-local.sh down
  return "$status"
}
failed=()
passed=()
step() {  # step NAME COMMAND...: run, time and record one gate
  local name="$1"; shift
  echo; echo "=== $name"
  local start=$SECONDS
  if "$@"; then passed+=("$name"); echo "=== $name: ok ($((SECONDS - start)) s)"
  else failed+=("$name"); echo "=== $name: FAILED ($((SECONDS - start)) s)"; fi
}

if ((run_lint)); then
  step "ruff" ruff check .
  step "ansible-lint" ansible-lint --profile production --offline
fi
if ((run_pytest)); then
  step "pytest" python -m pytest -q -p no:cacheprovider
fi
if ((run_molecule)); then
  scripts/build-image.sh || { echo "image build failed"; exit 1; }
  # model_serving mounts the vLLM CPU wheelhouse and the converted SmolLM2 from .cache (both cached).
  scripts/build-wheelhouse.sh || { echo "wheelhouse build failed"; exit 1; }
  # The kubernetes scenario serves from pods: their vLLM image (scripts/build-serving-image.sh, from
  # the lab image and the wheelhouse: ~9 min and a ~4-min save from scratch on 2 cores, seconds when
  # current) builds niced in the background as well, while the other scenarios run.
  nice -n 15 scripts/build-serving-image.sh > out/serving-image.log 2>&1 &
  serving_image_pid=$!
  scripts/convert-model.sh || { echo "model conversion failed"; exit 1; }
  # Every scenario needs container name resolution; fail once, named, rather than in each of them.
  scripts/check-podman-dns.sh || { echo "podman DNS check failed"; exit 1; }
  if ((${#scenarios[@]} == 0)); then
    for dir in molecule/*/; do
      [[ -f "$dir/molecule.yml" ]] && scenarios+=("$(basename "$dir")")
    done
  fi
  needs_bundle=" kubernetes "
  early=() late=()
  for scenario in "${scenarios[@]}"; do
    if [[ "$needs_bundle" == *" $scenario "* ]]; then late+=("$scenario"); else early+=("$scenario"); fi
  done
  for scenario in "${early[@]}"; do step "molecule $scenario" molecule test -s "$scenario"; done
  # The rollout's tests against a real API server (scripts/kube-apiserver-local.sh: etcd, API server
  # and controller manager from the bundle, no nodes); pytest above skips them without one.
  if ((run_pytest)); then
    if kube_bundle; then step "kubernetes API (live rollout tests)" live_api_tests
    else failed+=("kubernetes API (kube-build failed)"); fi
  fi
  for scenario in "${late[@]}"; do
    if [[ "$needs_bundle" == *" $scenario "* ]] && ! kube_bundle; then
      failed+=("molecule $scenario (kube-build failed)"); continue
    fi
    if [[ "$scenario" == kubernetes ]] && ! serving_image; then
      failed+=("molecule $scenario (serving image build failed)"); continue
    fi
    step "molecule $scenario" molecule test -s "$scenario"
  done
fi

echo
echo "gates passed: ${passed[*]:-none}"
((${#failed[@]})) && echo "gates failed: ${failed[*]}"
echo "gates: ${#passed[@]} passed, ${#failed[@]} failed"
((${#failed[@]} == 0))
