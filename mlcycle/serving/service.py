"""The scoring service: every model of the catalog answered by its ``champion``, over HTTP + JSON.

- ``POST /v1/models/<model>/predict`` with one request (a JSON object) or ``{"flights": [...]}``
  (at most ``max_batch``): every answer names the model, the registered name, the version and a
  request id; a batch is answered by one version, whole.
- ``GET /health``: which version each model serves, whether it is the registry's champion of the
  moment, and why not (``ok``; ``degraded``: answering, not all with the champion of the moment;
  ``unavailable``, 503: a model has nothing to answer with); ``GET /metrics``: Prometheus' text format.
- A bearer token is needed for the predictions (401 without it or with another one).

The registry is followed (``Follower``): when ``champion`` moves, the new version is read in the
background and takes over between two requests; one that fails to load leaves the current one
serving, and ``/health`` and the log say why; the MLflow server being down changes nothing for the
versions loaded. While a challenger waits for its sign-off (the ``challenger`` alias), every
request is also scored with it, in the shadow: its answer is logged, never returned.

Every request is logged, append-only, per model and day
(``<data root>/models/<model>/requests/ds=D/<process>.jsonl``): what was asked, the features, the
champion's answer and the shadow's, for monitoring to join with what happened.
"""

from __future__ import annotations

import functools
import hmac
import logging
import operator
import os
import socket
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from mlcycle.serving.features import BatchRefused, FeatureStore

log = logging.getLogger("mlcycle.serving")

MAX_BODY = 4 * 1024 * 1024
# JSON in and out (the request, the answer, the log's lines) by msgspec: a batch's thousand log
# lines are most of the time of its answer with the standard library's encoder
_ENCODE = msgspec.json.Encoder(enc_hook=str).encode
_DECODE = msgspec.json.Decoder().decode
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(frozen=True)
class Served:
    version: int
    engine: object
    loaded_at: float


@dataclass
class Slot:
    """One model: the version it serves, the shadow, and what went wrong last."""

    model: object  # mlcycle.specs.Model
    champion: Served | None = None
    shadow: Served | None = None
    wanted: int | None = None  # the registry's champion, last seen
    problem: str | None = None


class RequestLog:
    """Append-only JSON lines per model and day, one file per process. A line is one request (one
    flight or a batch) of one day, column by column::

        {"request_id": ..., "at": <seconds since the epoch>, "flights": <how many>,
         "fields": {<field>: [<value of each flight>, ...], ...},
         "features": {<feature>: [...], ...},
         "version": <the champion's version>, "predictions": [...],
         "shadow_version": <the challenger's, or null>, "shadow_predictions": [... or null]}

    A line is written whole and flushed before the answer leaves, so a restart loses nothing
    answered."""

    KEEP_OPEN = 16

    def __init__(self, data_root: str | Path):
        self.data_root = Path(data_root)
        self.name = f"{socket.gethostname()}-{os.getpid()}.jsonl"
        self._files: OrderedDict[tuple[str, str], object] = OrderedDict()  # the days written lately
        self._lock = threading.Lock()

    def write(
        self,
        model: str,
        request_id: str,
        fields: list[dict],
        features: dict[str, list],
        answered: tuple[int, list[float]],
        shadow: tuple[int, list[float]] | None = None,
    ) -> None:
        """One request's flights (``fields``, in order; ``features`` column by column), its
        answers ``(version, predictions)`` and the shadow's, a line per day the flights are of."""
        at = time.time()
        names = list(fields[0])
        by_field = {name: list(map(operator.itemgetter(name), fields)) for name in names}
        days = by_field["ds"]
        lines = []
        for ds in dict.fromkeys(days):  # the days in the order first asked
            if days.count(ds) == len(days):  # all of one day: the columns as they are
                pick = _whole
            else:
                positions = [i for i, d in enumerate(days) if d == ds]
                pick = functools.partial(_some, positions)
            record = {
                "request_id": request_id,
                "at": at,
                "flights": days.count(ds),
                "fields": {n: pick(v) for n, v in by_field.items()},
                "features": {n: pick(v) for n, v in features.items()},
                "version": answered[0],
                "predictions": pick(answered[1]),
                "shadow_version": shadow[0] if shadow else None,
                "shadow_predictions": pick(shadow[1]) if shadow else None,
            }
            lines.append((ds, _ENCODE(record) + b"\n"))
        with self._lock:
            for ds, text in lines:
                handle = self._handle(model, ds)
                handle.write(text)
                handle.flush()

    def _handle(self, model: str, ds: str):
        handle = self._files.get((model, ds))
        if handle is None:
            folder = self.data_root / "models" / model / "requests" / f"ds={ds}"
            folder.mkdir(parents=True, exist_ok=True)
            handle = open(folder / self.name, "ab")  # noqa: SIM115 (kept open)
            self._files[(model, ds)] = handle
            while len(self._files) > self.KEEP_OPEN:  # requests spread over many days
                self._files.popitem(last=False)[1].close()
        self._files.move_to_end((model, ds))
        return handle

    def close(self) -> None:
        with self._lock:
            for handle in self._files.values():
                handle.close()
            self._files.clear()


def _whole(values: list) -> list:
    return values


def _some(positions: list[int], values: list) -> list:
    return [values[i] for i in positions]


def resident_bytes() -> int | None:
    """This process's resident memory (Linux), as Prometheus' process collector reports it."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class Metrics:
    requests: dict = field(default_factory=dict)  # (model, code) -> count
    rows: dict = field(default_factory=dict)  # model -> flights answered
    latency: dict = field(default_factory=dict)  # model -> [bucket counts..., sum, count]
    lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, model: str, code: int, seconds: float, rows: int) -> None:
        with self.lock:
            self.requests[(model, code)] = self.requests.get((model, code), 0) + 1
            self.rows[model] = self.rows.get(model, 0) + rows
            counts = self.latency.setdefault(model, [0] * len(BUCKETS) + [0.0, 0])
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    counts[i] += 1
            counts[-2] += seconds
            counts[-1] += 1

    def text(self, slots: dict[str, Slot]) -> str:
        lines = [
            "# HELP mlcycle_serving_requests_total Prediction requests by model and HTTP status.",
            "# TYPE mlcycle_serving_requests_total counter",
        ]
        with self.lock:
            for (model, code), n in sorted(self.requests.items()):
                lines.append(f'mlcycle_serving_requests_total{{model="{model}",code="{code}"}} {n}')
            lines += [
                "# HELP mlcycle_serving_errors_total Prediction requests answered with an error.",
                "# TYPE mlcycle_serving_errors_total counter",
            ]
            errors: dict[str, int] = {}
            for (model, code), n in self.requests.items():
                if code >= 400:
                    errors[model] = errors.get(model, 0) + n
            for model in sorted(slots):
                lines.append(f'mlcycle_serving_errors_total{{model="{model}"}} {errors.get(model, 0)}')
            lines += [
                "# HELP mlcycle_serving_flights_total Flights answered.",
                "# TYPE mlcycle_serving_flights_total counter",
            ]
            for model, n in sorted(self.rows.items()):
                lines.append(f'mlcycle_serving_flights_total{{model="{model}"}} {n}')
            lines += [
                "# HELP mlcycle_serving_latency_seconds Time to answer a prediction request.",
                "# TYPE mlcycle_serving_latency_seconds histogram",
            ]
            for model, counts in sorted(self.latency.items()):
                for bound, n in zip(BUCKETS, counts, strict=False):
                    lines.append(
                        f'mlcycle_serving_latency_seconds_bucket{{model="{model}",le="{bound}"}} {n}'
                    )
                lines.append(
                    f'mlcycle_serving_latency_seconds_bucket{{model="{model}",le="+Inf"}} {counts[-1]}'
                )
                lines.append(f'mlcycle_serving_latency_seconds_sum{{model="{model}"}} {counts[-2]}')
                lines.append(f'mlcycle_serving_latency_seconds_count{{model="{model}"}} {counts[-1]}')
        rss = resident_bytes()
        if rss is not None:
            lines += [
                "# HELP process_resident_memory_bytes Resident memory size in bytes.",
                "# TYPE process_resident_memory_bytes gauge",
                f"process_resident_memory_bytes {rss}",
            ]
        lines += [
            "# HELP mlcycle_serving_version The version each model serves (0: none yet).",
            "# TYPE mlcycle_serving_version gauge",
        ]
        for name, slot in sorted(slots.items()):
            served = slot.champion.version if slot.champion else 0
            lines.append(f'mlcycle_serving_version{{model="{name}",role="champion"}} {served}')
            shadow = slot.shadow.version if slot.shadow else 0
            lines.append(f'mlcycle_serving_version{{model="{name}",role="shadow"}} {shadow}')
        return "\n".join(lines) + "\n"


class Scorer:
    """The models, their versions, the features and the log, without the HTTP."""

    def __init__(self, models: list, data_root: str | Path, load, aliases, max_batch: int = 1000):
        """``load(model, version)`` gives an engine; ``aliases(models)`` gives, in one look at the
        registry, each model's ``(champion, challenger)`` versions by name (None where unset)."""
        self.slots = {m.name: Slot(m) for m in models}
        self.load, self.aliases = load, aliases
        self.max_batch = max_batch
        self.stores: dict[str, FeatureStore] = {}
        for m in models:
            if m.usecase.name not in self.stores:
                self.stores[m.usecase.name] = FeatureStore(data_root, m.usecase)
        self.log = RequestLog(data_root)
        self.metrics = Metrics()
        self.registry_problem: str | None = None
        self.last_look: float | None = None

    # ---------------------------------------------------------------------------- the registry
    def follow_once(self) -> None:
        """Look at the registry once; load what changed; never stop serving what is loaded."""
        try:
            found = self.aliases([slot.model for slot in self.slots.values()])
        except Exception as exc:  # the registry is down or refuses: keep what is loaded
            self.registry_problem = f"the registry did not answer: {exc}"
            log.warning("%s", self.registry_problem)
            return
        for name, slot in self.slots.items():
            champion, challenger = found.get(name, (None, None))
            slot.wanted = champion
            slot.champion = self._bring(slot, slot.champion, champion, "champion")
            shadow = challenger if challenger not in (None, champion) else None
            slot.shadow = self._bring(slot, slot.shadow, shadow, "shadow")
        self.registry_problem = None
        self.last_look = time.time()

    def _bring(self, slot: Slot, current: Served | None, version: int | None, role: str) -> Served | None:
        if version is None:
            if role == "champion" and current is not None:
                return current  # no champion any more: keep answering with the last one
            return None
        if current is not None and current.version == version:
            if role == "champion":
                slot.problem = None
            return current
        try:
            engine = self.load(slot.model, version)
        except Exception as exc:
            problem = f"version {version} ({role}) failed to load: {type(exc).__name__}: {exc}"
            if role == "champion":
                slot.problem = problem
            log.error(
                "%s: %s; %s",
                slot.model.name,
                problem,
                "still serving " + (f"version {current.version}" if current else "nothing"),
            )
            return current
        log.info("%s: now serving version %s as %s", slot.model.name, version, role)
        if role == "champion":
            slot.problem = None
        return Served(version, engine, time.time())

    def health(self) -> dict:
        models = {}
        for name, slot in self.slots.items():
            serving = slot.champion.version if slot.champion else None
            models[name] = {
                "registered_name": slot.model.registered_name,
                "version": serving,
                "champion": slot.wanted,
                "current": serving is not None and serving == slot.wanted,
                "shadow": slot.shadow.version if slot.shadow else None,
                "problem": slot.problem,
            }
        # unavailable: a model has nothing to answer with (503, a probe may act on it);
        # degraded: every model answers, but not all with the registry's champion of the moment,
        # or the registry did not answer (200: restarting would not help)
        if any(m["version"] is None for m in models.values()):
            status = "unavailable"
        elif self.registry_problem or not all(m["current"] for m in models.values()):
            status = "degraded"
        else:
            status = "ok"
        return {
            "status": status,
            "models": models,
            "registry": self.registry_problem or "reachable",
            "last_look": self.last_look,
        }

    # ---------------------------------------------------------------------------- answers
    def predict(self, name: str, body) -> tuple[int, dict]:
        request_id = uuid.uuid4().hex
        slot = self.slots.get(name)
        if slot is None:
            return 404, _error(
                request_id, "model", f"no model {name!r}: one of {', '.join(sorted(self.slots))}"
            )
        served, shadow = slot.champion, slot.shadow  # read once: one version answers the batch
        if served is None:
            return 503, _error(request_id, "model", f"{name} has no champion loaded yet")
        single = not (isinstance(body, dict) and "flights" in body)
        flights = [body] if single else body["flights"]
        if not isinstance(flights, list) or not flights:
            return 400, _error(request_id, "flights", "must be a non-empty list of requests")
        if len(flights) > self.max_batch:
            return 413, _error(
                request_id, "flights", f"holds {len(flights)} requests, at most {self.max_batch}"
            )
        store = self.stores[slot.model.usecase.name]
        try:
            fields, columns = store.batch(flights)  # each day's views read once
        except BatchRefused as exc:
            field_name, rule = exc.error.field, exc.error.rule
            where = field_name if single else f"flights[{exc.index}].{field_name}"
            return 422 if field_name != "request" else 400, _error(request_id, where, rule)
        predictions = served.engine.predict(columns).tolist()
        shadowed = shadow.engine.predict(columns).tolist() if shadow is not None else None
        self.log.write(
            name,
            request_id,
            fields,
            columns,
            (served.version, predictions),
            (shadow.version, shadowed) if shadow is not None else None,
        )
        answer = {
            "model": name,
            "registered_name": slot.model.registered_name,
            "version": served.version,
            "request_id": request_id,
        }
        if single:
            answer["prediction"] = predictions[0]
        else:
            answer["predictions"] = predictions
        return 200, answer


def _error(request_id: str, field_name: str, rule: str) -> dict:
    return {"request_id": request_id, "error": {"field": field_name, "rule": rule}}


class Follower(threading.Thread):
    """Looks at the registry every ``interval`` seconds."""

    def __init__(self, scorer: Scorer, interval: float = 1.0):
        super().__init__(name="registry-follower", daemon=True)
        self.scorer, self.interval = scorer, interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.scorer.follow_once()
            except Exception:  # noqa: BLE001 (the follower must outlive any one look)
                log.exception("registry look failed")
            self.stopped.wait(self.interval)


class App:
    """The HTTP side, as an ASGI application: the routes, the token, the body limit. Run by
    uvicorn on its own event loop (``Server``); a prediction is computed on the loop itself, between
    two reads of the sockets: no thread per connection, no lock handed between threads."""

    def __init__(self, scorer: Scorer, token: str):
        self.scorer = scorer
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        method, path = scope["method"], scope["path"]
        if method == "GET":
            if path == "/health":
                health = self.scorer.health()
                code, body, kind = 503 if health["status"] == "unavailable" else 200, health, JSON
            elif path == "/metrics":
                code, body, kind = 200, self.scorer.metrics.text(self.scorer.slots), PROMETHEUS
            else:
                code, body, kind = 404, {"error": {"field": "path", "rule": "GET /health or /metrics"}}, JSON
            await _respond(send, code, body, kind)
            return
        parts = path.strip("/").split("/")
        model = (
            parts[2]
            if method == "POST"
            and len(parts) == 4
            and parts[:2] == ["v1", "models"]
            and parts[3] == "predict"
            else None
        )
        code, answer, rows = await self._answer(scope, receive, model)
        await _respond(send, code, answer, JSON)
        self.scorer.metrics.observe(model or "?", code, time.perf_counter() - started, rows)

    async def _answer(self, scope, receive, model):
        request_id = uuid.uuid4().hex
        headers = dict(scope["headers"])
        length = int(headers.get(b"content-length") or 0)
        if length > MAX_BODY:
            return 413, _error(request_id, "body", f"{length} bytes, at most {MAX_BODY}"), 0
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return 400, _error(request_id, "body", "the client went away"), 0
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
            if sum(map(len, chunks)) > MAX_BODY:
                return 413, _error(request_id, "body", f"more than {MAX_BODY} bytes"), 0
        if not hmac.compare_digest(headers.get(b"authorization", b""), self.expected):
            return 401, _error(request_id, "Authorization", "a bearer token of this service is needed"), 0
        if model is None:
            return 404, _error(request_id, "path", "POST /v1/models/<model>/predict"), 0
        try:
            parsed = _DECODE(b"".join(chunks))
        except (msgspec.DecodeError, ValueError, UnicodeDecodeError) as exc:
            return 400, _error(request_id, "body", f"not JSON: {exc}"), 0
        try:
            code, answer = self.scorer.predict(model, parsed)
        except Exception as exc:  # noqa: BLE001 (a request must never take the service down)
            log.exception("request %s failed", request_id)
            return 500, _error(request_id, "server", f"{type(exc).__name__}: {exc}"), 0
        rows = len(answer.get("predictions", [])) + ("prediction" in answer)
        return code, answer, rows


JSON, PROMETHEUS = b"application/json", b"text/plain; version=0.0.4"


async def _respond(send, code: int, payload, kind: bytes) -> None:
    body = payload.encode() if isinstance(payload, str) else _ENCODE(payload)
    await send(
        {
            "type": "http.response.start",
            "status": code,
            "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Server:
    """uvicorn serving ``App`` on a socket bound here (so port 0 is known before it serves), with
    its fast parts (uvloop, httptools) and a listen backlog for many clients arriving at once."""

    BACKLOG = 1024

    def __init__(self, app: App, host: str, port: int):
        import uvicorn

        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((host, port))
        self.socket.listen(self.BACKLOG)
        self.server_address = self.socket.getsockname()
        config = uvicorn.Config(
            app,
            loop="uvloop",
            http="httptools",
            lifespan="off",
            access_log=False,
            log_config=None,
            backlog=self.BACKLOG,
            server_header=False,
            date_header=False,
        )
        self._uvicorn = uvicorn.Server(config)
        self._done = threading.Event()

    def serve_forever(self) -> None:
        try:
            self._uvicorn.run(sockets=[self.socket])
        finally:
            self._done.set()

    def shutdown(self, timeout: float = 10) -> None:
        self._uvicorn.should_exit = True
        self._done.wait(timeout)


def make_server(scorer: Scorer, host: str, port: int, token: str) -> Server:
    return Server(App(scorer, token), host, port)


def registry_aliases(tracking_uri: str):
    """``aliases(models)``: each model's (champion, challenger) versions, by the model's name, from
    one search of the registry (None where unset or the model is not registered yet)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)

    def aliases(models) -> dict[str, tuple[int | None, int | None]]:
        registered, token = {}, None
        while True:
            page = client.search_registered_models(max_results=1000, page_token=token)
            registered.update({m.name: m.aliases or {} for m in page})
            token = page.token
            if not token:
                break
        out = {}
        for model in models:
            found = registered.get(model.registered_name, {})
            out[model.name] = tuple(int(found[a]) if a in found else None for a in ("champion", "challenger"))
        return out

    return aliases


def main(argv=None) -> int:
    import argparse

    from mlcycle.config import settings as platform_settings
    from mlcycle.serving.versions import load_version
    from mlcycle.specs import catalog

    parser = argparse.ArgumentParser(description="The scoring service of every model's champion")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--data-root", default=None, help="default: the platform's data root")
    parser.add_argument("--tracking-uri", default=None, help="default: MLFLOW_TRACKING_URI")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between looks at the registry")
    parser.add_argument("--max-batch", type=int, default=1000)
    args = parser.parse_args(argv)

    token = os.environ.get("MLCYCLE_SERVING_TOKEN", "")
    token_file = os.environ.get("MLCYCLE_SERVING_TOKEN_FILE")
    if not token and token_file:
        token = Path(token_file).read_text().strip()
    if not token:
        parser.error("no token: set MLCYCLE_SERVING_TOKEN or MLCYCLE_SERVING_TOKEN_FILE")
    settings = platform_settings()
    data_root = args.data_root or settings.data_root
    uri = args.tracking_uri or settings.tracking_uri
    # a registry that does not answer must not hold a look for minutes: the loaded versions serve
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    cache = Path(data_root) / "serving" / "versions"
    models = list(catalog().models.values())
    scorer = Scorer(
        models,
        data_root,
        load=lambda model, version: load_version(uri, model.registered_name, version, cache),
        aliases=registry_aliases(uri),
        max_batch=args.max_batch,
    )
    scorer.follow_once()
    Follower(scorer, args.interval).start()
    server = make_server(scorer, args.host, args.port, token)
    log.info("serving %s on http://%s:%s", ", ".join(scorer.slots), args.host, server.server_address[1])
    try:
        server.serve_forever()
    finally:
        scorer.log.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
