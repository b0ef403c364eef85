"""The gateway answers real requests in front of real llama.cpp replicas.

Every request runs inside the container (one Python process per check), against the gateway on
127.0.0.1:8080 and the replicas on 8001/8002 (smollm2, weights 3:1) and 8003 (smollm2-alt).
"""

import base64
import json
import os
import time

import pytest

testinfra_hosts = ["gateway-1"]

GATEWAY = "http://127.0.0.1:8080"
ACCESS_LOG = "/var/log/nginx/llmops-gateway.access.log"
LOAD_CLIENT = "/opt/llama-peer/openai_load.py"

# Runs inside the container: a list of requests in, a list of {status, body, headers} out.
_CLIENT = r"""
import base64, http.client, json, sys, time
calls = json.loads(base64.b64decode(sys.argv[1]))
results = []
connection = http.client.HTTPConnection("127.0.0.1", 8080, timeout=60)
for call in calls:
    headers = dict(call.get("headers") or {})
    if call.get("key"):
        headers["Authorization"] = "Bearer " + call["key"]
    body = call.get("raw")
    if body is None and call.get("json") is not None:
        body = json.dumps(call["json"])
        headers["Content-Type"] = "application/json"
    started = time.perf_counter()
    connection.request(call.get("method", "POST"), call["path"], body=body, headers=headers)
    response = connection.getresponse()
    chunks = []
    if call.get("stream"):
        while True:
            line = response.readline()
            if not line:
                break
            if line.strip():
                chunks.append([time.perf_counter() - started, line.decode("utf-8", "replace").strip()])
        text = ""
    else:
        text = response.read().decode("utf-8", "replace")
    results.append({"status": response.status, "body": text, "chunks": chunks,
                    "content_type": response.getheader("Content-Type")})
    if response.getheader("Connection", "").lower() == "close":
        connection.close()
        connection = http.client.HTTPConnection("127.0.0.1", 8080, timeout=60)
print(json.dumps(results))
"""


def _key(tenant):
    with open(os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], f"gateway-key-{tenant}"), encoding="utf-8") as handle:
        return handle.read().split()[0]


@pytest.fixture(scope="module")
def keys():
    return {"acme": _key("acme"), "beta": _key("beta")}


def _calls(host, calls):
    encoded = base64.b64encode(json.dumps(calls).encode()).decode()
    result = host.run(f"python3 -c '{_CLIENT}' {encoded}")
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


def _one(host, **call):
    return _calls(host, [call])[0]


def _chat(model, content="Say hello.", max_tokens=8, **extra):
    return {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens,
            "temperature": 0, **extra}


def _error(answer, status, code):
    assert answer["status"] == status, answer
    assert answer["content_type"].startswith("application/json"), answer
    error = json.loads(answer["body"])["error"]
    assert error["code"] == code and error["message"] and "type" in error, error
    return error


def _log_lines(host):
    return host.run(f"cat {ACCESS_LOG}").stdout.splitlines()


def test_config_passed_nginx_t_and_is_live(host):
    assert host.run("nginx -t -q").rc == 0
    assert host.service("nginx").is_running and host.service("nginx").is_enabled
    assert host.file("/etc/nginx/llmops/llmops_gateway_data.js").mode == 0o600


def test_routes_by_model_to_real_replicas(host, keys):
    answer = _one(host, path="/v1/chat/completions", key=keys["acme"], json=_chat("smollm2"))
    assert answer["status"] == 200, answer
    body = json.loads(answer["body"])
    assert body["model"] == "smollm2" and body["choices"][0]["message"]["content"].strip()
    answer = _one(host, path="/v1/completions", key=keys["beta"], json={"model": "smollm2-alt", "prompt": "The sky is", "max_tokens": 4})
    assert answer["status"] == 200, answer
    assert json.loads(answer["body"])["model"] == "smollm2-alt"
    last = json.loads(_log_lines(host)[-1])
    assert last["model"] == "smollm2-alt" and last["upstream"] == "127.0.0.1:8003" and last["key_id"] == "beta-1"


def test_models_lists_only_the_callers_models(host, keys):
    answers = _calls(host, [{"method": "GET", "path": "/v1/models", "key": keys[t]} for t in ("acme", "beta")])
    for answer, expected in zip(answers, (["smollm2"], ["smollm2-alt", "reserve"]), strict=True):
        assert answer["status"] == 200, answer
        listed = json.loads(answer["body"])
        assert listed["object"] == "list" and [m["id"] for m in listed["data"]] == expected


def test_errors_in_openai_shape(host, keys):
    cases = [
        ({"json": _chat("smollm2")}, 401, "invalid_api_key"),
        ({"key": "not-a-key-of-anyone-at-all", "json": _chat("smollm2")}, 401, "invalid_api_key"),
        ({"key": keys["beta"], "json": _chat("smollm2")}, 403, "model_not_allowed"),
        ({"key": keys["acme"], "json": _chat("no-such-model")}, 404, "model_not_found"),
        ({"key": keys["acme"], "raw": "{not json"}, 400, "invalid_json"),
        ({"key": keys["acme"], "json": {"messages": []}}, 400, "missing_model"),
        ({"key": keys["acme"], "raw": "x" * 70000}, 413, "request_too_large"),
        ({"key": keys["beta"], "json": _chat("reserve")}, 503, "no_healthy_replica"),
        ({"method": "GET", "path": "/v1/embeddings", "key": keys["acme"]}, 404, "not_found"),
    ]
    answers = _calls(host, [{"path": "/v1/chat/completions", **call} for call, _, _ in cases])
    for answer, (_, status, code) in zip(answers, cases, strict=True):
        _error(answer, status, code)


def test_streaming_arrives_incrementally(host, keys):
    answer = _one(host, path="/v1/chat/completions", key=keys["acme"], stream=True,
                  json=_chat("smollm2", "Count from one to twenty in words.", max_tokens=48, stream=True))
    assert answer["status"] == 200, answer
    events = [(at, line) for at, line in answer["chunks"] if line.startswith("data:")]
    assert events[-1][1] == "data: [DONE]"
    assert len(events) >= 20, events
    # Unbuffered: tokens arrive spread over the generation (at least 10 distinct 10 ms slots),
    # not in one burst when the replica finishes.
    arrivals = [at for at, _ in events[:-1]]
    assert arrivals[-1] - arrivals[0] > 0.1, arrivals
    assert len({round(at, 2) for at in arrivals}) >= 10, arrivals


def test_traffic_follows_the_weights(host, keys):
    before = len(_log_lines(host))
    calls = [{"path": "/v1/completions", "key": keys["acme"], "json": {"model": "smollm2", "prompt": "Hi", "max_tokens": 1}}] * 40
    assert all(answer["status"] == 200 for answer in _calls(host, calls))
    upstreams = [json.loads(line)["upstream"] for line in _log_lines(host)[before:]]
    share = upstreams.count("127.0.0.1:8001") / len(upstreams)
    assert len(upstreams) == 40 and 0.6 <= share <= 0.9, upstreams


def test_rate_limit_per_key(host, keys):
    calls = [{"method": "GET", "path": "/v1/models", "key": keys["beta"]}] * 200
    answers = _calls(host, calls)
    statuses = [answer["status"] for answer in answers]
    assert statuses.count(200) >= 50 and statuses.count(429) > 0, statuses
    _error(next(a for a in answers if a["status"] == 429), 429, "rate_limit_exceeded")
    time.sleep(2)
    # Another key is not limited by beta's burst.
    assert _one(host, method="GET", path="/v1/models", key=keys["acme"])["status"] == 200


def test_access_log_is_the_audit_trail(host, keys):
    lines = [json.loads(line) for line in _log_lines(host)]
    assert lines
    for field in ("time", "key_id", "tenant", "model", "status", "upstream", "request_time", "path"):
        assert all(field in line for line in lines), field
    assert {"acme-1", "beta-1"} <= {line["key_id"] for line in lines}
    assert any(line["status"] == 429 for line in lines) and any(line["status"] == 403 for line in lines)
    log_text = host.run(f"cat {ACCESS_LOG}").stdout
    assert keys["acme"] not in log_text and keys["beta"] not in log_text


def test_exporter_serves_nginx_metrics(host):
    metrics = host.run("curl -s http://127.0.0.1:9113/metrics").stdout
    assert "\nnginx_up 1" in metrics
    requests = [line for line in metrics.splitlines() if line.startswith("nginx_http_requests_total")]
    assert requests and float(requests[0].split()[-1]) > 0
    # stub_status itself is loopback-only and not on the public port.
    assert host.run("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/stub_status").stdout == "404"


def test_sixteen_streaming_clients_without_errors(host, keys):
    result = host.run(f"python3 {LOAD_CLIENT} --url {GATEWAY} --key {keys['acme']} --model smollm2 "
                      "--concurrency 16 --duration 30 --max-tokens 32")
    summary = json.loads(result.stdout)
    report = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "gateway-load.json")
    with open(report, "w", encoding="utf-8") as handle:
        json.dump(summary, handle)
    print("16 streaming clients, 30 s:", json.dumps(summary))
    assert result.rc == 0 and summary["errors"] == 0, summary
    assert summary["ok"] >= 16 and summary["output_tokens"] > 0


@pytest.fixture()
def replicas_restored(host):
    yield
    for unit in ("llama-a", "llama-b"):
        host.run(f"systemctl start {unit}")
    host.run("for p in 8001 8002; do for i in $(seq 30); do curl -sf http://127.0.0.1:$p/health && break; sleep 1; done; done")


def test_killed_replica_fails_no_new_request(host, keys, replicas_restored):
    # Non-streaming load for 12 s; llama-b is killed after 4 s. Requests already on it may fail;
    # every request started after the kill must succeed (connection failures are retried).
    script = (
        f"python3 {LOAD_CLIENT} --url {GATEWAY} --key {keys['acme']} --model smollm2 --concurrency 4 "
        "--duration 12 --max-tokens 8 --records > /tmp/kill-load.json & "
        "sleep 4; date +%s.%N > /tmp/kill-time; systemctl kill --signal=SIGKILL llama-b; wait"
    )
    host.run(script)
    killed_at = float(host.file("/tmp/kill-time").content_string)
    summary = json.loads(host.file("/tmp/kill-load.json").content_string)
    after = [r for r in summary["records"] if r["start"] > killed_at + 0.05]
    assert len(after) >= 4, summary
    failed_after = [r for r in after if r["error"] is not None or r["status"] != 200]
    assert not failed_after, failed_after
    assert not host.service("llama-b").is_running

    # With every replica of the model down, the gateway says so in OpenAI's shape.
    host.run("systemctl kill --signal=SIGKILL llama-a")
    _error(_one(host, path="/v1/chat/completions", key=keys["acme"], json=_chat("smollm2")), 503, "no_healthy_replica")
