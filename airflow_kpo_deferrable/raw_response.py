"""Raw ``kubernetes_asyncio`` responses (``_preload_content=False``): the status check the client skips for them.

Why: with ``_preload_content=False`` kubernetes_asyncio hands back the aiohttp response without looking at its
status. The watcher and the async log reader read bodies in chunks this way, so both need the same check: a non-2xx
answer becomes ``api_rules.ApiStatusError`` (status, body, Retry-After) and the connection is released.
"""

from __future__ import annotations

import aiohttp

from airflow_kpo_deferrable.api_rules import ApiStatusError, parse_retry_after

ERROR_BODY_BYTES = 64 * 1024


async def raise_for_status(response: aiohttp.ClientResponse) -> None:
    """Return for a 2xx answer; else release the connection and raise ``ApiStatusError``."""
    if 200 <= response.status < 300:
        return
    body = (await response.content.read(ERROR_BODY_BYTES)).decode("utf-8", "replace")
    response.release()
    raise ApiStatusError(response.status, body, parse_retry_after(response.headers.get("Retry-After")))
