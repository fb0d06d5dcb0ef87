"""The gateway: the one process that owns a home (keys, catalog, lake, identity, audit).

It runs the governed session server-side and answers clients over Arrow Flight (a Unix socket
locally, TLS beyond the machine); see `server.py` for the Flight server, `calls.py` for what
every action works with (the home, the token tables, the caller checks), `run.py` for the process
(lock, operator credential, signals, idle exit), `tokens.py` for service tokens. Nothing
outside this package, `governance`, `compliance` and `source` opens the lake.
"""
