"""Fair queueing: no one client can fill the classroom's queue.

Gradio bounds the whole queue (``max_size``) but not what one client may put in it, so one browser tab or
script could take all the places and every learner behind it would be told the queue is full.
``limit_per_client`` wraps the queue's ``push`` (the one place a request joins the queue): a session that
already has ``per_client`` requests waiting is refused with a message, and everyone else keeps their place.

A client is its Gradio session (``session_hash``: one per browser tab, one per gradio_client ``Client``). Not
the network address: a whole class behind a school's router shares one address, and limiting by address would
give thirty learners four places. A script that invents a session per request is still bounded by
``TUTOR_QUEUE_SIZE``. Waiting requests are counted from the queue itself, so nothing needs cleaning up.
"""
from __future__ import annotations

import functools

import gradio as gr


def waiting(queue) -> list:
    """Requests in the queue that have not started."""
    return [event for q in queue.event_queue_per_concurrency_id.values() for event in q.queue]


def limit_per_client(demo: gr.Blocks, per_client: int) -> None:
    """Refuse a request from a session that already has ``per_client`` requests waiting. Call after queue()."""
    queue = demo._queue
    push = queue.push

    @functools.wraps(push)
    async def fair_push(body, request, username):
        session = getattr(body, "session_hash", None)
        mine = sum(1 for event in waiting(queue) if session and event.session_hash == session)
        if mine >= per_client:
            return (False, f"You already have {mine} requests waiting. Wait for an answer before sending more, "
                           "so everyone in the class gets a turn.", "queue_full")
        return await push(body, request, username)

    queue.push = fair_push
