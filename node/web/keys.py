"""Typed application keys (aiohttp ``AppKey``) shared by the web modules."""

from __future__ import annotations

from aiohttp import web

from ..runtime import Node

NODE_KEY = web.AppKey("node", Node)
