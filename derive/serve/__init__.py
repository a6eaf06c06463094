"""The checking page's server: HTTP (server), the request logic without HTTP
(api), and the worker processes that run each check under the time limit
(workers).  The page's own files are in ``derive/web/``."""
