"""Tutoring: what to do with a learner's message (moves), graduated hints, and sessions kept for the API."""
