"""``do_xcom_push``: reading the base container's result from the XCom sidecar over exec, then stopping the sidecar.

Modules: ``result`` (pure: the commands, the size limit, parsing and its errors), ``sync`` (the worker's reader,
``kubernetes.stream``) and ``aio`` (the same for the triggerer, kubernetes_asyncio's ``WsApiClient``). The pod shape
(sidecar, volume) is ``podspec.xcom``.
"""
