"""Network profiles: named, sourced settings for both directions, read from TOML.

A profile file is a set of top-level tables, one per profile::

    ["5g-sa"]
    description = "..."
    source = "..."          # where the numbers come from
    seed = 1                # every random stream derives from it
    delay_ms = 4            # link fields here apply to both directions ...
    [ "5g-sa".uplink ]
    delay_ms = 6            # ... and a direction table overrides them

See docs/netsim.md for every field. Validation errors read
``<file>: profile '<name>', <direction>.<field>: expected <what>, got <value>``.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from .delay import DELAY_MODELS, DelayStage, create_delay_model
from .link import DEFAULT_OVERHEAD, create_link
from .loss import LOSS_MODELS, LossModel, LossStage, create_loss_model
from .outage import Blackout, OutageStage
from .queue import QUEUES, create_queue
from .rng import BlockDraws, make_rng
from .stage import Chain, Stage
from .trace import load_trace

DIRECTIONS = ("uplink", "downlink")
_META = ("description", "source", "seed")


@dataclass(frozen=True)
class LinkSpec:
    """One direction's impairments, validated; times in ms as in the file."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    distribution: str = "constant"
    correlation: float = 0.0
    reorder: bool = False
    pareto_alpha: float = 1.5
    delay_cap_ms: float = 10_000.0
    delay_file: Path | None = None
    loss: dict[str, Any] = field(default_factory=lambda: {"model": "none"})
    rate_mbps: float | None = None
    trace: Path | None = None
    overhead_bytes: int = DEFAULT_OVERHEAD
    queue: dict[str, Any] = field(default_factory=lambda: {"kind": "droptail"})
    outages: tuple[Blackout, ...] = ()
    random_outages: tuple[float, float] | None = None  # (mean interval s, duration s)

    @property
    def is_ideal(self) -> bool:
        return (
            self.delay_ms == 0
            and self.jitter_ms == 0
            and self.delay_file is None
            and self.loss.get("model") == "none"
            and self.rate_mbps is None
            and self.trace is None
            and not self.outages
            and self.random_outages is None
        )

    def loss_model(self) -> LossModel:
        """A fresh loss model from the ``loss`` table (its ``model`` key names it)."""
        opts = {k: v for k, v in self.loss.items() if k != "model"}
        return create_loss_model(self.loss["model"], **opts)

    def mean_loss(self) -> float:
        return self.loss_model().mean_loss()

    def build(self, seed: int, salt: str) -> Chain:
        """The stage chain for this direction: loss -> outage -> link -> delay."""
        stages: list[Stage] = []
        if self.loss["model"] != "none":
            stages.append(LossStage(self.loss_model(), BlockDraws(make_rng(seed, salt, "loss"))))
        if self.outages or self.random_outages:
            mean, dur = self.random_outages or (None, 0.0)
            stages.append(
                OutageStage(
                    list(self.outages),
                    mean_interval=mean,
                    duration=dur,
                    draws=BlockDraws(make_rng(seed, salt, "outage")),
                )
            )
        if self.rate_mbps is not None or self.trace is not None:
            qopts = {k: v for k, v in self.queue.items() if k != "kind"}
            queue = create_queue(self.queue["kind"], **qopts)
            stages.append(
                create_link(
                    "rate" if self.trace is None else "trace",
                    queue=queue,
                    rate_mbps=self.rate_mbps,
                    trace=self.trace,
                    overhead=self.overhead_bytes,
                )
            )
        if self.delay_ms > 0 or self.jitter_ms > 0 or self.delay_file is not None:
            model = create_delay_model(
                self.distribution,
                delay_ms=self.delay_ms,
                jitter_ms=self.jitter_ms,
                alpha=self.pareto_alpha,
                cap_ms=self.delay_cap_ms,
                file=self.delay_file,
            )
            stages.append(
                DelayStage(
                    model,
                    BlockDraws(make_rng(seed, salt, "delay")),
                    correlation=self.correlation,
                    reorder=self.reorder,
                )
            )
        return Chain(stages)


@dataclass(frozen=True)
class Profile:
    """A named network condition: both directions plus where the numbers come from."""

    name: str
    description: str
    source: str
    seed: int = 1
    uplink: LinkSpec = field(default_factory=LinkSpec)
    downlink: LinkSpec = field(default_factory=LinkSpec)

    def direction(self, name: str) -> LinkSpec:
        if name not in DIRECTIONS:
            raise ValueError(f"unknown direction {name!r}; known: {', '.join(DIRECTIONS)}")
        spec: LinkSpec = getattr(self, name)
        return spec

    def build_chain(self, direction: str) -> Chain:
        """A fresh chain for ``direction``, seeded from the profile's seed."""
        return self.direction(direction).build(self.seed, direction)

    def with_seed(self, seed: int) -> Profile:
        return replace(self, seed=seed)


class ProfileError(ValueError):
    """A profile file or name that cannot be used; the message says where and why."""


def _show(value: object) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


class _Reader:
    """Validates one profile's tables, naming the field in every error."""

    def __init__(self, source: str, profile: str, base: Path | None) -> None:
        self.source, self.profile, self.base = source, profile, base

    def fail(self, where: str, expected: str, got: object) -> ProfileError:
        return ProfileError(
            f"{self.source}: profile {self.profile!r}, {where}: "
            f"expected {expected}, got {_show(got)}"
        )

    def number(
        self,
        where: str,
        v: object,
        lo: float = 0.0,
        hi: float = math.inf,
        lo_open: bool = False,
        hi_open: bool = False,
    ) -> float:
        ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        if ok:
            f = float(v)  # type: ignore[arg-type]
            ok = (f > lo if lo_open else f >= lo) and (f < hi if hi_open else f <= hi)
        if not ok:
            rng = f"{'>' if lo_open else '>='} {lo:g}"
            if hi != math.inf:
                rng += f" and {'<' if hi_open else '<='} {hi:g}"
            raise self.fail(where, f"a number {rng}", v)
        return float(v)  # type: ignore[arg-type]

    def path(self, where: str, v: object) -> Path:
        if not isinstance(v, str) or not v:
            raise self.fail(where, "a file path (string)", v)
        p = Path(v).expanduser()
        if not p.is_absolute() and self.base is not None:
            p = self.base / p
        if not p.is_file():
            raise self.fail(where, "an existing file", v)
        return p

    def choice(self, where: str, v: object, known: tuple[str, ...]) -> str:
        if not isinstance(v, str) or v not in known:
            raise self.fail(where, "one of " + ", ".join(known), v)
        return v

    def table(self, where: str, v: object) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise self.fail(where, "a table", v)
        return v

    def link(self, where: str, raw: dict[str, Any]) -> LinkSpec:
        spec: dict[str, Any] = {}
        for key, v in raw.items():
            at = f"{where}.{key}"
            handler = _FIELDS.get(key)
            if handler is None:
                raise self.fail(at, "a known field (" + ", ".join(_FIELDS) + ")", key)
            spec[key] = handler(self, at, v)
        if "distribution" not in spec:
            spec["distribution"] = "uniform" if spec.get("jitter_ms", 0) > 0 else "constant"
        if spec["distribution"] == "empirical" and "delay_file" not in spec:
            raise self.fail(f"{where}.delay_file", "a file for distribution 'empirical'", None)
        if "rate_mbps" in spec and "trace" in spec:
            raise self.fail(f"{where}.trace", "either rate_mbps or trace, not both", "both")
        return LinkSpec(**spec)

    def loss(self, at: str, v: object) -> dict[str, Any]:
        if isinstance(v, int | float) and not isinstance(v, bool):
            p = self.number(at, v, 0.0, 1.0)
            return {"model": "bernoulli", "p": p} if p > 0 else {"model": "none"}
        t = dict(self.table(at, v))
        model = self.choice(f"{at}.model", t.pop("model", None), LOSS_MODELS)
        for k, pv in t.items():
            self.number(f"{at}.{k}", pv, 0.0, 1.0)
        try:
            create_loss_model(model, **t)
        except (ValueError, TypeError) as exc:
            raise self.fail(at, f"valid {model} parameters ({exc})", v) from None
        return {"model": model, **t}

    def queue(self, at: str, v: object) -> dict[str, Any]:
        t = dict(self.table(at, v))
        kind = self.choice(f"{at}.kind", t.pop("kind", "droptail"), QUEUES)
        known = {"packets", "bytes"} | ({"target_ms", "interval_ms"} if kind == "codel" else set())
        for k, qv in t.items():
            if k not in known:
                raise self.fail(f"{at}.{k}", "one of " + ", ".join(sorted(known)), k)
            self.number(f"{at}.{k}", qv, 0.0, lo_open=True)
        return {"kind": kind, **t}

    def outages(self, at: str, v: object) -> tuple[Blackout, ...]:
        if not isinstance(v, list):
            raise self.fail(at, "an array of tables {start_ms, duration_ms, period_ms}", v)
        out = []
        for i, item in enumerate(v):
            w = f"{at}[{i}]"
            t = self.table(w, item)
            for k in t:
                if k not in ("start_ms", "duration_ms", "period_ms"):
                    raise self.fail(f"{w}.{k}", "start_ms, duration_ms or period_ms", k)
            start = self.number(f"{w}.start_ms", t.get("start_ms"))
            dur = self.number(f"{w}.duration_ms", t.get("duration_ms"), lo_open=True)
            period = None
            if "period_ms" in t:
                period = self.number(f"{w}.period_ms", t["period_ms"], dur) / 1000.0
            out.append(Blackout(start / 1000.0, dur / 1000.0, period))
        return tuple(out)

    def random_outages(self, at: str, v: object) -> tuple[float, float]:
        t = self.table(at, v)
        for k in t:
            if k not in ("mean_interval_ms", "duration_ms"):
                raise self.fail(f"{at}.{k}", "mean_interval_ms or duration_ms", k)
        mean = self.number(f"{at}.mean_interval_ms", t.get("mean_interval_ms"), lo_open=True)
        dur = self.number(f"{at}.duration_ms", t.get("duration_ms"), lo_open=True)
        return mean / 1000.0, dur / 1000.0


def _trace_field(r: _Reader, at: str, v: object) -> Path:
    p = r.path(at, v)
    load_trace(p)  # fail now, with the trace's own file:line message
    return p


def _bool(r: _Reader, at: str, v: object) -> bool:
    if not isinstance(v, bool):
        raise r.fail(at, "true or false", v)
    return v


_FIELDS: dict[str, Callable[[_Reader, str, Any], Any]] = {
    "delay_ms": lambda r, at, v: r.number(at, v),
    "jitter_ms": lambda r, at, v: r.number(at, v),
    "distribution": lambda r, at, v: r.choice(at, v, DELAY_MODELS),
    "correlation": lambda r, at, v: r.number(at, v, 0.0, 1.0, hi_open=True),
    "reorder": _bool,
    "pareto_alpha": lambda r, at, v: r.number(at, v, 0.0, lo_open=True),
    "delay_cap_ms": lambda r, at, v: r.number(at, v, 0.0, lo_open=True),
    "delay_file": lambda r, at, v: r.path(at, v),
    "loss": lambda r, at, v: r.loss(at, v),
    "rate_mbps": lambda r, at, v: r.number(at, v, 0.0, lo_open=True),
    "trace": _trace_field,
    "overhead_bytes": lambda r, at, v: int(r.number(at, v)),
    "queue": lambda r, at, v: r.queue(at, v),
    "outages": lambda r, at, v: r.outages(at, v),
    "random_outages": lambda r, at, v: r.random_outages(at, v),
}


def parse_profiles(data: dict[str, Any], source: str, base: Path | None) -> dict[str, Profile]:
    """Validate parsed TOML (``source`` names the file in errors; ``base`` resolves paths)."""
    profiles: dict[str, Profile] = {}
    for name, body in data.items():
        r = _Reader(source, name, base)
        if not isinstance(body, dict):
            raise ProfileError(f"{source}: profile {name!r}: expected a table, got {_show(body)}")
        for key in ("description", "source"):
            if not isinstance(body.get(key), str) or not body[key].strip():
                raise r.fail(key, "a non-empty string", body.get(key))
        seed = body.get("seed", 1)
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise r.fail("seed", "an integer >= 0", seed)
        common = {k: v for k, v in body.items() if k not in _META and k not in DIRECTIONS}
        # Check the shared fields once, under the name the user wrote them with.
        r.link("link", common)
        specs = {}
        for d in DIRECTIONS:
            own = r.table(d, body.get(d, {}))
            specs[d] = r.link(d, {**common, **own})
        profiles[name] = Profile(
            name,
            body["description"].strip(),
            body["source"].strip(),
            seed,
            specs["uplink"],
            specs["downlink"],
        )
    return profiles


def load_profiles(path: str | Path | None = None) -> dict[str, Profile]:
    """Profiles from ``path``, or the shipped ``netsim/profiles.toml`` when None."""
    if path is None:
        res = resources.files(__package__ or "cloudarcade.netsim").joinpath("profiles.toml")
        with resources.as_file(res) as shipped:
            return load_profiles(shipped)
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read profile file: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not valid TOML: {exc}") from None
    return parse_profiles(data, str(path), path.resolve().parent)


def get_profile(name_or_path: str | Path) -> Profile:
    """A shipped profile by name, or one from a user TOML file.

    ``my.toml`` works when the file holds one profile; ``my.toml:name`` picks one.
    """
    text = str(name_or_path)
    file_part, _, pick = text.partition(".toml:")
    if pick:
        file_part += ".toml"
    if file_part.endswith(".toml") or Path(file_part).is_file():
        profiles = load_profiles(file_part)
        if pick:
            if pick not in profiles:
                raise ProfileError(
                    f"{file_part}: no profile {pick!r}; known: {', '.join(profiles)}"
                )
            return profiles[pick]
        if len(profiles) != 1:
            raise ProfileError(
                f"{file_part}: holds {len(profiles)} profiles; pick one with "
                f"{file_part}:NAME ({', '.join(profiles)})"
            )
        return next(iter(profiles.values()))
    profiles = load_profiles()
    if text not in profiles:
        raise ProfileError(f"unknown profile {text!r}; known: {', '.join(profiles)}")
    return profiles[text]
