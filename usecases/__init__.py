"""Use cases: one function per thing a user does (ask, train QA, train the encoder, evaluate,
upload a migration package, list and activate model versions).

The API routes (``api/routes``) and the CLI commands (``cli``) both call these and only
translate: HTTP or command-line arguments into a request record, the result record into a
response or a table. A use case takes its dependencies (settings, driver, runner, QA service)
as arguments, so that neither front end holds logic of its own that the other repeats.
"""
