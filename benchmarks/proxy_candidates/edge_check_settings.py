"""The gateway's settings with the edge-check prototype's URLs (benchmarks/proxy_candidates/edge_check.py)."""

from gateway_project.settings import *  # noqa: F403 - the gateway exactly, one URLconf apart

ROOT_URLCONF = "benchmarks.proxy_candidates.edge_check"
