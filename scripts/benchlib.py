"""What the HTTP benchmark scripts (scripts/bench-*.py) share: Spec-Bench prompts, starting a server and waiting for
its health, one streamed chat completion timed from the client's side, the server's metrics, the host facts,
percentiles and Student-t intervals. Imported by the scripts beside it (`python3 scripts/bench-x.py` puts this
directory first on the import path); its tests are scripts/test_benchlib.py.
"""
import functools
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import urllib.request

# Spec-Bench's conversation prompts: the first turns of its MT-Bench part.
CONVERSATION = ["writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities"]
DEFAULT_DATA = os.path.expanduser("~/.cache/specula/models/spec-bench.jsonl")



def load_records(path=DEFAULT_DATA, categories=None):
    """The Spec-Bench-format records of a JSON-lines file, those of `categories` only when given."""
    try:
        with open(path) as file:
            records = [json.loads(line) for line in file if line.strip()]
    except OSError as error:
        sys.exit(f"cannot read prompts {path}: {error.strerror} (scripts/fetch-models spec-bench installs them)")
    if categories is not None:
        records = [r for r in records if r.get("category") in categories]
    return records


def first_turn(record):
    """A record's first user turn (Spec-Bench `turns`, or a `prompt` field)."""
    turns = record.get("turns") or [record.get("prompt")]
    return turns[0]


def wait_healthy(port, process, name, log=None, tries=2400, pause=0.25):
    """Polls `GET /health` until it answers 200; exits naming `name` (and its log) if the process dies or never
    becomes healthy (tries × pause seconds)."""
    where = f"; see {log}" if log else ""
    for _ in range(tries):
        if process.poll() is not None:
            sys.exit(f"{name} exited with status {process.returncode}{where}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                if response.status == 200:
                    return
        except Exception:
            time.sleep(pause)
    process.kill()
    sys.exit(f"{name} did not become healthy in {tries * pause:.0f} s{where}")


def start_server(command, port, name, log):
    """Starts `command` (its stderr to `log`) and waits until it serves `port`."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    wait_healthy(port, process, name, log)
    return process


def stop_server(process, timeout=60):
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def chat_body(text, max_tokens, mode=None, stream=True):
    """A greedy chat completion of one user turn; `mode` is Specula's per-request speculation mode (None or
    "default": the server's default, and no `speculative` field, so any OpenAI-compatible server accepts it)."""
    body = {"messages": [{"role": "user", "content": text}], "max_tokens": max_tokens, "temperature": 0}
    if stream:
        body.update({"stream": True, "stream_options": {"include_usage": True}})
    if mode is not None and mode != "default":
        body["speculative"] = {"mode": mode}
    return body


def post_json(port, path, body, timeout=600):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


def stream_chat(port, body, timeout=1800, on_text=None):
    """Sends a streamed chat completion and times it here. Returns `ttft` (seconds to the first chunk with text),
    `arrivals` (seconds of every chunk with text; a chunk carrying several tokens counts once), `gaps` (between
    consecutive arrivals), `seconds` (the whole request), `tokens` (the final usage's completion tokens), `usage`,
    and `specula` (the server's own account in its last chunk, when it sends one). `on_text()` is called at each
    text chunk."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    arrivals = []
    usage = None
    report = None
    with urllib.request.urlopen(request, timeout=timeout) as response:
        for raw in response:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if any((choice.get("delta") or {}).get("content") for choice in chunk.get("choices", [])):
                arrivals.append(time.perf_counter() - start)
                if on_text is not None:
                    on_text()
            if chunk.get("usage"):
                usage = chunk["usage"]
            if chunk.get("specula"):
                report = chunk["specula"]
    return {"ttft": arrivals[0] if arrivals else None, "arrivals": arrivals,
            "gaps": [b - a for a, b in zip(arrivals, arrivals[1:])], "seconds": time.perf_counter() - start,
            "tokens": usage.get("completion_tokens") if usage else None, "usage": usage, "specula": report}


def server_metrics(port, prefix="specula:"):
    """The Prometheus samples at /metrics whose names start with `prefix` (prefix removed), as floats."""
    values = {}
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(prefix) and " " in line:
                name, value = line.rsplit(" ", 1)
                values[name[len(prefix):]] = float(value)
    return values


def host(threads=None):
    """The CPU model and core count (and the threads the run used, when given) for each record."""
    model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    facts = {"cpu": model, "cores": os.cpu_count()}
    if threads is not None:
        facts["threads"] = threads
    return facts


def percentile(values, q):
    """The q-quantile (0 ≤ q ≤ 1) by linear interpolation between order statistics; None when empty."""
    values = sorted(values)
    if not values:
        return None
    position = q * (len(values) - 1)
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def t_quantile(p, df):
    """The Student-t quantile at probability p (0.5 < p < 1) by bisection on its CDF (regularized incomplete beta
    by continued fraction)."""

    def incomplete_beta(a, b, x):
        if x <= 0:
            return 0.0
        if x >= 1:
            return 1.0
        front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x))
        if x > (a + 1) / (a + b + 2):
            return 1 - incomplete_beta(b, a, 1 - x)
        # Lentz's continued fraction.
        c, d = 1.0, 1 - (a + b) * x / (a + 1)
        d = 1 / (d if abs(d) > 1e-300 else 1e-300)
        result = d
        for m in range(1, 300):
            for numerator in (
                m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
            ):
                d = 1 + numerator * d
                d = 1 / (d if abs(d) > 1e-300 else 1e-300)
                c = 1 + numerator / c
                c = c if abs(c) > 1e-300 else 1e-300
                result *= c * d
            if abs(c * d - 1) < 1e-15:
                break
        return front * result / a

    def cdf(t):
        x = df / (df + t * t)
        tail = 0.5 * incomplete_beta(df / 2, 0.5, x)
        return 1 - tail if t > 0 else tail

    low, high = 0.0, 100.0
    for _ in range(200):
        middle = (low + high) / 2
        if cdf(middle) < p:
            low = middle
        else:
            high = middle
    return (low + high) / 2


@functools.lru_cache(maxsize=None)
def t975(df):
    """The Student-t 0.975 quantile at `df` degrees of freedom (exact to about 1e-12; nan below 1)."""
    if df < 1:
        return math.nan
    return t_quantile(0.975, df)


def interval(values):
    """The half width of the Student-t 95 % interval of the mean of `values` (n − 1 degrees of freedom)."""
    if len(values) < 2:
        return math.nan
    return t975(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
