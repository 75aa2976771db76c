"""``qpe data info PATH``: validate a paired dataset and print a summary."""

from __future__ import annotations

import argparse
import json
import warnings


def register(commands: argparse._SubParsersAction) -> None:
    info = commands.add_parser("info", help="validate a dataset and print a summary")
    info.add_argument("path", help="paired dataset (.zarr directory or .nc file)")
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
    info.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from qpe.data.archive import archive_summary
    from qpe.data.paired import open_paired, summarize
    from qpe.data.rain_statistics import RainUnitWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RainUnitWarning)  # listed below among the summary's problems
        ds = open_paired(args.path)
    summary = archive_summary(ds) or summarize(ds)  # an archive: from its block records, no chunk read
    print(json.dumps(summary, indent=2) if args.json else format_summary(args.path, summary))
    return 0


def format_summary(path: str, summary: dict) -> str:
    """Human-readable form of :func:`qpe.data.paired.summarize`."""
    t = summary["times"]
    lines = [
        f"{path}: valid paired dataset ({', '.join(summary['variables'])})",
        f"  source    {summary['source']}",
        f"  times     {t['count']} steps, {t['first']} .. {t['last']} UTC"
        + (f", every {'/'.join(map(str, t['steps_min']))} min" if t["steps_min"] else ""),
        f"  grid      {summary['grid']}",
        f"  crs       {summary['crs']}",
    ]
    if "channels" in summary:
        lines.append("  channels  " + "  ".join(
            f"{c} [{v['min_K']:.0f}..{v['max_K']:.0f} K]" for c, v in summary["channels"].items()))
    if "rain" in summary:
        r = summary["rain"]
        lines.append(
            f"  rain      coverage {r['coverage']:.1%}, wet (>0.1 mm/h) {r['wet_fraction_0.1']:.2%}, "
            f"mean {r['mean_mm_h']} mm/h"
        )
        if r["wet_p50_mm_h"] is not None:
            lines.append(
                f"            wet-pixel p50 {r['wet_p50_mm_h']}, p90 {r['wet_p90_mm_h']}, "
                f"p99 {r['wet_p99_mm_h']}, max {r['max_mm_h']} mm/h"
            )
        if "percentiles_from" in r:
            lines.append(f"            (percentiles from {r['percentiles_from']})")
        if "qc_outliers_flagged" in r:
            lines.append(f"            QC: {r['qc_outliers_flagged']} outlier pixels above "
                         f"{r['qc_max_rate']} mm/h flagged")
    lines.extend(f"  problem   {problem}" for problem in summary.get("problems", []))
    return "\n".join(lines)
