"""The dataset catalog: datasets known by name, and how to rebuild each from committed settings.

``data/catalog.yaml`` (at the repository root, or ``$QPE_CATALOG``) lists entries such as::

    demo:
      description: Synthetic benchmark ...
      path: data/demo/demo.zarr                 # relative to the repository root
      synth: {hours: 48, size: 256, seed: 0}    # SynthConfig fields over the calibrated defaults
      rain_from: ../shared/data/opera/*/*.hdf    # optional: semi-synthetic, real OPERA rain

A semi-synthetic set of several radar sources lists them, and the side of the square each day is cut
to (:func:`qpe.data.radar_days.radar_days_paired`)::

    rain_from:                                   # one part per source
      - {files: ../shared/data/knmi/*/*.h5, source: knmi}
      - {files: ../shared/data/fmi/*/*.pgm.gz, source: fmi, zr: [223, 1.53], step_rule: instant}
    box: 192                                     # pixels

Generated data are never committed: :func:`ensure_dataset` builds a missing entry (deterministic for
its settings) and returns its path, so the demo, the training configs and the study name data, not files.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qpe.data.radar_days import RainPart
from qpe.errors import InputError, MissingInputError
from qpe.settings import read_yaml_mapping

#: Environment variable pointing to another catalog file.
CATALOG_ENV = "QPE_CATALOG"
CATALOG_FORMAT = "qpe-data-catalog"
#: Attribute of a built dataset: the digest of the catalog settings it was built from.
CATALOG_DIGEST = "catalog_settings_digest"
#: Repository root of an editable install / a clone (the folder above the ``qpe`` package).
REPO_ROOT = Path(__file__).resolve().parents[2]


def default_catalog_path() -> Path:
    """``$QPE_CATALOG`` or ``<repository>/data/catalog.yaml``."""
    return Path(os.environ.get(CATALOG_ENV, REPO_ROOT / "data" / "catalog.yaml"))


@dataclass(frozen=True)
class CatalogEntry:
    """One named dataset.

    Parameters
    ----------
    name : str
        Catalog key, e.g. ``"demo"``.
    path : Path
        Where the dataset lives (absolute).
    description : str
        What it is, one paragraph.
    synth : dict
        :class:`~qpe.data.synthetic.SynthConfig` fields that differ from the calibrated defaults.
    rain_from : str or None
        Glob of OPERA files (absolute) for a semi-synthetic dataset; None for a fully synthetic one.
    rain_parts : tuple of RainPart
        Radar files of several sources (globs absolute) for a semi-synthetic set of radar days.
    box : int or None
        Side of each radar day's square, pixels (with ``rain_parts``).
    """

    name: str
    path: Path
    description: str = ""
    synth: dict[str, Any] = field(default_factory=dict)
    rain_from: str | None = None
    rain_parts: tuple[RainPart, ...] = ()
    box: int | None = None

    @property
    def exists(self) -> bool:
        return self.path.exists()

    @property
    def settings_digest(self) -> str:
        """Hash of what the dataset is built from (its settings and the generator's version): a built
        dataset carries it, so a changed entry is rebuilt instead of silently used."""
        from qpe.data.synthetic.generator import GENERATOR_VERSION

        settings = {"synth": self.synth, "rain_from": self.rain_from, "box": self.box,
                    "rain_parts": [dataclasses.asdict(p) for p in self.rain_parts],
                    "generator": GENERATOR_VERSION}
        return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def is_current(self) -> bool:
        """Whether the built dataset was built from this entry's settings."""
        import xarray as xr

        from qpe.netcdf import reading_lock

        try:
            with reading_lock(self.path):
                opened = xr.open_zarr(self.path) if self.path.is_dir() else xr.open_dataset(self.path)
                with opened as ds:
                    return ds.attrs.get(CATALOG_DIGEST) == self.settings_digest
        except (OSError, ValueError, KeyError):
            return False

    def synth_config(self):
        """The :class:`~qpe.data.synthetic.SynthConfig` this entry is built with."""
        from qpe.data.synthetic import SynthConfig

        return SynthConfig.from_dict(self.synth)

    def radar_files(self) -> list[str]:
        """The radar files of a semi-synthetic entry; one clear error when a glob matches none."""
        if self.rain_parts:
            files = []
            for part in self.rain_parts:
                found = sorted(glob.glob(part.files))
                if not found:
                    raise InputError(
                        f"dataset {self.name!r} needs radar files matching {part.files}, found none")
                files += found
            return files
        files = sorted(glob.glob(self.rain_from)) if self.rain_from else []
        if not files:
            raise InputError(f"dataset {self.name!r} needs OPERA files matching {self.rain_from}, found none")
        return files


def read_catalog(path: str | os.PathLike | None = None) -> dict[str, CatalogEntry]:
    """Entries of a catalog file, by name; relative paths resolve against the catalog's repository.

    Raises
    ------
    InputError
        The file is missing, is not a qpe catalog, or an entry is malformed.
    """
    path = Path(path) if path is not None else default_catalog_path()
    if not path.is_file():
        raise InputError(f"dataset catalog {path} not found (set {CATALOG_ENV} to another catalog)")
    doc = read_yaml_mapping(path, "data catalog")
    if doc.get("format") != CATALOG_FORMAT:
        raise InputError(f"{path} is not a qpe data catalog (format: {CATALOG_FORMAT} missing)")
    datasets = doc.get("datasets") or {}
    if not isinstance(datasets, dict):
        raise InputError(f"{path}: 'datasets' must be a mapping of names to entries")
    root = path.resolve().parent.parent
    return {str(name): _entry(str(name), spec, root, path) for name, spec in datasets.items()}


def _entry(name: str, spec: object, root: Path, catalog: Path) -> CatalogEntry:
    """One catalog entry from its YAML mapping; one clear line for a malformed one."""
    if not isinstance(spec, dict) or not isinstance(spec.get("path"), str) or not spec["path"].strip():
        raise InputError(f"catalog entry {name!r} in {catalog} needs a 'path' (text)")
    unknown = set(spec) - {"path", "description", "synth", "rain_from", "box"}
    if unknown:
        fields = ", ".join(sorted(map(str, unknown)))
        raise InputError(f"catalog entry {name!r} has unknown field(s) {fields}")
    synth, rain_from = spec.get("synth") or {}, spec.get("rain_from")
    if not isinstance(synth, dict):
        raise InputError(f"catalog entry {name!r} in {catalog}: 'synth' must be a mapping of settings")
    parts = _rain_parts(name, rain_from, root, catalog) if isinstance(rain_from, list) else ()
    if rain_from is not None and not isinstance(rain_from, (str, list)):
        raise InputError(
            f"catalog entry {name!r} in {catalog}: 'rain_from' must be a glob pattern (text) or a list of "
            "parts"
        )
    box = spec.get("box")
    if box is not None and not parts:
        raise InputError(
            f"catalog entry {name!r} in {catalog}: 'box' goes with a list of radar parts in 'rain_from'")
    if parts and (isinstance(box, bool) or not isinstance(box, int) or box < 8):
        raise InputError(
            f"catalog entry {name!r} in {catalog}: 'box' must be a whole number of pixels >= 8, got {box!r}")
    return CatalogEntry(
        name=name,
        path=(root / spec["path"]).resolve(),
        description=" ".join(str(spec.get("description", "")).split()),
        synth=dict(synth),
        rain_from=str(root / rain_from) if isinstance(rain_from, str) and rain_from else None,
        rain_parts=parts,
        box=box,
    )


#: Fields of one radar part of a catalog entry's ``rain_from`` list.
PART_FIELDS = ("files", "source", "zr", "step_rule")


def _rain_parts(name: str, items: list, root: Path, catalog: Path) -> tuple[RainPart, ...]:
    """The radar parts of a ``rain_from`` list; one clear line for a malformed one."""
    where = f"catalog entry {name!r} in {catalog}"
    if not items:
        raise InputError(f"{where}: 'rain_from' lists no radar parts")
    parts = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("files"), str) or not item["files"].strip():
            raise InputError(f"{where}: rain_from part {i + 1} needs 'files' (a glob pattern)")
        unknown = set(item) - set(PART_FIELDS)
        if unknown:
            fields = ", ".join(sorted(map(str, unknown)))
            raise InputError(f"{where}: rain_from part {i + 1} has unknown field(s) {fields}")
        source, zr, rule = item.get("source"), item.get("zr"), item.get("step_rule", "instant")
        if source is not None and not isinstance(source, str):
            raise InputError(f"{where}: rain_from part {i + 1}: 'source' must be a source name (text)")
        numbers = isinstance(zr, list) and all(_is_number(v) for v in zr)
        if zr is not None and not (numbers and len(zr) == 2):
            raise InputError(f"{where}: rain_from part {i + 1}: 'zr' must be two numbers [a, b] (Z = a R^b)")
        if rule not in ("instant", "mean"):
            raise InputError(
                f"{where}: rain_from part {i + 1}: 'step_rule' must be instant or mean, got {rule!r}")
        parts.append(RainPart(str(root / item["files"]), source, tuple(map(float, zr)) if zr else None, rule))
    return tuple(parts)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def get_entry(name: str, catalog: str | os.PathLike | None = None) -> CatalogEntry:
    """The entry called ``name``; one clear error listing the known names otherwise."""
    entries = read_catalog(catalog)
    if name not in entries:
        raise InputError(f"no dataset {name!r} in the catalog (known: {', '.join(sorted(entries))})")
    return entries[name]


def build_dataset(entry: CatalogEntry, *, progress: bool = False) -> Path:
    """(Re)build an entry from its settings and write it atomically to its path."""
    from qpe.data.output_paths import check_dataset_output
    from qpe.data.paired import save_paired
    from qpe.data.synthetic import generate_paired, semisynthetic_paired

    config = entry.synth_config()
    radar_files = entry.radar_files() if entry.rain_from or entry.rain_parts else []
    check_dataset_output(entry.path, radar_files)
    if entry.rain_parts:
        from qpe.data.radar_days import radar_days_paired

        ds = radar_days_paired(entry.rain_parts, config, box=entry.box, progress=progress)
    elif entry.rain_from:
        ds = semisynthetic_paired(radar_files, config, progress=progress)
    else:
        ds = generate_paired(config, progress=progress)
    ds.attrs["catalog_name"] = entry.name
    ds.attrs[CATALOG_DIGEST] = entry.settings_digest
    return save_paired(ds, entry.path)


def ensure_dataset(name: str, *, catalog: str | os.PathLike | None = None, progress: bool = False) -> Path:
    """Path of the catalog dataset ``name``, building it first when it does not exist yet, or again when
    it was built from other settings than the catalog's (said in one line)."""
    entry = get_entry(name, catalog)
    if entry.exists and not entry.is_current():
        print(f"qpe: rebuilding {name}: {entry.path} was built from other settings than the catalog's",
              file=sys.stderr)
        build_dataset(entry, progress=progress)
    elif not entry.exists:
        build_dataset(entry, progress=progress)
    return entry.path


def display_path(path: str | os.PathLike) -> str:
    """``path`` relative to the repository when it lies inside it (portable provenance), else absolute."""
    path = Path(path).resolve()
    try:
        return path.relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(path)


def resolve_data(spec: str | os.PathLike, *, progress: bool = False) -> Path:
    """A dataset path, or a catalog name (built when missing) — what ``--data`` options accept."""
    path = Path(spec)
    if path.exists() or path.suffix in (".zarr", ".nc") or os.sep in str(spec):
        if not path.exists():
            raise MissingInputError(f"dataset {path} not found")
        return path
    return ensure_dataset(str(spec), progress=progress)
