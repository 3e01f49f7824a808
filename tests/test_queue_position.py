"""A learner who waits behind others sees their place in the model queue (Gradio's status tracker)."""
import re

import pytest
from gradio_client import Client

from tests.test_browser import app_url, browser, page, send_chat  # noqa: F401  (the browser fixtures)

pytestmark = [pytest.mark.model, pytest.mark.browser]

# A reply that cannot end early: 1,024 tokens (the Playground's cap) hold the one model slot for 9-20 s on the
# CPU with llama.cpp (~50-110 tok/s), ~60 s with transformers; two of them keep a chat question queued long enough
# to see its place, however fast the back-end.
LONG_RUN = ("", "Count from 1 to 5000, separated by commas.", 1024, 0, 50, 0.95, 1.0, 0, 0, "", -1)


def test_a_waiting_learner_sees_their_place_in_the_queue(page, app_url, tmp_path):  # noqa: F811
    # Another learner's three Playground runs: one holds the model, two wait; the chat question queues behind.
    client = Client(app_url, verbose=False)
    busy = [client.submit(*LONG_RUN, api_name="/playground") for _ in range(3)]
    try:
        send_chat(page, "What is a delimiter?")
        # Gradio's status tracker on the chat: "queue: <place>/<waiting> | <seconds>" until the answer starts.
        status = page.get_by_text(re.compile(r"queue: \d+/\d+"))
        status.first.wait_for(timeout=30_000)
        page.screenshot(path=str(tmp_path / "queued.png"))
    finally:
        for job in busy:
            try:
                job.cancel()  # frees the model for the tests after this one
            except Exception:  # a cancel that times out on a loaded machine changes nothing here
                pass
        client.close()
