"""The emulator's HTTP side: the ``/api/v1`` protocol over the store, and the kubelet's endpoints over a ``Node``.

Why a package: each module is one part of the API server's surface and imports only lower layers (the store, the
``logfile`` format, the ``Node`` protocol and the ``ExecTarget`` it hands out), never the emulator that assembles
them (``server``). Modules: ``requests`` (parsing and answers), ``resources`` (objects and collections), ``watch``,
``containers`` (which container a request means), ``logs``, ``exec``, ``discovery``, ``side_channel``, ``node``.
"""
