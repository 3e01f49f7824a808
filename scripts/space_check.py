"""`make space-check`: start the app the way a Hugging Face Space does, and ask it one question.

1. Copy the repository's files (tracked, plus new files git does not ignore) into a fresh folder: a Space gets
   the repository and nothing else (no .venv, no .tutor-data, no model cache).
2. Create a fresh virtualenv there and `pip install -r requirements.txt`, as the Space's build does.
3. `python app.py` with no TUTOR_* variable set, on a free loopback port.
4. One chat question through gradio_client (from that virtualenv), answered by the embedded default.

Prints what each step took. Exit status 0 when the answer came back; 1 with the app's log otherwise. SPACE_CHECK_DIR=<folder> keeps the
folder (the copy, the virtualenv, app.log) afterwards; by default a temporary one is removed.
Standard library only: it runs under any python3 >= 3.11.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tutor.startup import is_ready  # noqa: E402  (standard library only, like this script)

QUESTION = "What is a delimiter in a prompt, and why use one?"
CLIENT = """
import sys, time
from gradio_client import Client
started = time.monotonic()
reply = Client(sys.argv[1], verbose=False).predict(sys.argv[2], [], "", api_name="/chat")  # "": a new session
print(f"{time.monotonic() - started:.1f}")
print(reply if isinstance(reply, str) else reply)
"""


def step(name: str, started: float) -> float:
    now = time.monotonic()
    print(f"space-check: {name}: {now - started:.0f} s", flush=True)
    return now


def copy_repository(target: Path) -> int:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True).stdout.decode().split("\0")
    count = 0
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
            count += 1
    return count


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    keep = bool(os.environ.get("SPACE_CHECK_DIR"))  # a folder of your own is kept for a look afterwards
    work = Path(os.environ.get("SPACE_CHECK_DIR") or tempfile.mkdtemp(prefix="space-check-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return check(work)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def check(work: Path) -> int:
    space, venv = work / "space", work / "venv"
    for folder in (space, venv):  # only what this script made: SPACE_CHECK_DIR may be a folder with other files
        shutil.rmtree(folder, ignore_errors=True)
    space.mkdir(parents=True)
    started = time.monotonic()
    print(f"space-check: copied {copy_repository(space)} files into {space}", flush=True)

    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-qq", "--disable-pip-version-check", "-r",
                    str(space / "requirements.txt")], check=True, cwd=space)
    t = step("fresh virtualenv from requirements.txt", started)

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    # What a Space's container has, less the network: no TUTOR_* variable. HF_HUB_OFFLINE because this machine
    # cannot reach the Hub; the embedded default needs no download either way.
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": os.environ.get("HOME", str(work)), "LANG": "C.UTF-8",
           "HF_HUB_OFFLINE": "1", "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port)}
    log = work / "app.log"
    with open(log, "wb") as out:
        app = subprocess.Popen([str(python), "app.py"], cwd=space, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        first_page = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and app.poll() is None and not is_ready(url):
            if first_page is None:
                try:
                    urllib.request.urlopen(url, timeout=2).close()
                    first_page = step("status page answering after", t)
                except OSError:
                    pass
            time.sleep(0.5)
        if not is_ready(url):
            print(f"space-check: FAILED, the app did not start (exit code {app.poll()}). Its log:\n"
                  + log.read_text()[-4000:], file=sys.stderr)
            return 1
        step("app ready after (python app.py, first start)", t)
        asked = subprocess.run([str(python), "-c", CLIENT, url, QUESTION], capture_output=True, text=True,
                               timeout=600, env={**env, "PATH": os.environ["PATH"]})
        # A real answer from the readings cites them ([1]); an error message does not.
        if asked.returncode != 0 or "[1]" not in asked.stdout:
            print(f"space-check: FAILED, no answer through gradio_client:\n{asked.stderr[-3000:]}\n"
                  f"app log:\n{log.read_text()[-3000:]}", file=sys.stderr)
            return 1
        seconds, _, answer = asked.stdout.partition("\n")
        step(f"answered one question through gradio_client in {seconds} s; total", started)
        print("space-check: the answer began: " + " ".join(answer.split()[:30]) + " ...")
        return 0
    finally:
        app.terminate()
        try:
            app.wait(timeout=20)
        except subprocess.TimeoutExpired:
            app.kill()


if __name__ == "__main__":
    sys.exit(main())
