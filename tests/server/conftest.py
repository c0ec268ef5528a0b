"""Starts `specula serve` on loopback for the client tests and stops it with SIGTERM (checking a clean exit)."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("SPECULA_BIN", ROOT / ".build" / "release" / "specula"))
MODELS = Path(os.environ.get("SPECULA_MODELS", Path.home() / ".cache" / "specula" / "models"))
SMALL = MODELS / "smollm2-135m-instruct-q4_1.gguf"
TARGET = MODELS / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
DRAFT = MODELS / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `specula serve` process."""

    def __init__(self, *args: str):
        for path in [BINARY] + [Path(a) for a in args if a.endswith(".gguf")]:
            if not path.exists():
                if os.environ.get("CI") == "true":
                    raise FileNotFoundError(path)
                pytest.skip(f"missing {path}")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(ROOT / ".build" / f"serve-{self.port}.log", "w")
        self.process = subprocess.Popen(
            [str(BINARY), "serve", "--port", str(self.port), *args],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 180
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"specula serve exited with {self.process.returncode}")
            try:
                if httpx.get(self.base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("specula serve did not become healthy in 180 s")
            time.sleep(0.2)

    def stop(self) -> int:
        """SIGTERM, then the exit code (the server must exit by itself)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise
        self.log.close()
        return self.process.returncode

    def peak_memory_bytes(self) -> int:
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmHWM")


@pytest.fixture(scope="module")
def small_server():
    # Two slots: the load test then sees requests batched, cancelled mid-batch and queued.
    server = Server("--model", str(SMALL), "--ctx-size", "1024", "--queue", "4", "-np", "2")
    yield server
    assert server.stop() == 0


@pytest.fixture(scope="module")
def pair_server():
    # One slot: a cancelled generation must free it for the next request.
    server = Server("-m", str(TARGET), "-md", str(DRAFT), "-c", "2048", "-np", "1")
    yield server
    assert server.stop() == 0
