"""Validation during training: loss and a few scores on fixed crops of held-out times.

Scores come from :func:`qpe.verify.verify`, the same code that judges finished models, on the
validation crops stacked along ``time`` (each crop with its own valid time, on pixel offsets of the
data's pixel size): CSI at 1 mm/h, wet fraction and wet-pixel p99 of the estimate and of the radar,
and CRPS when the model draws several members.
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from qpe.data.paired import rain_attrs
from qpe.data.samples import PairedSamples
from qpe.models.families import RainModel
from qpe.models.sampling import SamplingSettings
from qpe.training.batches import step_generator
from qpe.verify import verify

#: Threshold of the validation CSI, mm/h.
CSI_THRESHOLD = 1.0


@torch.no_grad()
def validate(
    model: RainModel,
    samples: PairedSamples,
    *,
    settings: SamplingSettings,
    pixel_m: float,
    device: torch.device,
    seed: int = 0,
    batch_size: int = 4,
) -> dict[str, float]:
    """Validation loss and scores of ``model`` on every sample of ``samples``.

    Parameters
    ----------
    model : RainModel
        The model to judge (EMA weights for a generative model), in eval mode on ``device``.
    samples : PairedSamples
        Validation samples with fixed crops.
    settings : SamplingSettings
        How fields are drawn (members: 1 for the U-Net), from the model's card.
    pixel_m : float
        Pixel size, m (for the spatial coordinates the scores need).
    seed : int
        Seed of the loss noise and of the sampling: the same model always gets the same numbers.

    Returns
    -------
    dict
        ``loss``; ``csi_1mm``; ``wet_fraction``, ``wet_fraction_radar``, ``wet_p99``, ``wet_p99_radar``
        (mm/h); ``crps`` (mm/h) when more than one member is drawn.
    """
    model.eval()
    members = settings.members
    losses, estimates, radars, times = [], [], [], []
    for start in range(0, len(samples), batch_size):
        items = [samples[i] for i in range(start, min(start + batch_size, len(samples)))]
        batch = {k: torch.stack([it[k] for it in items]).to(device) for k in ("ir", "rain", "mask")}
        losses.append(float(model.loss(batch, step_generator(seed, start, device=device))) * len(items))
        g = step_generator(seed + 1, start, device=device)
        rain = model.sample(batch["ir"], settings, g)
        estimates.append(rain.float().cpu().numpy())
        radars.append(np.where(batch["mask"].cpu().numpy(), batch["rain"].cpu().numpy(), np.nan))
        times.extend(samples.target_time(i).to_datetime64() for i in range(start, start + len(items)))
    estimate = np.concatenate(estimates, axis=0).transpose(1, 0, 2, 3)  # (member, time, y, x)
    radar = np.concatenate(radars, axis=0)
    n = radar.shape[-1]
    coords = {"time": np.array(times, dtype="datetime64[ns]"), "y": np.arange(n) * pixel_m,
              "x": np.arange(n) * pixel_m}
    radar_da = xr.DataArray(radar, dims=("time", "y", "x"), coords=coords, attrs=rain_attrs())
    dims = ("member", "time", "y", "x") if members > 1 else ("time", "y", "x")
    est_da = xr.DataArray(estimate if members > 1 else estimate[0], dims=dims, coords=coords,
                          attrs=rain_attrs())
    families = ("categorical", "distribution") + (("ensemble",) if members > 1 else ())
    scores = verify(est_da, radar_da, thresholds=(CSI_THRESHOLD,), families=families)
    out = {
        "loss": sum(losses) / len(samples),
        "csi_1mm": float(scores["CSI"].mean()),
        "wet_fraction": float(scores["wet_fraction"].mean()),
        "wet_fraction_radar": float(scores["wet_fraction_radar"]),
        "wet_p99": float(scores["wet_p99"].mean()),
        "wet_p99_radar": float(scores["wet_p99_radar"]),
    }
    if members > 1:
        out["crps"] = float(scores["CRPS"])
    return {k: round(v, 6) for k, v in out.items()}
