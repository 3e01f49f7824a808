"""A learner who waits behind others sees their place in the model queue (Gradio's status tracker)."""
import re

import pytest
from gradio_client import Client

from tests.test_browser import app_url, browser, page, send_chat  # noqa: F401  (the browser fixtures)

pytestmark = [pytest.mark.model, pytest.mark.browser]


def test_a_waiting_learner_sees_their_place_in_the_queue(page, app_url, tmp_path):  # noqa: F811
    # Two other learners' questions (grounded answers, the longest model calls) hold the one model slot.
    client = Client(app_url, verbose=False)
    busy = [client.submit(q, api_name="/chat") for q in ("What does the temperature setting do?",
                                                         "What is few-shot prompting?")]
    try:
        send_chat(page, "What is a delimiter?")
        # Gradio's status tracker on the chat: "queue: <place>/<waiting> | <seconds>" until the answer starts.
        status = page.get_by_text(re.compile(r"queue: \d+/\d+"))
        status.first.wait_for(timeout=30_000)
        page.screenshot(path=str(tmp_path / "queued.png"))
    finally:
        for job in busy:
            job.cancel()
        client.close()
