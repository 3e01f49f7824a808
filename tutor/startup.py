"""Starting the app: a status page on the port within a second, while the model and the course load behind it.

`python app.py` and `tutor serve` call ``start_app()``. Loading takes from a few seconds (the embedded model,
cached) to minutes (Mistral-7B downloaded and quantized on a GPU Space), and a page that does not answer
looks broken. So before anything heavy is imported, a small standard-library HTTP server answers on the app's
port: any page gets a status ("Preparing the model: ...", seconds so far, about how long it takes), API calls
get 503 with Retry-After. When the tutor is built, the status server lets go of the port, Gradio takes it, and
the status page, which polls ``/startup-status``, reloads itself into the app.

Readiness, for health checks and scripts: ``GET /config`` answers 503 from the status page and 200 from the app.

Settings and the progress store are checked before the status page starts, so a wrong setting still stops
the app at once with one line (``error: ...``). When the model the app chose or was given cannot load, it
starts on the embedded default instead and the learner sees why (tutor.runtime.load_model_or_embedded).

Imports: the standard library and tutor.config only, at module level.
"""
from __future__ import annotations

import html
import json
import logging
import os
import socket
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tutor.config import EMBEDDED, Settings, redact_url

log = logging.getLogger(__name__)

STATUS_PATH = "/startup-status"
#: The first start of the embedded model on 2 CPU cores: re-quantize it, convert the adapter, index the
#: readings, import Gradio (measured 8-15 s); other models are downloaded first, which takes minutes.
FIRST_START = {"embedded": "about 15 s", "other": "a few minutes the first time (download and conversion)"}


class StartupStatus:
    """What the app is doing before it can serve, shared by the loader and the status server's threads."""

    def __init__(self, model: str, expected: str):
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self.model, self.expected = model, expected
        self.step = "starting"

    def set(self, step: str) -> None:
        with self._lock:
            self.step = step
        log.info("startup: %s", step)

    def snapshot(self) -> dict:
        with self._lock:
            snapshot = {"ready": False, "step": self.step, "model": self.model, "expected": self.expected,
                        "seconds": round(time.monotonic() - self.started)}
        return {**snapshot, "line": status_line(snapshot)}  # the page shows the line as worded here


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Prompt-engineering tutor: starting</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#1f2937}}
#status{{font-size:1.2rem}} .muted{{color:#6b7280}}</style></head>
<body><main><h1>Prompt-engineering tutor</h1>
<p id="status" role="status" aria-live="polite">{status}</p>
<p class="muted">This page turns into the tutor by itself when the model is ready. Only the first start
of a machine prepares the model; later starts are quicker.</p></main>
<script>
function show(s) {{
  document.getElementById("status").textContent = s.line;
}}
async function poll() {{
  try {{
    const r = await fetch("{path}", {{cache: "no-store"}});
    const s = r.ok ? await r.json().catch(() => null) : null;
    if (s && s.ready === false) {{ show(s); }} else {{ location.reload(); return; }}
  }} catch (e) {{ /* between the status page and the app: the port is changing hands */ }}
  setTimeout(poll, 1000);
}}
setTimeout(poll, 1000);
</script></body></html>
"""


def status_line(snapshot: dict) -> str:
    return (f"Preparing the model {snapshot['model']}: {snapshot['step']} ({snapshot['seconds']} s so far; "
            f"{snapshot['expected']}).")


def is_ready(url: str, timeout: float = 5) -> bool:
    """Whether the app at ``url`` (ending in /) serves: its /config answers 200 (503 from the status page)."""
    try:
        with urllib.request.urlopen(url + "config", timeout=timeout) as response:
            return response.status == 200
    except OSError:  # refused, timed out, or an HTTP error such as the status page's 503
        return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, handler):
        host = host.strip("[]")
        if ":" in host:  # an IPv6 address such as "::", as Gradio accepts it
            self.address_family = socket.AF_INET6
        super().__init__((host, port), handler)


class StatusServer:
    """The status page on (host, port) in a background thread until ``close()``."""

    def __init__(self, host: str, port: int, status: StartupStatus):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the name http.server calls)
                snapshot = status.snapshot()
                if self.path.split("?")[0] == STATUS_PATH:
                    self._send(200, "application/json", json.dumps(snapshot))
                elif self.path.startswith(("/gradio_api", "/config", "/info", "/queue", "/upload", "/file")):
                    self._not_yet()
                else:
                    page = PAGE.format(status=html.escape(status_line(snapshot)), path=STATUS_PATH)
                    self._send(200, "text/html; charset=utf-8", page)

            def do_POST(self):  # noqa: N802
                self._not_yet()

            def _not_yet(self):
                """An API call before the app is up: 503, with when to try again."""
                self._send(503, "application/json", json.dumps(
                    {"error": f"The tutor is starting. {status_line(status.snapshot())} Try again in a few seconds."}),
                    retry=True)

            do_HEAD = do_GET  # noqa: N815

            def _send(self, code: int, kind: str, body: str, retry: bool = False):
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                if retry:
                    self.send_header("Retry-After", "5")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def log_message(self, format, *args):  # the app's log, at debug level, not stderr
                log.debug("status page: " + format, *args)

        self.server = _Server(host, port, Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="startup-status", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def address() -> tuple[str, int]:
    """Where the app listens: Gradio's own variables (GRADIO_SERVER_NAME, GRADIO_SERVER_PORT), same defaults."""
    host = os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")
    try:
        port = int(os.environ.get("GRADIO_SERVER_PORT", "7860"))
    except ValueError:
        raise SystemExit(f"error: GRADIO_SERVER_PORT={os.environ['GRADIO_SERVER_PORT']!r} is not a port number.")
    return host, port


def _timings_file(settings: Settings) -> Path:
    return settings.data_dir / "startup.json"


def expected_time(settings: Settings) -> str:
    """About how long loading takes: the last start of this model on this machine, else a first-start figure."""
    try:
        seconds = json.loads(_timings_file(settings).read_text())[settings.model]
        return f"about {max(1, round(seconds))} s, as the last start took"
    except (OSError, ValueError, KeyError, TypeError):
        return FIRST_START["embedded" if settings.model == EMBEDDED else "other"]


def remember_time(settings: Settings, seconds: float) -> None:
    path = _timings_file(settings)
    try:
        data = json.loads(path.read_text()) if path.is_file() else {}
        data = data if isinstance(data, dict) else {}
        data[settings.model] = round(seconds, 1)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1))
    except (OSError, ValueError):
        log.warning("could not write %s; the next start shows a rough estimate", path)


def start_app(settings: Settings | None = None) -> None:
    """Serve the status page, build the tutor, hand the port to the Gradio app, and serve until stopped.
    ``settings``: read from the environment when not given (app.py); the CLI passes the ones it read."""
    from tutor.errors import TutorError

    try:
        settings = settings or Settings.from_env()
        logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        from tutor.progress import open_progress

        progress = open_progress(settings)  # a wrong TUTOR_DATABASE_URL fails here, in seconds
    except TutorError as exc:
        raise SystemExit(f"error: {exc}") from None
    host, port = address()
    shown = "SmolLM2-135M-Instruct (built in)" if settings.model == EMBEDDED else redact_url(settings.model)
    status = StartupStatus(shown, expected_time(settings))
    try:
        server = StatusServer(host, port, status)
    except OSError as exc:
        raise SystemExit(f"error: cannot listen on {host}:{port} ({exc.strerror or exc}); set GRADIO_SERVER_NAME "
                         "to an address of this machine and GRADIO_SERVER_PORT to a free port.") from None
    print(f"Starting: the status page is at http://{host}:{port} until the tutor is ready.", flush=True)
    try:
        status.set("loading the web framework")
        from tutor import ui
        from tutor.runtime import build_tutor

        tutor = build_tutor(settings, progress=progress, fallback=True, on_step=status.set)
        status.set("building the page")
        demo = ui.build_app(tutor)
    except TutorError as exc:
        server.close()
        raise SystemExit(f"error: {exc}") from None
    except BaseException:
        server.close()
        raise
    if not tutor.notice:  # a fallback's time says nothing about the model that was asked for
        remember_time(settings, time.monotonic() - status.started)
    server.close()
    ui.launch(demo, server_name=host, server_port=port)
