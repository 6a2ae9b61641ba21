"""The web console: runs, an approvals inbox and a ledger explorer (FastAPI + Jinja2 + htmx, no CDN)."""
