"""The order service: the shop's webhook and the Starter Excel upload, over HTTP (Starlette).

Thin, like cli.py: each endpoint authenticates, parses, hands over to operations/orders.py,
and answers. A delivery is answered as soon as it is stored durably (202 new, 200 duplicate);
the worker thread processes it from the inventory's queue. Log lines name the delivery key,
the event and the HTTP status: never payer data, never a token.

Endpoints:

- ``POST /hooks/shop/{token}``: a shop delivery (form-encoded); the token is the secret
  path segment (``platform/shop-webhook-token``); a signature is required when
  ``platform/shop-signing-secret`` exists.
- ``GET /starter/{order_id}/{token}``: the German upload page linked in the order mail;
  ``POST`` the same path with the .xlsx as the body (or a multipart ``file`` field).
- ``GET /healthz``.
- ``/support/...``: the consent pages of support access (``service/support.py``).
"""

from __future__ import annotations

import html
import logging
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from ..domain.shop import MAX_BODY_BYTES, WebhookRejected
from ..errors import SmartpraxxError
from ..inventory.orders import OrderBook
from ..operations import orders
from ..operations.context import OpContext

log = logging.getLogger("smartpraxx.service")


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise WebhookRejected(413, "body too large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise WebhookRejected(413, "body too large")
        chunks.append(chunk)
    return b"".join(chunks)


def _reject(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": reason}, status_code=status)


class _OrderService:
    """The shop hook, the Starter Excel upload and the health check over one context."""

    def __init__(self, ctx: OpContext, worker: orders.Worker | None) -> None:
        self.ctx = ctx
        self.book = OrderBook(ctx.inventory)
        self.worker = worker

    async def shop_hook(self, request: Request) -> Response:
        token = str(request.path_params["token"])
        try:
            body = await _read_limited(request, MAX_BODY_BYTES)
            headers = {k.lower(): v for k, v in request.headers.items()}
            accepted = orders.accept_delivery(
                self.ctx, self.book, token, headers, body, request.headers.get("content-type", ""))
        except WebhookRejected as rej:
            log.info("shop delivery refused: %s %s", rej.status, rej.reason)
            return _reject(rej.status, rej.reason)
        except ClientDisconnect:
            return Response(status_code=400)
        status = 200 if accepted.duplicate else 202
        log.info("shop delivery %s stored (%s)", accepted.key,
                 "duplicate" if accepted.duplicate else "new")
        return JSONResponse({"ok": True, "delivery": accepted.key,
                             "duplicate": accepted.duplicate}, status_code=status)

    def _upload_allowed(self, request: Request) -> str | None:
        order_id = str(request.path_params["order_id"])
        if not orders.check_upload_token(self.ctx, order_id, str(request.path_params["token"])):
            return None
        return order_id if self.book.get_order(order_id) is not None else None

    async def upload_page(self, request: Request) -> Response:
        order_id = self._upload_allowed(request)
        if order_id is None:
            return _reject(404, "unknown upload link")
        safe = html.escape(order_id)
        return HTMLResponse(
            "<!doctype html><html lang=\"de\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>Starter-Excel hochladen – Bestellung {safe}</title></head><body>"
            f"<main><h1>Starter-Excel für Bestellung {safe}</h1>"
            "<form method=\"post\" enctype=\"multipart/form-data\">"
            "<label for=\"file\">Ausgefüllte Starter-Excel (.xlsx)</label> "
            "<input id=\"file\" name=\"file\" type=\"file\" accept=\".xlsx\" required> "
            "<button type=\"submit\">Hochladen und prüfen</button></form></main></body></html>")

    async def upload(self, request: Request) -> Response:
        order_id = self._upload_allowed(request)
        if order_id is None:
            return _reject(404, "unknown upload link")
        try:
            content = await _file_content(request)
            submission, spec = orders.check_submission(self.ctx, self.book, order_id, content)
        except WebhookRejected as rej:
            return _reject(rej.status, rej.reason)
        except SmartpraxxError as err:
            log.warning("upload for order %s failed: %s", order_id, err.message)
            return _reject(503 if err.exit_code == 1 else 422, err.message)
        if spec is None:
            log.info("upload for order %s: %d error(s), report mailed", order_id,
                     len(submission.errors))
            return JSONResponse(submission.to_dict(), status_code=422)
        if self.worker is None:
            return _reject(503, "no worker runs in this service")
        self.worker.submissions.put((order_id, spec))
        log.info("upload for order %s valid; provisioning queued", order_id)
        return JSONResponse({**submission.to_dict(), "queued": True}, status_code=202)

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"ok": True})


def create_app(ctx: OpContext, worker: orders.Worker | None = None) -> Starlette:
    """The ASGI app over one operation context (and the worker that processes the queue)."""
    from .support import routes as support_routes

    service = _OrderService(ctx, worker)
    return Starlette(routes=[
        *support_routes(ctx),
        Route("/hooks/shop/{token}", service.shop_hook, methods=["POST"]),
        Route("/starter/{order_id}/{token}", service.upload_page, methods=["GET"]),
        Route("/starter/{order_id}/{token}", service.upload, methods=["POST"]),
        Route("/healthz", service.healthz, methods=["GET"]),
    ])


async def _file_content(request: Request) -> bytes:
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=5)
        item: Any = form.get("file")
        if item is None or isinstance(item, str):
            raise WebhookRejected(422, "form field file is missing")
        data = await item.read(orders.MAX_UPLOAD_BYTES + 1)
        if len(data) > orders.MAX_UPLOAD_BYTES:
            raise WebhookRejected(413, "file too large")
        return bytes(data)
    return await _read_limited(request, orders.MAX_UPLOAD_BYTES)


def serve(ctx: OpContext, *, host: str, port: int) -> None:
    """Run the service with its worker until SIGINT/SIGTERM (uvicorn handles both)."""
    import uvicorn

    book = OrderBook(ctx.inventory)
    interrupted = orders.recover_interrupted(book)
    if interrupted:
        log.warning("%d order(s) were interrupted mid-provision and are marked for ops",
                    interrupted)
    ctx.secrets.ensure(orders.SHOP_TOKEN_SECRET)
    worker = orders.Worker(ctx)
    worker.start()
    try:
        uvicorn.run(create_app(ctx, worker), host=host, port=port, log_level="warning",
                    access_log=False, server_header=False, limit_concurrency=256)
    finally:
        worker.join()
