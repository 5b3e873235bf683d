"""A G.1072-style gaming opinion score (MOS) from delay, loss, bitrate, frame rate, resolution.

Structure, after ITU-T Rec. G.1072 (01/2020, with Cor. 1 10/2020), "Opinion
model predicting gaming quality of experience for cloud gaming services": an
impairment-factor model on a 0..100 rating scale R, mapped to MOS 1.3..4.64.

    R = R_max - a*I_VQ_cod - b*I_VQ_trans - c*I_TVQ - d*I_IPQ_frames - e*I_IPQ_delay

- ``I_VQ_cod``, video coding impairment. G.1072 takes its coding term from the
  ITU-T P.1203.1 mode 0 model; this module uses P.1203.1 mode 0's published
  formula and coefficients: ``bpp = br / (res * fps)`` (br in kbit/s),
  ``quant = a1 + a2*ln(a3 + ln(br) + ln(br*bpp + a4))``,
  ``MOS_q = q1 + q2*exp(q3*quant)`` with a1=11.99835, a2=-2.99992,
  a3=41.24751, a4=0.13183, q1=4.66, q2=-0.07, q3=4.06, plus P.1203.1's
  upscaling term ``D_u = u1*ln(u2*(disRes - codRes)/disRes + 1)`` (u1=72.61,
  u2=0.32) for a 1920x1080 display. ``I_VQ_cod = 100 - R(MOS_q) + D_u``,
  scaled by the video-complexity class. G.1072's own coding coefficients
  (fitted on gaming content per complexity class) are NOT reproduced: the
  class scaling (low 0.7, medium 0.85, high 1.0) is an approximation.
- ``I_VQ_trans``, ``I_IPQ_frames``, ``I_IPQ_delay`` and ``I_TVQ`` follow
  G.1072's shape (saturating exponentials in packet loss %, frame loss %,
  delay ms and the frame-rate reduction below 60 fps) but their coefficients,
  like the weights a..e, are approximations chosen here, not the
  Recommendation's values (its text was not available to us; its public
  reference code is non-commercial and was not used). They are tuned so that
  an ideal stream scores about 4.3-4.6, 100 ms of delay in the high-sensitivity
  class costs about 0.6 MOS, 1 % loss about 0.4 MOS and 5 % loss about 2 MOS.
- R to MOS: G.1072's mapping, ``MOS = MOS_min + (MOS_max - MOS_min)*R/100 +
  R*(R - 60)*(100 - R)*7e-6`` with MOS_min = 1.3 and MOS_max = 4.64, floored at
  MOS_min (the cubic dips just below it for R < 8).

Inputs are clipped to the model's training range (0.3..50 Mbit/s, 10..60 fps,
0..400 ms, 0..10 % loss) before use. Every impairment is non-decreasing in
delay and loss, so the score never rises when delay or loss grows. Treat the
figure as a planning-style estimate for comparing runs, not a calibrated MOS.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

Complexity = Literal["low", "medium", "high"]

MOS_MIN: Final = 1.3
MOS_MAX: Final = 4.64
R_MAX: Final = 100.0

# P.1203.1 mode 0 (published).
_A1, _A2, _A3, _A4 = 11.99835, -2.99992, 41.24751, 0.13183
_Q1, _Q2, _Q3 = 4.66, -0.07, 4.06
_U1, _U2 = 72.61, 0.32
_DISPLAY_PIXELS: Final = 1920 * 1080

# Approximations (see the module docstring).
_WEIGHTS: Final = {"cod": 0.788, "trans": 0.6, "tvq": 0.227, "frames": 0.3, "delay": 0.5}
_VIDEO_SCALE: Final[dict[str, float]] = {"low": 0.7, "medium": 0.85, "high": 1.0}
# Per interaction-sensitivity class: (delay k per ms, frame-loss k per %).
_INTERACTION: Final[dict[str, tuple[float, float]]] = {
    "low": (0.002, 0.05),
    "medium": (0.0035, 0.075),
    "high": (0.005, 0.10),
}
_KNOWN: Final = "known: low, medium, high"
_TRANS_K: Final = 0.15  # per % packet loss
_TVQ_MAX, _TVQ_K = 60.0, 2.2


@dataclass(frozen=True, slots=True)
class MosResult:
    """The score and the impairments it came from (all on the 0..100 R scale)."""

    mos: float
    r: float
    i_vq_cod: float
    i_vq_trans: float
    i_tvq: float
    i_ipq_frames: float
    i_ipq_delay: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _clip(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def mos_from_r(r: float) -> float:
    """G.1072's R → MOS mapping, floored at MOS_MIN so it is monotone."""
    r = _clip(r, 0.0, 100.0)
    mos = MOS_MIN + (MOS_MAX - MOS_MIN) * r / 100.0 + r * (r - 60.0) * (100.0 - r) * 7e-6
    return _clip(mos, MOS_MIN, MOS_MAX)


def r_from_mos(mos: float) -> float:
    """Inverse of the P.1203/G.107 MOS(R) mapping on a 1..4.5 scale, by bisection."""
    mos = _clip(mos, 1.0, 4.5)
    low, high = 0.0, 100.0
    for _ in range(60):
        mid = (low + high) / 2
        value = 1.0 + 0.035 * mid + mid * (mid - 60.0) * (100.0 - mid) * 7e-6
        if value < mos:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def coding_impairment(bitrate_bps: float, fps: float, width: int, height: int) -> float:
    """``I_VQ_cod`` (0..100) for the high video-complexity class."""
    kbps = _clip(bitrate_bps / 1000.0, 300.0, 50_000.0)
    fps = _clip(fps, 10.0, 60.0)
    pixels = max(1, width * height)
    bpp = kbps / (pixels * fps)
    quant = _A1 + _A2 * math.log(_A3 + math.log(kbps) + math.log(kbps * bpp + _A4))
    mos_q = _clip(_Q1 + _Q2 * math.exp(_Q3 * quant), 1.0, 5.0)
    d_q = 100.0 - r_from_mos(mos_q)
    scaled = max(0.0, (_DISPLAY_PIXELS - pixels) / _DISPLAY_PIXELS)
    d_u = _U1 * math.log(_U2 * scaled + 1.0)
    return _clip(d_q + d_u, 0.0, 100.0)


def gaming_mos(
    *,
    delay_s: float,
    packet_loss: float,
    bitrate_bps: float,
    fps: float,
    width: int,
    height: int,
    frame_loss: float | None = None,
    video_complexity: Complexity = "high",
    interaction_sensitivity: Complexity = "high",
) -> MosResult:
    """Estimate gaming MOS.

    Args:
        delay_s: interaction delay in seconds (we pass the input-to-photon median).
        packet_loss: packet loss ratio, 0..1.
        bitrate_bps: video bitrate in bit/s.
        fps: encoding (or delivered) frame rate.
        width, height: encoding resolution.
        frame_loss: frame loss ratio 0..1; defaults to ``packet_loss``.
        video_complexity, interaction_sensitivity: G.1072's classes; the
            default mode is high/high.
    """
    if video_complexity not in _VIDEO_SCALE:
        raise ValueError(f"unknown video complexity {video_complexity!r} ({_KNOWN})")
    if interaction_sensitivity not in _INTERACTION:
        raise ValueError(
            f"unknown interaction sensitivity {interaction_sensitivity!r} ({_KNOWN})"
        )
    delay_ms = _clip(delay_s * 1000.0, 0.0, 400.0)
    loss_pct = _clip(packet_loss * 100.0, 0.0, 10.0)
    frame_pct = loss_pct if frame_loss is None else _clip(frame_loss * 100.0, 0.0, 10.0)
    k_delay, k_frames = _INTERACTION[interaction_sensitivity]
    fps_c = _clip(fps, 10.0, 60.0)

    i_cod = _VIDEO_SCALE[video_complexity] * coding_impairment(bitrate_bps, fps_c, width, height)
    i_trans = 100.0 * (1.0 - math.exp(-_TRANS_K * loss_pct))
    i_tvq = _TVQ_MAX * (1.0 - math.exp(-_TVQ_K * (60.0 - fps_c) / 60.0))
    i_frames = 100.0 * (1.0 - math.exp(-k_frames * frame_pct))
    i_delay = 100.0 * (1.0 - math.exp(-k_delay * delay_ms))
    w = _WEIGHTS
    r = (
        R_MAX
        - w["cod"] * i_cod
        - w["trans"] * i_trans
        - w["tvq"] * i_tvq
        - w["frames"] * i_frames
        - w["delay"] * i_delay
    )
    return MosResult(
        mos=mos_from_r(r),
        r=_clip(r, 0.0, 100.0),
        i_vq_cod=i_cod,
        i_vq_trans=i_trans,
        i_tvq=i_tvq,
        i_ipq_frames=i_frames,
        i_ipq_delay=i_delay,
    )


def parse_resolution(text: str) -> tuple[int, int]:
    """``"1280x720"`` → ``(1280, 720)``; raises ``ValueError`` when malformed."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"bad resolution {text!r} (expected WIDTHxHEIGHT)") from None
    if width <= 0 or height <= 0:
        raise ValueError(f"bad resolution {text!r} (expected WIDTHxHEIGHT)")
    return width, height
