"""The web monitor (``lakeshift monitor``): server-rendered pages, a JSON API and Prometheus
metrics over a control DB.  It reads and acts only through the public API (``lakeshift``):
no SQL here, no store is opened.  See docs/monitor.md."""
