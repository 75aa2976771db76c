"""The study page: ``study.md`` and ``study.html`` with the headline tables, verdicts and figures.

Every headline number is shown with its bootstrap interval (``0.153 [0.121, 0.187]``); each benchmark
says what it was measured on (held-out times and days) and what was resampled (UTC days, or times within
days); each verdict names the interval(s) that decided it, and the decision rules are printed as a table
(:func:`qpe.study.hypotheses.rules_table`).

Figures (``figures/<benchmark>_*.png``): quality against network evaluations (the cost axis), the
headline scores of each family at its reference K for every T (with their intervals), and the
power-spectrum ratio and exceedance curves of those reference models (drawn by
:mod:`qpe.evaluation.figures`).
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

from qpe.colours import model_colours
from qpe.evaluation.figures import exceedance_curves, power_spectrum_ratio
from qpe.study.hypotheses import CONVENTIONS, Roles, rules_table
from qpe.study.metrics import PLACEMENT, PSD_BAND_KM, Headline
from qpe.study.plan import reference_variant, variant_name
from qpe.verify.comparison import excludes_zero

#: Headline columns: (column of the metrics table, header, number format, with an interval).
HEADLINE = (
    (PLACEMENT, "placement: CSI matched wet fraction 1 mm/h", "{:.3f}", True),
    ("csi_1", "CSI 1 mm/h", "{:.3f}", True),
    ("csi_01", "CSI 0.1 mm/h", "{:.3f}", True),
    ("fss_5_32", "FSS 5 mm/h 32 km", "{:.3f}", True),
    ("psd_ratio", f"PSD ratio {PSD_BAND_KM[0]:g}-{PSD_BAND_KM[1]:g} km", "{:.2f}", True),
    ("wet_fraction_ratio", "wet fraction / radar", "{:.2f}", True),
    ("p99_ratio", "p99 / radar", "{:.2f}", True),
    ("crps", "fair CRPS mm/h (U-Net: MAE)", "{:.4f}", True),
    ("spread_skill", "spread/skill (fair)", "{:.2f}", True),
    ("nfe", "NFE", "{:.0f}", False),
)


def checkpoint_models(table: pd.DataFrame, result) -> list[str]:
    """The variants of the study's ``checkpoints`` (trained elsewhere) scored on a benchmark."""
    extra = {c.name for c in result.config.checkpoints}
    return [m for m in table.index if table.loc[m, "base_model"] in extra]


def reference_models(result, frames: int | None = None) -> list[str]:
    """The baseline and each family at its reference K, for every T (or one T)."""
    config = result.config
    names = ["ir_rule"] if config.baseline is not None else []
    for t in config.frames if frames is None else (frames,):
        names += [variant_name(m.name, t, m.reference_steps) for m in config.models]
    return names


def headline_frame(headline: Headline, models: list[str]) -> pd.DataFrame:
    """The headline columns of ``models`` as text, each number with its interval."""
    rows = [m for m in models if m in headline.values.index]
    out = pd.DataFrame(index=pd.Index(rows, name="model"))
    for column, header, fmt, with_interval in HEADLINE:
        out[header] = [headline.interval(m, column).format(fmt) if with_interval
                       else "-" if not np.isfinite(headline.values.loc[m, column])
                       else fmt.format(headline.values.loc[m, column]) for m in rows]
    return out


#: Columns of the paired-difference table (``compare_to``): the headline's scores, not its counts.
PAIRED = tuple((column, header, "{:+" + fmt[2:]) for column, header, fmt, with_interval in HEADLINE
               if with_interval and column != "csi_01")


def paired_frame(headline: Headline, models: list[str], reference: str) -> pd.DataFrame:
    """Each of ``models`` minus ``reference``, column by column, with the paired interval.

    Both are scored on the same resampled days (or times) in every replicate, so what they share cancels;
    a difference whose interval excludes 0 is marked ``*``.
    """
    rows = [m for m in models if m in headline.values.index and m != reference]
    out = pd.DataFrame(index=pd.Index(rows, name=f"model - {reference}"))
    for column, header, fmt in PAIRED:
        cells = []
        for m in rows:
            diff = headline.compare(m, reference, column)
            mark = " *" if excludes_zero(diff.low, diff.high) else ""
            cells.append(diff.format(fmt) + mark)
        out[header] = cells
    return out


def rules_frame() -> pd.DataFrame:
    """The decision rules (:func:`qpe.study.hypotheses.rules_table`) as a table."""
    rows = rules_table()
    return pd.DataFrame({"statistic": [r[1] for r in rows], "its interval must have": [r[2] for r in rows]},
                        index=pd.Index([r[0] for r in rows], name="hypothesis"))


def inline_html(text: str) -> str:
    """``text`` escaped for HTML, with its Markdown ``**bold**`` and `` `code` `` spans rendered."""
    out = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(text))
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


def _markdown(frame: pd.DataFrame) -> str:
    header = f"| {frame.index.name or 'model'} | " + " | ".join(frame.columns) + " |"
    rule = "|---" * (len(frame.columns) + 1) + "|"
    rows = [f"| {name} | " + " | ".join(map(str, row)) + " |" for name, row in frame.iterrows()]
    return "\n".join([header, rule, *rows])


def _html_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in [frame.index.name or "model", *frame.columns])
    body = "".join(
        "<tr><th>" + html.escape(str(name)) + "</th>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row)
        + "</tr>" for name, row in frame.iterrows())
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# -- figures -------------------------------------------------------------------------------------------------
#: Network evaluations labelled on the cost figure's log axis.
NFE_TICKS = (1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000)


def cost_figure(table: pd.DataFrame, result) -> Figure:
    """Placement, fair CRPS, spectral ratio and p99 ratio against network evaluations, per family and T."""
    config = result.config
    fig = Figure(figsize=(12, 8), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    panels = ((PLACEMENT, "placement: CSI at matched wet fraction,\n1 mm/h (higher is better)"),
              ("crps", "fair CRPS (U-Net: MAE), mm/h (lower is better)"),
              ("psd_ratio", f"PSD ratio {PSD_BAND_KM[0]:g}-{PSD_BAND_KM[1]:g} km (1 = radar)"),
              ("p99_ratio", "wet p99 / radar (1 = radar)"))
    samplers = [m for m in config.models if m.steps]
    extra = [c.name for c in config.checkpoints]
    colors = model_colours([m.name for m in config.models] + ["ir_rule"] + extra)
    for ax, (column, title) in zip(axes, panels):
        for spec in samplers:
            for t, style in zip(sorted(config.frames), ("--", "-", ":", "-.")):
                for alt, marker in zip(("", *spec.also_samplers), ("o", "x", "+", "^")):
                    rows = table[(table["base_model"] == spec.name) & (table["frames"] == t)
                                 & (table["alt_sampler"] == alt)].sort_values("nfe")
                    if not rows.empty:
                        label = f"{spec.name} T={t}" + (f" ({alt})" if alt else "")
                        ax.plot(rows["nfe"], rows[column], style, marker=marker, color=colors[spec.name],
                                alpha=0.5 if alt else 1.0, label=label)
        for name in [m.name for m in config.models if not m.steps] + ["ir_rule"]:
            for t, style in zip(sorted(config.frames), ("--", "-", ":", "-.")):
                key = variant_name(name, t, None) if name != "ir_rule" else "ir_rule"
                if key in table.index:
                    ax.axhline(table.loc[key, column], color=colors[name], linestyle=style, linewidth=1.2,
                               label=key if name != "ir_rule" else "IR rule")
                if name == "ir_rule":
                    break
        for name in extra:  # trained outside the study (e.g. a distilled student): one point each
            rows = table[table["base_model"] == name]
            for key, row in rows.iterrows():
                ax.plot([row["nfe"]], [row[column]], marker="*", markersize=13, linestyle="none",
                        color=colors[name], markeredgecolor="black", label=key)
        values = table[column].astype(float)
        if column in ("psd_ratio", "p99_ratio"):
            ax.axhline(1.0, color="black", linewidth=2, label="radar")
            if (values > 0).any():  # a log axis needs a positive value (all-NaN scores draw no curve)
                ax.set_yscale("log")
        if np.isfinite(values).any():
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(FixedLocator(NFE_TICKS))  # whole NFE counts, not crowded 2x10^0 labels
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter(NullFormatter())
        else:
            ax.text(0.5, 0.5, "no finite score", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel("network evaluations per sample")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize=8)
    fig.suptitle("Quality against sampling cost")
    return fig


def headline_figure(headline: Headline, result) -> Figure:
    """Bars of the headline scores of each family at its reference K, one bar per T, with their
    bootstrap intervals as error bars."""
    config = result.config
    columns = ((PLACEMENT, "placement: CSI matched, 1 mm/h"), ("fss_5_32", "FSS 5 mm/h, 32 km"),
               ("crps", "fair CRPS (U-Net: MAE), mm/h"), ("psd_ratio", "PSD ratio 8-32 km"),
               ("wet_fraction_ratio", "wet fraction / radar"), ("p99_ratio", "p99 / radar"))
    fig = Figure(figsize=(13, 6.5), layout="constrained")
    axes = fig.subplots(2, 3).ravel()
    families = [m.name for m in config.models] + (["ir_rule"] if config.baseline is not None else [])
    frames = sorted(config.frames)
    width = 0.8 / len(frames)
    for ax, (column, title) in zip(axes, columns):
        for j, t in enumerate(frames):
            intervals = []
            for name in families:
                key = "ir_rule" if name == "ir_rule" else variant_name(name, t, config.model(name).reference_steps)
                intervals.append(headline.interval(key, column) if key in headline.values.index else None)
            values = np.array([i.value if i else np.nan for i in intervals])
            errors = np.array([[i.value - i.low, i.high - i.value] if i and i.defined else [np.nan, np.nan]
                               for i in intervals]).T
            ax.bar(np.arange(len(families)) + (j - (len(frames) - 1) / 2) * width, values, width,
                   yerr=errors if np.isfinite(errors).any() else None, capsize=3, label=f"T={t}", alpha=0.85)
        if column in ("psd_ratio", "wet_fraction_ratio", "p99_ratio"):
            ax.axhline(1.0, color="black", linewidth=1.5)
        ax.set_xticks(np.arange(len(families)), families, rotation=20, fontsize=8)
        ax.set_title(title)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"Headline scores at each family's reference K (IR rule: T = 1), "
                 f"{headline.resampling.confidence:.0%} intervals")
    return fig


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def write_study_page(result) -> tuple[Path, Path]:
    """Write ``study.md`` and ``study.html`` (and their figures) into the study's folder."""
    config, out = result.config, result.out
    roles = Roles.of(config)
    sections_md, sections_html = [], []
    for bench in result.benchmarks:
        table, name = bench.table, bench.spec.name
        focus = [m for m in reference_models(result, max(config.frames))]
        subset = bench.scores.sel(model=[m for m in focus if m in bench.scores["model"].values])
        figures = {
            "cost": _save(cost_figure(table, result), out / "figures" / f"{name}_cost.png"),
            "headline": _save(headline_figure(bench.headline, result), out / "figures" / f"{name}_headline.png"),
            "spectra": _save(power_spectrum_ratio(subset), out / "figures" / f"{name}_spectra.png"),
            "exceedance": _save(exceedance_curves(subset), out / "figures" / f"{name}_exceedance.png"),
        }
        headline = headline_frame(bench.headline, reference_models(result))
        full = headline_frame(bench.headline, list(table.index))
        reference = reference_variant(config)
        extra = checkpoint_models(table, result)
        compared = reference_models(result, max(config.frames)) + extra
        paired = (paired_frame(bench.headline, compared, reference)
                  if reference in bench.headline.values.index else None)
        paired_title = (f"### Paired differences from `{reference}` (T = {max(config.frames)}; `*`: the "
                        f"{config.confidence:.0%} interval excludes 0)")
        verdicts_md = "\n\n".join(
            f"**H{v.number} — {v.label}.** {v.statement}.\n\nDecided by:\n\n"
            + "\n".join(f"- {d}" for d in v.decision or ["nothing to compare (models missing)"])
            + "\n\n<details><summary>Every check</summary>\n\n" + "\n".join(f"- {e}" for e in v.evidence)
            + "\n\n</details>" for v in bench.verdicts)
        times = f"{bench.times[0]:%Y-%m-%d %H:%M} .. {bench.times[-1]:%Y-%m-%d %H:%M} UTC"
        measured = f"Held-out data: {bench.headline.resampling.describe()}"
        size = f"{bench.scores.attrs.get('data', bench.spec.data)}"
        sections_md.append("\n\n".join([
            f"## Benchmark `{name}`: {bench.spec.description or bench.spec.data}",
            (f"Data `{size}`, {times}; scored in {bench.seconds / 60:.1f} min. {measured}. Full evaluation "
             f"outputs: [`{name}/report.html`]({name}/report.html), [`{name}/scores.csv`]({name}/scores.csv)."),
            "### Headline (each family at its reference K)", _markdown(headline),
            *([paired_title, _markdown(paired)] if paired is not None else []),
            "### Hypotheses", verdicts_md,
            *(f"![{k}](figures/{p.name})" for k, p in figures.items()),
            "<details><summary>Every model and K</summary>\n\n" + _markdown(full) + "\n\n</details>",
        ]))
        verdicts_html = "".join(
            f"<div class='verdict {'ok' if v.holds else 'no' if v.holds is False else 'na'}'><b>H{v.number} — "
            f"{html.escape(v.label)}.</b> {html.escape(v.statement)}.<br>Decided by:<ul>"
            + "".join(f"<li>{html.escape(d)}</li>" for d in v.decision or ["nothing to compare (models missing)"])
            + "</ul><details><summary>Every check</summary><ul>"
            + "".join(f"<li>{html.escape(e)}</li>" for e in v.evidence) + "</ul></details></div>"
            for v in bench.verdicts)
        sections_html.append(
            f"<h2>Benchmark <code>{html.escape(name)}</code>: {html.escape(bench.spec.description or bench.spec.data)}</h2>"
            f"<p>Data <code>{html.escape(size)}</code>, {html.escape(times)}; scored in {bench.seconds / 60:.1f} min. "
            f"{html.escape(measured)}. Full outputs: <a href='{name}/report.html'>{name}/report.html</a>, "
            f"<a href='{name}/scores.csv'>{name}/scores.csv</a>.</p>"
            f"<h3>Headline (each family at its reference K)</h3>{_html_table(headline)}"
            + (f"<h3>{inline_html(paired_title[4:])}</h3>{_html_table(paired)}" if paired is not None else "")
            + f"<h3>Hypotheses</h3>{verdicts_html}"
            + "".join(f"<figure><img src='figures/{p.name}' alt='{k}'></figure>" for k, p in figures.items())
            + f"<details><summary>Every model and K</summary>{_html_table(full)}</details>")
    train_minutes = sum(result.training_seconds.values()) / 60
    steps = {m.name: m.reference_steps for m in config.models if m.reference_steps}
    intro = (
        f"Profile **{config.profile}**. {len(config.models)} families x T = {list(config.frames)} trained on "
        f"`{config.train_data}` ({train_minutes:.1f} min of training this run"
        + (f", summed over models trained {config.jobs} at a time)" if config.jobs > 1 else ")")
        + (", plus the IR probability-matching rule" if config.baseline is not None else "")
        + f". Each generative model draws {config.members} members; ensemble scores are means over members "
        f"(they judge one realisation). Reference K: {steps}. Residual flow = `{roles.residual}` on "
        f"`{roles.unet}`. Every number is shown with its {config.confidence:.0%} bootstrap interval, "
        "`value [low, high]`."
    )
    outside = [f"`{c.name}` (`{c.path}`)" for c in config.checkpoints
               if c.name not in result.skipped_checkpoints]
    if outside:
        intro += (" Also scored, trained outside the study, at its card's sampler and K (in the cost figure, "
                  "the paired table and the full table; never in the verdicts): " + ", ".join(outside) + ".")
    skipped = "".join(f"\n\nBenchmark `{k}` skipped: {v}" for k, v in result.skipped.items())
    skipped += "".join(f"\n\nCheckpoint `{k}` skipped: {v}" for k, v in result.skipped_checkpoints.items())
    rules = rules_frame()
    title = config.title or f"qpe study {config.name}"
    md = "\n\n".join([f"# {title}", intro + skipped, "## How the hypotheses are decided",
                        "\n".join(f"- {c}" for c in CONVENTIONS), _markdown(rules), *sections_md]) + "\n"
    md_path = out / "study.md"
    md_path.write_text(md)
    style = ("body{font-family:system-ui,sans-serif;max-width:1300px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;"
             "padding:3px 7px;text-align:right}th:first-child{text-align:left}img{max-width:100%}"
             ".verdict{margin:.6em 0;padding:.4em .8em;border-left:5px solid #999}.ok{border-color:#2a2}"
             ".no{border-color:#c22}.na{border-color:#aaa}li{font-size:13px}")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1><p>{inline_html(intro)}</p>"
            + "".join(f"<p>{kind} <code>{html.escape(k)}</code> skipped: {html.escape(v)}</p>"
                      for kind, skipped in (("Benchmark", result.skipped),
                                            ("Checkpoint", result.skipped_checkpoints))
                      for k, v in skipped.items())
            + "<h2>How the hypotheses are decided</h2><ul>"
            + "".join(f"<li>{inline_html(c)}</li>" for c in CONVENTIONS) + f"</ul>{_html_table(rules)}"
            + "".join(sections_html) + "</body></html>")
    html_path = out / "study.html"
    html_path.write_text(page)
    return md_path, html_path

