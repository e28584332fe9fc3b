"""What a user of `tether serve` sees (issue 12, item 7)."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time

import httpx
import pytest


def test_an_unknown_status_filter_is_refused(server):
    reply = server.client().get("/api/runs", params={"status": "bogus"})
    assert reply.status_code == 400
    body = reply.json()
    assert "bogus" in body["message"] and "interrupted" in body["message"] and "completed" in body["message"]
    assert server.client().get("/api/runs", params={"status": "interrupted"}).status_code == 200
