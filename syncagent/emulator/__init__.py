"""A strict local Compass server: embedded default, test server and bench target.

Start it with `syncagent emulator` or in-process with `EmulatorServer` (server.py).
The request and response shapes follow compass-api.txt; where the reference is silent
the emulator follows docs/architecture.md. Modules, outside in:

    server, cli       lifecycle: uvicorn (httptools) on a thread; the command line
    app               the Starlette app, wrapped by the fault injector (faults)
    web, validate     API plumbing: auth, JSON bodies, {"errors": [...]} answers
    api_*, multipart  the Compass routes; completion and assembly finish uploads
    s3                presigned part PUTs and object downloads (Range, HEAD)
    admin             loopback-only test helpers under /_emulator/
    search, views, serialize, access, grants, records, metadata, vocabulary
                      queries, JSON shapes, permission checks (cached per user)
                      and reference data
    context, db, objects, signing, tokens, clock, stats, proxy_jobs, proxies,
    archive           state: SQLite via SQLAlchemy, files under objects/, keys;
                      archive tiers and restores timed by the clock
"""
