"""The server through the official `openai` client (and raw HTTP where a client would not send such a request):
chat and completions, streaming with usage, stop sequences, seeds, log-probabilities, errors, per-request
speculation, and greedy outputs equal to `specula generate`'s with speculation on and off."""

import json
import socket
import subprocess
import threading
import time

import httpx
import openai
import pytest

from conftest import BINARY, DRAFT, SMALL, TARGET, Server


def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base + "/v1", api_key="unused", max_retries=0, timeout=300)


def cli_text(model, prompt: str, max_tokens: int, *extra: str) -> str:
    """`specula generate` at temperature 0: the text it prints (its last newline is its own)."""
    out = subprocess.run(
        [str(BINARY), "generate", "--model", str(model), "--prompt", prompt, "--max-tokens", str(max_tokens),
         "--temperature", "0", *extra],
        check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL,
    ).stdout
    assert out.endswith("\n")
    return out[:-1]


def test_chat_at_temperature_zero_is_specula_generates_output(small_server):
    prompt = "Name three rivers in Europe."
    expected = cli_text(SMALL, prompt, 40, "--chat")
    for speculative in [None, {"mode": "off"}, {"mode": "ngram", "n_max": 4}, {"mode": "suffix"}]:
        extra = {"speculative": speculative} if speculative else {}
        reply = client(small_server).chat.completions.create(
            model="any", messages=[{"role": "user", "content": prompt}], max_tokens=40, temperature=0,
            extra_body=extra)
        assert reply.choices[0].message.content == expected, speculative
        assert reply.choices[0].message.role == "assistant"
        assert reply.usage.completion_tokens <= 40
        assert reply.system_fingerprint.startswith("specula-")


def test_completion_at_temperature_zero_is_specula_generates_output(small_server):
    prompt = "The capital of France is"
    expected = cli_text(SMALL, prompt, 16, "--special")
    reply = client(small_server).completions.create(model="any", prompt=prompt, max_tokens=16, temperature=0)
    assert reply.choices[0].text == expected
    assert reply.choices[0].finish_reason in ("length", "stop")


def test_streaming_gives_the_same_text_and_a_usage_chunk(small_server):
    messages = [{"role": "user", "content": "Count from one to twenty."}]
    whole = client(small_server).chat.completions.create(
        model="any", messages=messages, max_tokens=48, temperature=0)
    chunks = list(client(small_server).chat.completions.create(
        model="any", messages=messages, max_tokens=48, temperature=0, stream=True,
        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens

    completion = list(client(small_server).completions.create(
        model="any", prompt="1, 2, 3,", max_tokens=12, temperature=0, stream=True))
    streamed = "".join(c.choices[0].text for c in completion if c.choices)
    assert streamed == client(small_server).completions.create(
        model="any", prompt="1, 2, 3,", max_tokens=12, temperature=0).choices[0].text


def test_stop_sequences_end_the_text_before_them(small_server):
    full = client(small_server).completions.create(
        model="any", prompt="1, 2, 3, 4,", max_tokens=16, temperature=0).choices[0].text
    stop = full.split(",")[2] + ","
    for stream in (False, True):
        if stream:
            chunks = list(client(small_server).completions.create(
                model="any", prompt="1, 2, 3, 4,", max_tokens=16, temperature=0, stop=[stop, "never"],
                stream=True))
            text = "".join(c.choices[0].text for c in chunks if c.choices)
            reason = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason][0]
        else:
            choice = client(small_server).completions.create(
                model="any", prompt="1, 2, 3, 4,", max_tokens=16, temperature=0, stop=stop).choices[0]
            text, reason = choice.text, choice.finish_reason
        assert stop not in text
        assert full.startswith(text) and full[len(text):].startswith(stop)
        assert reason == "stop"


def test_a_seed_repeats_a_sample(small_server):
    def sample(speculative):
        return client(small_server).chat.completions.create(
            model="any", messages=[{"role": "user", "content": "Write a short poem about the sea."}],
            max_tokens=32, temperature=0.9, seed=1234, extra_body={"speculative": speculative},
        ).choices[0].message.content

    for speculative in ({"mode": "off"}, {"mode": "ngram", "n_max": 3}):
        assert sample(speculative) == sample(speculative)


def test_logprobs_are_the_targets(small_server):
    reply = client(small_server).chat.completions.create(
        model="any", messages=[{"role": "user", "content": "Say hello."}], max_tokens=10, temperature=0,
        logprobs=True, top_logprobs=3)
    entries = reply.choices[0].logprobs.content
    assert len(entries) == reply.usage.completion_tokens
    for entry in entries:
        assert entry.logprob <= 0
        assert len(entry.top_logprobs) == 3
        # Greedy: the emitted token is the most likely one.
        assert entry.top_logprobs[0].logprob == entry.logprob
        assert entry.top_logprobs[0].token == entry.token
    # The same numbers with speculation on (the rows come from the verification passes).
    again = client(small_server).chat.completions.create(
        model="any", messages=[{"role": "user", "content": "Say hello."}], max_tokens=10, temperature=0,
        logprobs=True, top_logprobs=3, extra_body={"speculative": {"mode": "ngram", "n_max": 4}})
    assert [e.logprob for e in again.choices[0].logprobs.content] == [e.logprob for e in entries]


def test_errors_are_openai_errors(small_server):
    c = client(small_server)
    user = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.BadRequestError) as error:
        c.chat.completions.create(model="any", messages=user, n=2)
    assert error.value.body["param"] == "n"
    with pytest.raises(openai.BadRequestError) as error:
        c.chat.completions.create(model="any", messages=user, temperature=7)
    assert error.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError) as error:
        c.chat.completions.create(model="any", messages=user, max_tokens=100_000)
    assert error.value.body["code"] == "context_length_exceeded"
    assert "1024" in error.value.body["message"]
    with pytest.raises(openai.BadRequestError) as error:
        c.chat.completions.create(model="any", messages=user, extra_body={"speculative": {"verifier": "nope"}})
    assert error.value.body["param"] == "speculative.verifier"
    with pytest.raises(openai.BadRequestError) as error:
        c.chat.completions.create(model="any", messages=user, extra_body={"speculative": {"mode": "draft"}})
    assert error.value.body["param"] == "speculative.mode"
    with pytest.raises(openai.NotFoundError):
        c.embeddings.create(model="any", input="x")
    raw = httpx.post(small_server.base + "/v1/chat/completions", content=b'{"messages": [', timeout=30)
    assert raw.status_code == 400 and raw.json()["error"]["code"] == "invalid_json"
    raw = httpx.post(small_server.base + "/v1/chat/completions", content=b'[1, 2]', timeout=30)
    assert raw.status_code == 400 and set(raw.json()["error"]) == {"message", "type", "param", "code"}
    assert httpx.get(small_server.base + "/health").status_code == 200


def test_models_and_props(small_server):
    models = client(small_server).models.list()
    assert [m.id for m in models.data] == ["smollm2-135m-instruct-q4_1"]
    props = httpx.get(small_server.base + "/props").json()
    assert props["n_ctx"] == 1024
    assert props["speculative"]["auto_runs"] == "ngram-adaptive"


def read_events(sock: socket.socket, count: int) -> bytes:
    """Reads a response until `count` server-sent events have arrived; any other response, until its head."""
    data = b""
    sock.settimeout(120)
    while True:
        if b"\r\n\r\n" in data and not data.startswith(b"HTTP/1.1 200"):
            return data
        if data.count(b"data: ") >= count:
            return data
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk


def post_raw(server, path: str, body: dict) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port))
    payload = json.dumps(body).encode()
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        .encode() + payload)
    return sock


def queued_seconds(server) -> float:
    reply = httpx.post(server.base + "/v1/completions",
                       json={"prompt": "Hi", "max_tokens": 2, "temperature": 0}, timeout=120)
    assert reply.status_code == 200
    return reply.json()["specula"]["queued_seconds"]


def cancelled_count(server) -> int:
    for line in httpx.get(server.base + "/metrics").text.splitlines():
        if line.startswith("specula:requests_cancelled_total "):
            return int(line.split()[1])
    raise AssertionError("no cancelled counter")


def test_a_client_that_leaves_frees_the_slot(pair_server):
    # The pinned target (tens of tokens a second): a generation of 600 tokens would hold the slot for many seconds.
    small_server = pair_server
    before = cancelled_count(small_server)
    # Streaming: read two events, close the socket.
    sock = post_raw(small_server, "/v1/chat/completions", {
        "messages": [{"role": "user", "content": "Write a very long story."}], "max_tokens": 600,
        "temperature": 0, "stream": True, "speculative": {"mode": "off"}})
    read_events(sock, 2)
    sock.close()
    assert queued_seconds(small_server) < 1.0
    # Not streaming: close while it generates.
    sock = post_raw(small_server, "/v1/completions", {
        "prompt": "Once upon a time", "max_tokens": 600, "temperature": 0, "speculative": {"mode": "off"}})
    time.sleep(1.0)
    sock.close()
    assert queued_seconds(small_server) < 1.0
    assert cancelled_count(small_server) == before + 2


def test_load_every_request_answered_once(small_server):
    """200 requests from 8 threads to two slots: well-formed ones (200, or 503 with queue_full when the queue of 4 is full),
    malformed ones (400), and streams closed after their first event. Afterwards the server is healthy, its
    queue empty, and its peak memory within the model file, the context's caches and a margin."""
    results = []
    lock = threading.Lock()

    def work(worker: int):
        for n in range(25):
            index = worker * 25 + n
            if index % 5 == 0:
                response = httpx.post(small_server.base + "/v1/chat/completions",
                                      json={"messages": "not a list"}, timeout=120)
                outcome = ("malformed", response.status_code, response.json()["error"]["param"])
            elif index % 7 == 0:
                sock = post_raw(small_server, "/v1/chat/completions", {
                    "messages": [{"role": "user", "content": f"Story {index}"}], "max_tokens": 64,
                    "stream": True})
                head = read_events(sock, 1)
                sock.close()
                status = int(head.split(b" ")[1]) if head else 0
                outcome = ("cancelled", status, None)
            else:
                response = httpx.post(small_server.base + "/v1/completions",
                                      json={"prompt": f"Item {index}:", "max_tokens": 6, "seed": index},
                                      timeout=120)
                code = response.json().get("error", {}).get("code") if response.status_code != 200 else None
                outcome = ("ok", response.status_code, code)
            with lock:
                results.append((index, outcome))

    # The queue bound, watched from outside while the load runs: never more than 4 waiting.
    waiting = []
    done = threading.Event()

    def watch():
        while not done.is_set():
            for line in httpx.get(small_server.base + "/metrics", timeout=30).text.splitlines():
                if line.startswith("specula:num_requests_waiting "):
                    waiting.append(int(line.split()[1]))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    watcher.join()
    assert len(waiting) > 10 and max(waiting) <= 4 and max(waiting) > 0
    assert sorted(i for i, _ in results) == list(range(200))
    for index, (kind, status, detail) in results:
        if kind == "malformed":
            assert (status, detail) == (400, "messages"), index
        elif kind == "ok":
            assert status == 200 or (status, detail) == (503, "queue_full"), (index, status, detail)
        else:
            assert status in (200, 503), (index, status)
    assert sum(1 for _, (k, s, _) in results if k == "ok" and s == 200) > 0
    assert httpx.get(small_server.base + "/health").status_code == 200
    metrics = httpx.get(small_server.base + "/metrics").text
    assert "specula:num_requests_waiting 0" in metrics
    # Memory: the mapped model file, its repacked weights (about as large), the 1024-token caches of each of the
    # two slots (keys and values of 30 layers × 192 floats a row: 47 MB a slot), and 512 MiB for the runtime,
    # buffers and connections.
    model_bytes = SMALL.stat().st_size
    cache_bytes = 2 * 30 * 192 * 4 * 1024
    assert small_server.peak_memory_bytes() < 2 * model_bytes + 2 * cache_bytes + 512 * 2**20


def test_draft_speculation_keeps_the_greedy_output(pair_server):
    prompt = "Write a Python function that checks whether a number is prime."
    expected = cli_text(TARGET, prompt, 64, "--chat")
    for speculative in [None, {"mode": "off"}, {"mode": "draft", "n_max": 5},
                        {"mode": "draft", "tree": "binary:3", "verifier": "spechub"}, {"n_max": 0}]:
        extra = {"speculative": speculative} if speculative is not None else {}
        reply = client(pair_server).chat.completions.create(
            model="any", messages=[{"role": "user", "content": prompt}], max_tokens=64, temperature=0,
            extra_body=extra)
        assert reply.choices[0].message.content == expected, speculative
        report = reply.model_extra["specula"]
        timings = reply.model_extra["timings"]
        assert timings["predicted_n"] == reply.usage.completion_tokens
        if speculative is None or speculative.get("mode") == "draft":
            assert report["drafter"] == "model"
        else:
            assert report["drafter"] == "none" and report["tokens_per_pass"] == 1


def test_sigterm_ends_open_streams_and_exits():
    server = Server("--model", str(SMALL), "--ctx-size", "2048")
    sock = post_raw(server, "/v1/chat/completions", {
        "messages": [{"role": "user", "content": "Write a very long story."}], "max_tokens": 1500,
        "temperature": 0, "stream": True, "speculative": {"mode": "off"}})
    data = read_events(sock, 2)
    server.process.send_signal(15)
    sock.settimeout(60)
    while not data.endswith(b"data: [DONE]\n\n") and not data.endswith(b"0\r\n\r\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    sock.close()
    assert b"data: [DONE]" in data
    assert b'"finish_reason":"stop"' in data
    assert server.stop() == 0


def test_audit_compares_speculation_with_plain_decoding(small_server, pair_server):
    # T = 0: the pinned pair's draft chains give plain decoding's tokens.
    greedy = httpx.post(pair_server.base + "/v1/specula/audit", json={
        "messages": [{"role": "user", "content": "Write a Python function that adds two numbers."}],
        "max_tokens": 32, "temperature": 0, "speculative": {"mode": "draft", "n_max": 4}}, timeout=300).json()
    assert greedy["identical"] is True and greedy.get("first_divergence") is None
    assert greedy["tokens"] == 32 and greedy["plain_text"] == greedy["speculative_text"]
    # T > 0: the first two tokens' law, 200 samples each way (a fixed seed: the same verdict every run).
    sampled = httpx.post(small_server.base + "/v1/specula/audit", json={
        "prompt": "The weather today is", "max_tokens": 2, "temperature": 1, "top_k": 4, "seed": 11,
        "samples": 200, "speculative": {"mode": "ngram", "n_max": 3}}, timeout=300).json()
    assert sampled["samples"] == 200 and sampled["distinct_sequences"] > 1
    assert sampled["passed"] is True and sampled["p_value"] >= 1e-3
    refused = httpx.post(small_server.base + "/v1/specula/audit", json={
        "prompt": "x", "speculative": {"mode": "off"}}, timeout=30)
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "speculative"
