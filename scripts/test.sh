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

# The Kubernetes lane, in the background from the start while lint, pytest and the other
# scenarios run in the foreground: the bundle (scripts/kube-build.sh: ~15 min from scratch on 2
# cores, seconds when cached), then the model servers' vLLM image (scripts/build-serving-image.sh:
# ~9 min and a ~4-min save from scratch, seconds when current), both niced; then the `kubernetes`
# scenario (a cluster serving from pods: ~15-20 min, much of it waiting on rollouts and vLLM's
# start, so it overlaps the other scenarios well). Each step leaves its exit status in out/ci/.
kube_lane_pid=""
kube_lane() {  # kube_lane RUN_SCENARIO
  local start
  nice -n 15 scripts/kube-build.sh > out/kube-build.log 2>&1
  echo $? > out/ci/kube-build.rc
  [[ "$1" == 1 && "$(cat out/ci/kube-build.rc)" == 0 ]] || return 0
  nice -n 15 scripts/build-serving-image.sh > out/serving-image.log 2>&1
  echo $? > out/ci/serving-image.rc
  [[ "$(cat out/ci/serving-image.rc)" == 0 ]] || return 0
  start=$SECONDS
  molecule test -s kubernetes > out/ci/molecule-kubernetes.log 2>&1
  echo "$? $((SECONDS - start))" > out/ci/molecule-kubernetes.rc
}
kube_bundle() {  # wait for the lane's bundle build; its status
  [[ -n "$kube_lane_pid" ]] || return 1
  [[ -f out/ci/kube-build.rc ]] || echo "=== waiting for scripts/kube-build.sh (out/kube-build.log)"
  while [[ ! -f out/ci/kube-build.rc ]] && kill -0 "$kube_lane_pid" 2>/dev/null; do sleep 5; done
  tail -n 12 out/kube-build.log
  [[ "$(cat out/ci/kube-build.rc 2>/dev/null)" == 0 ]]
}
kube_lane_gate() {  # wait for the whole lane; record the kubernetes scenario as a gate
  echo; echo "=== molecule kubernetes (ran in the background; out/ci/molecule-kubernetes.log)"
  wait "$kube_lane_pid"
  if [[ "$(cat out/ci/kube-build.rc 2>/dev/null)" != 0 ]]; then
    failed+=("molecule kubernetes (kube-build failed)"); return
  fi
  if [[ "$(cat out/ci/serving-image.rc 2>/dev/null)" != 0 ]]; then
    tail -n 30 out/serving-image.log
    failed+=("molecule kubernetes (serving image build failed)"); return
  fi
  local rc seconds
  read -r rc seconds < out/ci/molecule-kubernetes.rc
  cat out/ci/molecule-kubernetes.log
  if [[ "$rc" == 0 ]]; then passed+=("molecule kubernetes"); echo "=== molecule kubernetes: ok ($seconds s)"
  else failed+=("molecule kubernetes"); echo "=== molecule kubernetes: FAILED ($seconds s)"; fi
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

if ((run_molecule)); then
  scripts/build-image.sh || { echo "image build failed"; exit 1; }
  # model_serving and the kubernetes scenario use the vLLM CPU wheelhouse and the converted SmolLM2
  # from .cache (both cached); the lane's image build needs the wheelhouse.
  scripts/build-wheelhouse.sh || { echo "wheelhouse build failed"; exit 1; }
  scripts/convert-model.sh || { echo "model conversion failed"; exit 1; }
  # Every scenario needs container name resolution; fail once, named, rather than in each of them.
  scripts/check-podman-dns.sh || { echo "podman DNS check failed"; exit 1; }
  mkdir -p out/ci
  rm -f out/ci/*.rc
  run_kube_scenario=0
  [[ ${#scenarios[@]} == 0 || " ${scenarios[*]} " == *" kubernetes "* ]] && run_kube_scenario=1
  kube_lane "$run_kube_scenario" &
  kube_lane_pid=$!
fi

if ((run_lint)); then
  step "ruff" ruff check .
  step "ansible-lint" ansible-lint --profile production --offline
fi
if ((run_pytest)); then
  step "pytest" python -m pytest -q -p no:cacheprovider
fi
if ((run_molecule)); then
  if ((${#scenarios[@]} == 0)); then
    for dir in molecule/*/; do
      [[ -f "$dir/molecule.yml" ]] && scenarios+=("$(basename "$dir")")
    done
  fi
  # The foreground's scenarios: all but the lane's.
  early=()
  for scenario in "${scenarios[@]}"; do [[ "$scenario" == kubernetes ]] || early+=("$scenario"); done
  for scenario in "${early[@]}"; do step "molecule $scenario" molecule test -s "$scenario"; done
  # The rollout's tests against a real API server (scripts/kube-apiserver-local.sh: etcd, API server
  # and controller manager from the bundle, no nodes); pytest above skips them without one.
  if ((run_pytest)); then
    if kube_bundle; then step "kubernetes API (live rollout tests)" live_api_tests
    else failed+=("kubernetes API (kube-build failed)"); fi
  fi
  [[ " ${scenarios[*]} " == *" kubernetes "* ]] && kube_lane_gate
  wait
fi

echo
echo "gates passed: ${passed[*]:-none}"
((${#failed[@]})) && echo "gates failed: ${failed[*]}"
echo "gates: ${#passed[@]} passed, ${#failed[@]} failed"
((${#failed[@]} == 0))
