"""`doit serve`: a live web dashboard of the checkout (DESIGN §12).

`files` and `watch` read the state files and need nothing beyond orchlib; `app` and
`server` need the `web` extra (Starlette + uvicorn), imported only when the command runs.
"""
