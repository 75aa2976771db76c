"""Small SEVIRI level-1.5 files in EUMETSAT's three formats, for the reader tests.

What is real and what is generated
    The *layouts* are real: every byte is laid out with satpy's own record definitions of the formats
    (``satpy.readers.seviri_l1b_native_hdr``: the native header and trailer, the HRIT prologue and
    epilogue; ``satpy.readers.core.hrit`` and ``satpy.readers.seviri_l1b_hrit``: the HRIT header records;
    the native line records and the variables of the EUMETSAT NetCDF as satpy's readers expect them),
    on the real SEVIRI VIS/IR reference grid (3712 x 3712 pixels of 3000.403 m, line 1 in the south,
    column 1 in the east; the areas ``msg_seviri_fes_3km`` / ``msg_seviri_rss_3km`` of satpy). Counts
    are 10-bit numbers packed as the instrument's level-1.5 data are, calibrated by slope and offset
    per channel and turned into brightness temperature by satpy with its coefficients.
    The *contents* are generated: a brightness-temperature field given as a function of the
    geostationary coordinates (:func:`default_field` or the caller's), made into counts by inverting
    the calibration (:func:`counts_from_bt`); per-line acquisition times spread over the forward scan
    (south to north, 12 min for the 15-minute full-disk service, 5-minute rapid scan of the northern
    third in 4 min); a stationary satellite at its nominal longitude (orbit polynomials of a
    constant position). Header fields that satpy does not read stay zero.

So the files go through the same satpy code a user's files go through (``Scene(filenames,
reader="seviri_l1b_native" | "seviri_l1b_hrit" | "seviri_l1b_nc")``): file-name patterns, header
parsing, 10-bit unpacking, calibration, area definition, line times. They are not EUMETSAT products;
only the fields satpy reads carry meaning. Writing one slot takes well under a second.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: SEVIRI VIS/IR reference grid: pixels per side and pixel size at the sub-satellite point, m
#: (the HRIT CFAC/LFAC value, which satpy's area definitions use).
GRID_SIZE = 3712
STEP_M = 3000.4032785810186
#: The step as the native and NetCDF headers store it, km.
HEADER_STEP_KM = 3.0004031658172607
#: Satellite height above the equator, m, and the Earth model of level-1.5 data, km.
SAT_HEIGHT_M = 35_785_831.0
EARTH_A_KM, EARTH_B_KM = 6378.169, 6356.5838
#: HRIT line/column scaling factor (negative: lines and columns count south-to-north, east-to-west).
CFAC = -13_642_337
SEGMENT_LINES = 464
#: SEVIRI band numbers of the channels (satpy.readers.core.seviri.CHANNEL_NAMES).
BAND = {"VIS006": 1, "VIS008": 2, "IR_016": 3, "IR_039": 4, "WV_062": 5, "WV_073": 6, "IR_087": 7,
        "IR_097": 8, "IR_108": 9, "IR_120": 10, "IR_134": 11}
IR_CHANNELS = ("WV_062", "WV_073", "IR_087", "IR_097", "IR_108", "IR_120", "IR_134")
#: Calibration slope and offset, mW m-2 sr-1 (cm-1)-1 per count, close to Meteosat-11's nominal ones.
CALIBRATION = {"WV_062": (0.0083, -0.42), "WV_073": (0.0385, -1.96), "IR_087": (0.1262, -6.44),
               "IR_097": (0.1035, -5.28), "IR_108": (0.2052, -10.47), "IR_120": (0.2240, -11.42),
               "IR_134": (0.1575, -8.03)}
#: Clear-sky brightness temperature, K, of the default field.
BACKGROUND_K = {"WV_062": 238.0, "WV_073": 252.0, "IR_087": 282.0, "IR_097": 258.0,
                "IR_108": 288.0, "IR_120": 286.0, "IR_134": 262.0}
#: Satellite numbers and their names in file names.
PLATFORMS = {321: "MSG1", 322: "MSG2", 323: "MSG3", 324: "MSG4"}
#: Radius of the geostationary orbit, km (orbit polynomials of a stationary satellite).
ORBIT_RADIUS_KM = 42_164.0
_CDS_EPOCH = dt.datetime(1958, 1, 1)
# satpy.readers.core.seviri: C1, C2 (radiance constants) and the spectral-radiance BT fit
_C1, _C2 = 1.19104273e-5, 1.43877523

BrightnessField = Callable[[str, np.ndarray, np.ndarray], np.ndarray]


# -- scan and geometry ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Slot:
    """One repeat cycle of SEVIRI.

    Parameters
    ----------
    start : datetime
        Nominal start of the repeat cycle (the slot time: 18:00, 18:15, ...), UTC.
    rapid_scan : bool
        The 5-minute rapid-scan service (northern third of the disk, Meteosat at 9.5 E) instead of the
        15-minute full-disk service (0 E).
    platform_id : int
        321..324 (Meteosat-8..11).
    ssp_lon : float, optional
        Sub-satellite longitude, degrees east; by default 0 (full disk) or 9.5 (rapid scan).
    """

    start: dt.datetime
    rapid_scan: bool = False
    platform_id: int = 324
    ssp_lon: float | None = None

    @property
    def lon_0(self) -> float:
        return self.ssp_lon if self.ssp_lon is not None else (9.5 if self.rapid_scan else 0.0)

    @property
    def scan_start(self) -> dt.datetime:
        """The forward scan starts 9 s after the nominal slot time."""
        return self.start + dt.timedelta(seconds=9)

    @property
    def scan_duration(self) -> dt.timedelta:
        return dt.timedelta(minutes=4 if self.rapid_scan else 12)

    @property
    def first_line(self) -> int:
        """First line of the forward scan (rapid scan: the three northern segments)."""
        return GRID_SIZE - 3 * SEGMENT_LINES + 1 if self.rapid_scan else 1

    @property
    def repeat_cycle(self) -> dt.timedelta:
        return dt.timedelta(minutes=5 if self.rapid_scan else 15)

    @property
    def platform(self) -> str:
        return PLATFORMS[self.platform_id]

    def line_times(self, lines: np.ndarray) -> np.ndarray:
        """Mean acquisition time of each line (datetime64[ms]): linear over the forward scan."""
        span = GRID_SIZE - self.first_line + 1
        fraction = (np.asarray(lines, dtype="float64") - self.first_line) / span
        ms = np.rint(fraction * (self.scan_duration / dt.timedelta(milliseconds=1))).astype("int64")
        return np.datetime64(self.scan_start, "ms") + ms.astype("timedelta64[ms]")


@dataclass(frozen=True)
class Window:
    """A rectangle of the reference grid: lines count from the south, columns from the east (1-based)."""

    south: int
    north: int
    east: int
    west: int

    @property
    def lines(self) -> np.ndarray:
        return np.arange(self.south, self.north + 1)

    @property
    def columns(self) -> np.ndarray:
        return np.arange(self.east, self.west + 1)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.north - self.south + 1, self.west - self.east + 1)


def pixel_x(columns: np.ndarray) -> np.ndarray:
    """Geostationary x of column centres, m (column 1 is the easternmost)."""
    return (GRID_SIZE / 2 - np.asarray(columns, dtype="float64")) * STEP_M


def pixel_y(lines: np.ndarray) -> np.ndarray:
    """Geostationary y of line centres, m (line 1 is the southernmost)."""
    return (np.asarray(lines, dtype="float64") - GRID_SIZE / 2) * STEP_M


def geos_crs(lon_0: float) -> str:
    """PROJ string of the level-1.5 geostationary projection at sub-satellite longitude ``lon_0``."""
    return (f"+proj=geos +lon_0={lon_0} +h={SAT_HEIGHT_M} +a={EARTH_A_KM * 1000} +b={EARTH_B_KM * 1000} "
            "+units=m +no_defs")


def window_over(lon: np.ndarray, lat: np.ndarray, lon_0: float, margin: int = 6) -> Window:
    """The window of the reference grid holding points ``lon``, ``lat`` (degrees) with ``margin`` pixels;
    its width is a multiple of 4 pixels, as the native format stores whole groups of 10-bit words."""
    import pyproj

    to_geos = pyproj.Transformer.from_crs("EPSG:4326", geos_crs(lon_0), always_xy=True)
    x, y = to_geos.transform(np.ravel(lon), np.ravel(lat))
    cols = GRID_SIZE / 2 - np.asarray(x) / STEP_M
    lines = np.asarray(y) / STEP_M + GRID_SIZE / 2
    south, north = int(np.floor(lines.min())) - margin, int(np.ceil(lines.max())) + margin
    east, west = int(np.floor(cols.min())) - margin, int(np.ceil(cols.max())) + margin
    west += (-(west - east + 1)) % 4
    return Window(max(south, 1), min(north, GRID_SIZE), max(east, 1), min(west, GRID_SIZE))


def default_field(channel: str, x: np.ndarray, y: np.ndarray, slot_index: int = 0) -> np.ndarray:
    """A smooth scene, K: background colder to the north and a cold cloud 150 km wide over France,
    70 K colder in window channels (25 K in water vapour), moving 30 km east per slot."""
    background = BACKGROUND_K[channel] - 8.0 * (y - 4_290_000.0) / 420_000.0 + 2.0 * np.sin(x / 200_000.0)
    depth = 25.0 if channel.startswith("WV") else 70.0
    centre_x = 100_000.0 + 30_000.0 * slot_index
    cloud = np.exp(-((x - centre_x) ** 2 + (y - 4_300_000.0) ** 2) / (2 * 150_000.0**2))
    return background - depth * cloud


# -- calibration -------------------------------------------------------------------------------------
def _coefficients(channel: str, platform_id: int) -> tuple[float, float, float, tuple[float, float, float]]:
    from satpy.readers.core.seviri import BTFIT, CALIB

    cal = CALIB[platform_id][channel]
    return cal["VC"], cal["ALPHA"], cal["BETA"], tuple(BTFIT[channel])


def bt_from_counts(counts: np.ndarray, channel: str, platform_id: int = 324) -> np.ndarray:
    """Brightness temperature, K, of 10-bit counts (spectral radiance, EUMETSAT's rule since 2008):
    L = slope x counts + offset; T = C2 vc / ln(1 + C1 vc^3 / L); BT = A T^2 + B T + C. NaN for 0."""
    slope, offset = CALIBRATION[channel]
    vc, _, _, (a, b, c) = _coefficients(channel, platform_id)
    radiance = np.asarray(counts, dtype="float64") * slope + offset
    with np.errstate(divide="ignore", invalid="ignore"):
        t = _C2 * vc / np.log(1.0 + _C1 * vc**3 / radiance)
        bt = a * t * t + b * t + c
    return np.where(np.asarray(counts) > 0, bt, np.nan)


def counts_from_bt(bt: np.ndarray, channel: str, platform_id: int = 324) -> np.ndarray:
    """10-bit counts (1..1023, uint16) whose calibrated brightness temperature is nearest ``bt`` (K)."""
    slope, offset = CALIBRATION[channel]
    vc, _, _, (a, b, c) = _coefficients(channel, platform_id)
    bt = np.asarray(bt, dtype="float64")
    t = (-b + np.sqrt(b * b - 4.0 * a * (c - bt))) / (2.0 * a) if a else (bt - c) / b
    radiance = _C1 * vc**3 / np.expm1(_C2 * vc / t)
    counts = np.clip(np.rint((radiance - offset) / slope), 1, 1023).astype("uint16")
    return counts


def pack10(counts: np.ndarray) -> np.ndarray:
    """Pack 10-bit words into bytes, four words in five bytes, big-endian (inverse of satpy's dec10216)."""
    w = np.asarray(counts, dtype="uint16").reshape(-1, 4)
    a, b, c, d = (w[:, i].astype("uint16") for i in range(4))
    out = np.stack([a >> 2, ((a & 3) << 6) | (b >> 4), ((b & 15) << 4) | (c >> 6), ((c & 63) << 2) | (d >> 8),
                    d & 255], axis=-1)
    return out.astype("uint8").ravel()


def _counts(field: BrightnessField, channel: str, window: Window, platform_id: int) -> np.ndarray:
    """(lines south to north, columns east to west) counts of ``field`` on ``window``."""
    xx, yy = np.meshgrid(pixel_x(window.columns), pixel_y(window.lines))
    return counts_from_bt(field(channel, xx, yy), channel, platform_id)


# -- shared header content ---------------------------------------------------------------------------
def _cds(when: dt.datetime | np.datetime64) -> tuple[int, int]:
    """(days since 1958-01-01, milliseconds of the day)."""
    delta = np.datetime64(when, "ms") - np.datetime64(_CDS_EPOCH, "ms")
    ms = int(delta / np.timedelta64(1, "ms"))
    return ms // 86_400_000, ms % 86_400_000


def _set_cds(record, when, expanded: bool = False) -> None:
    days, ms = _cds(when)
    record["Days"], record["Milliseconds"] = days, ms
    if expanded:
        record["Microseconds"], record["Nanoseconds"] = 0, 0


def _fill_data_header(hdr, slot: Slot, channels: Sequence[str]) -> None:
    """The level-1.5 data header (native ``15_DATA_HEADER`` = HRIT prologue) fields that satpy reads."""
    definition = hdr["SatelliteStatus"]["SatelliteDefinition"]
    definition["SatelliteId"] = slot.platform_id
    definition["NominalLongitude"] = slot.lon_0
    polynomial = hdr["SatelliteStatus"]["Orbit"]["OrbitPolynomial"]
    _set_cds(polynomial["StartTime"][..., 0], slot.start - dt.timedelta(hours=6))
    _set_cds(polynomial["EndTime"][..., 0], slot.start + dt.timedelta(hours=6))
    lon = np.deg2rad(slot.lon_0)
    polynomial["X"][..., 0, 0] = 2 * ORBIT_RADIUS_KM * np.cos(lon)  # Chebyshev: value = c0 / 2
    polynomial["Y"][..., 0, 0] = 2 * ORBIT_RADIUS_KM * np.sin(lon)
    planned = hdr["ImageAcquisition"]["PlannedAcquisitionTime"]
    _set_cds(planned["TrueRepeatCycleStart"], slot.scan_start, expanded=True)
    _set_cds(planned["PlanForwardScanEnd"], slot.scan_start + slot.scan_duration, expanded=True)
    _set_cds(planned["PlannedRepeatCycleEnd"], slot.start + slot.repeat_cycle, expanded=True)
    description = hdr["ImageDescription"]
    description["ProjectionDescription"]["TypeOfProjection"] = 1
    description["ProjectionDescription"]["LongitudeOfSSP"] = slot.lon_0
    for grid, size, step in (("ReferenceGridVIS_IR", GRID_SIZE, HEADER_STEP_KM),
                             ("ReferenceGridHRV", 3 * GRID_SIZE, HEADER_STEP_KM / 3)):
        description[grid]["NumberOfLines"] = size
        description[grid]["NumberOfColumns"] = size
        description[grid]["LineDirGridStep"] = step
        description[grid]["ColumnDirGridStep"] = step
        description[grid]["GridOrigin"] = 2  # south-east corner
    production = description["Level15ImageProduction"]
    production["ImageProcDirection"] = 1  # south to north
    processing = np.zeros(12, dtype="uint8")
    calibration = hdr["RadiometricProcessing"]["Level15ImageCalibration"]
    for channel in channels:
        band = BAND[channel] - 1
        processing[band] = 1  # spectral radiance
        calibration["CalSlope"][..., band], calibration["CalOffset"][..., band] = CALIBRATION[channel]
    production["PlannedChanProcessing"] = processing
    earth = hdr["GeometricProcessing"]["EarthModel"]
    earth["TypeOfEarthModel"] = 2
    earth["EquatorialRadius"] = EARTH_A_KM
    earth["NorthPolarRadius"] = EARTH_B_KM
    earth["SouthPolarRadius"] = EARTH_B_KM


def _fill_trailer(trailer, slot: Slot, window: Window) -> None:
    """The level-1.5 trailer (native ``15TRAILER`` = HRIT epilogue) fields that satpy reads."""
    stats = trailer["ImageProductionStats"]
    stats["SatelliteId"] = slot.platform_id
    summary = stats["ActualScanningSummary"]
    summary["NominalImageScanning"] = 0 if slot.rapid_scan else 1
    summary["ReducedScan"] = 1 if slot.rapid_scan else 0
    _set_cds(summary["ForwardScanStart"], slot.scan_start)
    _set_cds(summary["ForwardScanEnd"], slot.scan_start + slot.scan_duration)
    coverage = stats["ActualL15CoverageVIS_IR"]
    coverage["SouthernLineActual"], coverage["NorthernLineActual"] = window.south, window.north
    coverage["EasternColumnActual"], coverage["WesternColumnActual"] = window.east, window.west


# -- native ------------------------------------------------------------------------------------------
def native_name(slot: Slot) -> str:
    end = slot.scan_start + slot.scan_duration
    return f"{slot.platform}-SEVI-MSG15-0100-NA-{end:%Y%m%d%H%M%S}.000000000Z-NA.nat"


def write_native(directory: Path, slot: Slot, window: Window, field: BrightnessField = default_field,
                 channels: Sequence[str] = IR_CHANNELS) -> Path:
    """One native file (``*.nat``) of ``channels`` on ``window`` (a region of interest, as EUMETSAT's
    Data Store delivers them)."""
    from satpy.readers.core.eum import time_cds_short
    from satpy.readers.seviri_l1b_native_hdr import GSDTRecords, get_native_header, native_trailer

    channels = [c for c in BAND if c in channels]  # band order, as in the file
    header = np.zeros(1, dtype=get_native_header(True))
    main = header["15_MAIN_PRODUCT_HEADER"]
    main["FormatName"]["Name"], main["FormatName"]["Value"] = b"FormatName                  : ", b"NATIVE\n"
    main["QQOV"]["Value"] = b"OK"
    second = header["15_SECONDARY_PRODUCT_HEADER"]
    selected = "".join("X" if name in channels else "-" for name in list(BAND)) + "-"
    nlines, ncols = window.shape
    for key, value in (("SelectedBandIDs", selected), ("SouthLineSelectedRectangle", window.south),
                       ("NorthLineSelectedRectangle", window.north),
                       ("EastColumnSelectedRectangle", window.east),
                       ("WestColumnSelectedRectangle", window.west), ("NumberLinesVISIR", nlines),
                       ("NumberColumnsVISIR", ncols), ("NumberLinesHRV", 3 * nlines),
                       ("NumberColumnsHRV", 3 * ncols)):
        second[key]["Name"], second[key]["Value"] = key.encode(), str(value).encode()
    _fill_data_header(header["15_DATA_HEADER"], slot, channels)

    packet = np.dtype([("GP_PK_HEADER", GSDTRecords.gp_pk_header), ("GP_PK_SH1", GSDTRecords.gp_pk_sh1)])
    line = np.dtype([("gp_pk", packet), ("version", "u1"), ("satid", ">u2"), ("time", ">u2", (5,)),
                     ("lineno", ">u4"), ("chan_id", "u1"), ("acq_time", time_cds_short),
                     ("line_validity", "u1"), ("line_rquality", "u1"), ("line_gquality", "u1"),
                     ("line_data", "u1", (ncols * 5 // 4,))])
    data = np.zeros(nlines, dtype=np.dtype([("visir", line, (len(channels),))]))
    times = slot.line_times(window.lines)
    for i, channel in enumerate(channels):
        counts = _counts(field, channel, window, slot.platform_id)
        rec = data["visir"][:, i]
        rec["satid"], rec["chan_id"], rec["lineno"] = slot.platform_id, BAND[channel], window.lines
        days, ms = zip(*(_cds(t) for t in times), strict=True)
        rec["acq_time"]["Days"], rec["acq_time"]["Milliseconds"] = days, ms
        rec["line_validity"] = 1
        rec["line_data"] = pack10(counts).reshape(nlines, -1)

    trailer = np.zeros(1, dtype=native_trailer)
    _fill_trailer(trailer["15TRAILER"], slot, window)
    path = Path(directory) / native_name(slot)
    with open(path, "wb") as out:
        header.tofile(out)
        data.tofile(out)
        trailer.tofile(out)
    return path


# -- HRIT --------------------------------------------------------------------------------------------
def _hrit_name(slot: Slot, kind: str, segment: int | None = None) -> str:
    service = "RSS" if slot.rapid_scan else ""
    middle = f"{'_' * 9}-{kind:_<9s}" if segment is None else f"{kind:_<9s}-{segment:06d}___"
    return f"H-000-{slot.platform}__-{slot.platform}_{service:_<7s}-{middle}-{slot.start:%Y%m%d%H%M}-__"


def _hrit_common(name: str, when: dt.datetime) -> list[np.ndarray]:
    """Annotation and time-stamp records, with their record headers."""
    from satpy.readers.core.hrit import timestamp_record

    record = np.dtype([("hdr_id", "u1"), ("record_length", ">u2")])
    annotation = np.array(name.encode(), dtype=f"S{len(name)}")  # a text record: the file's name
    stamp = np.zeros(1, dtype=timestamp_record)
    stamp["cds_p_field"] = 64
    _set_cds(stamp["timestamp"], when)
    return [np.array([(4, 3 + annotation.itemsize)], dtype=record), annotation,
            np.array([(5, 3 + stamp.itemsize)], dtype=record), stamp]


def _write_hrit_file(path: Path, file_type: int, records: list[np.ndarray], payload: np.ndarray) -> Path:
    from satpy.readers.core.hrit import primary_header

    record = np.dtype([("hdr_id", "u1"), ("record_length", ">u2")])
    primary = np.zeros(1, dtype=primary_header)
    header_length = 3 + primary.itemsize + sum(r.nbytes for r in records)
    primary["file_type"], primary["total_header_length"] = file_type, header_length
    primary["data_field_length"] = payload.nbytes * 8  # bits
    with open(path, "wb") as out:
        for part in [np.array([(0, 3 + primary.itemsize)], dtype=record), primary, *records, payload]:
            part.tofile(out)
    return path


def write_hrit(directory: Path, slot: Slot, window: Window, field: BrightnessField = default_field,
               channels: Sequence[str] = IR_CHANNELS) -> list[Path]:
    """Uncompressed HRIT files of one slot: prologue, epilogue, and the segments (464 full-width lines
    each) of ``channels`` that hold ``window``'s lines. Returns every path written."""
    from satpy.readers.core.hrit import image_navigation, image_structure
    from satpy.readers.seviri_l1b_hrit import image_segment_line_quality, segment_identification
    from satpy.readers.seviri_l1b_native_hdr import hrit_epilogue, hrit_prologue

    directory = Path(directory)
    prologue = np.zeros(1, dtype=hrit_prologue)
    _fill_data_header(prologue, slot, channels)
    name = _hrit_name(slot, "PRO")
    paths = [_write_hrit_file(directory / name, 128, _hrit_common(name, slot.scan_start), prologue)]
    epilogue = np.zeros(1, dtype=hrit_epilogue)
    _fill_trailer(epilogue, slot, Window(slot.first_line, GRID_SIZE, 1, GRID_SIZE))
    name = _hrit_name(slot, "EPI")
    paths.append(_write_hrit_file(directory / name, 129, _hrit_common(name, slot.scan_start), epilogue))

    record = np.dtype([("hdr_id", "u1"), ("record_length", ">u2")])
    first_segment = (slot.first_line - 1) // SEGMENT_LINES + 1
    segments = range((window.south - 1) // SEGMENT_LINES + 1, (window.north - 1) // SEGMENT_LINES + 2)
    for channel in channels:
        for segment in segments:
            lines = Window((segment - 1) * SEGMENT_LINES + 1, segment * SEGMENT_LINES, 1, GRID_SIZE)
            structure = np.array([(10, GRID_SIZE, SEGMENT_LINES, 0)], dtype=image_structure)
            navigation = np.zeros(1, dtype=image_navigation)
            navigation["projection_name"] = f"GEOS({slot.lon_0:+06.1f})".encode()
            navigation["cfac"], navigation["lfac"] = CFAC, CFAC
            navigation["coff"] = GRID_SIZE // 2
            navigation["loff"] = GRID_SIZE // 2 - (segment - 1) * SEGMENT_LINES
            ident = np.zeros(1, dtype=segment_identification)
            ident["GP_SC_ID"], ident["spectral_channel_id"] = slot.platform_id, BAND[channel]
            ident["segment_sequence_number"] = segment
            ident["planned_start_segment_number"], ident["planned_end_segment_number"] = first_segment, 8
            quality = np.zeros(SEGMENT_LINES, dtype=image_segment_line_quality)
            quality["line_number_in_grid"] = lines.lines
            days, ms = zip(*(_cds(t) for t in slot.line_times(lines.lines)), strict=True)
            quality["line_mean_acquisition"]["days"] = days
            quality["line_mean_acquisition"]["milliseconds"] = ms
            quality["line_validity"] = 1
            name = _hrit_name(slot, channel, segment)
            records = [np.array([(1, 3 + structure.itemsize)], dtype=record), structure,
                       np.array([(2, 3 + navigation.itemsize)], dtype=record), navigation,
                       *_hrit_common(name, slot.scan_start),
                       np.array([(128, 3 + ident.itemsize)], dtype=record), ident,
                       np.array([(129, 3 + quality.nbytes)], dtype=record), quality]
            payload = pack10(_counts(field, channel, lines, slot.platform_id))
            paths.append(_write_hrit_file(directory / name, 0, records, payload))
    return paths


# -- EUMETSAT NetCDF ---------------------------------------------------------------------------------
def netcdf_name(slot: Slot) -> str:
    stamp = f"{slot.scan_start:%Y%m%d%H%M%S}"
    return f"W_XX-EUMETSAT-Darmstadt,VIS+IR+HRV+IMAGERY,{slot.platform}+SEVIRI_C_EUMG_{stamp}.nc"


def write_netcdf(directory: Path, slot: Slot, window: Window, field: BrightnessField = default_field,
                 channels: Sequence[str] = IR_CHANNELS) -> Path:
    """One EUMETSAT level-1.5 NetCDF file (the Data Store's NetCDF4 SEVIRI product) on ``window``:
    channels ``ch5`` ... ``ch11`` as counts with ``scale_factor``/``add_offset``, per-line times and
    quality, orbit polynomials and the image-geometry attributes satpy's ``seviri_l1b_nc`` reads."""
    import xarray as xr

    nlines = window.shape[0]
    rows = ("num_rows_vis_ir", "num_columns_vis_ir")
    per_line = ("num_rows_vis_ir", "channels_vis_ir_dim")
    polynomials = ("orbit_polynomial_dim_row", "orbit_polynomial_dim_col")
    days, ms = (np.array(v) for v in zip(*(_cds(t) for t in slot.line_times(window.lines)), strict=True))
    processing = np.zeros(12, dtype="uint8")
    data_vars = {}
    for channel in channels:
        # the file holds columns west to east (the reader keeps them) and lines south to north
        counts = _counts(field, channel, window, slot.platform_id)[:, ::-1]
        slope, offset = CALIBRATION[channel]
        data_vars[f"ch{BAND[channel]}"] = xr.Variable(rows, counts.astype("int16"), {
            "scale_factor": np.float32(slope), "add_offset": np.float32(offset), "_FillValue": np.int16(0),
            "long_name": channel, "comment": "", "valid_min": np.int16(1), "valid_max": np.int16(1023)})
        processing[BAND[channel] - 1] = 1
    # two polynomials (satpy needs more than one), the second valid over the slot
    edges = [_cds(slot.start + dt.timedelta(hours=h)) for h in (-18, -6, 6)]
    start, end = np.array(edges[:2]), np.array(edges[1:])
    lon = np.deg2rad(slot.lon_0)
    poly = np.zeros((2, 8))
    first = np.arange(8) == 0  # Chebyshev: a constant position is the first coefficient (x 2)
    data_vars.update({
        "planned_chan_processing": xr.Variable("num_channels", processing),
        "channel_data_visir_data_l10_line_mean_acquisition_time_day":
            xr.Variable(per_line, np.repeat(days[:, None], 11, axis=1).astype("int32")),
        "channel_data_visir_data_l10_line_mean_acquisition_msec":
            xr.Variable(per_line, np.repeat(ms[:, None], 11, axis=1).astype("int64")),
        "channel_data_visir_data_line_validity": xr.Variable(per_line, np.ones((nlines, 11), "int8")),
        "channel_data_visir_data_line_geometric_quality":
            xr.Variable(per_line, np.zeros((nlines, 11), "int8")),
        "channel_data_visir_data_line_radiometric_quality":
            xr.Variable(per_line, np.zeros((nlines, 11), "int8")),
        "orbit_polynomial_x": xr.Variable(polynomials, poly + 2 * ORBIT_RADIUS_KM * np.cos(lon) * first),
        "orbit_polynomial_y": xr.Variable(polynomials, poly + 2 * ORBIT_RADIUS_KM * np.sin(lon) * first),
        "orbit_polynomial_z": xr.Variable(polynomials, poly),
        "orbit_polynomial_start_time_day": xr.Variable(polynomials[0], start[:, 0]),
        "orbit_polynomial_start_time_msec": xr.Variable(polynomials[0], start[:, 1]),
        "orbit_polynomial_end_time_day": xr.Variable(polynomials[0], end[:, 0]),
        "orbit_polynomial_end_time_msec": xr.Variable(polynomials[0], end[:, 1]),
    })
    scan_days, scan_ms = _cds(slot.scan_start)
    end_days, end_ms = _cds(slot.start + slot.repeat_cycle)
    attrs = {
        "equatorial_radius": EARTH_A_KM, "north_polar_radius": EARTH_B_KM, "south_polar_radius": EARTH_B_KM,
        "longitude_of_SSP": slot.lon_0, "nominal_longitude": slot.lon_0, "satellite_id": slot.platform_id,
        "true_repeat_cycle_start_day": scan_days, "true_repeat_cycle_start_mi_sec": scan_ms,
        "planned_repeat_cycle_end_day": end_days, "planned_repeat_cycle_end_mi_sec": end_ms,
        "north_most_line": window.north, "south_most_line": window.south,
        "east_most_pixel": window.east, "west_most_pixel": window.west,
        "vis_ir_grid_origin": "0x02", "vis_ir_column_dir_grid_step": HEADER_STEP_KM,
        "vis_ir_line_dir_grid_step": HEADER_STEP_KM, "type_of_earth_model": "0x02",
        "nominal_image_scanning": "F" if slot.rapid_scan else "T",
        "reduced_scanning": "T" if slot.rapid_scan else "F",
    }
    path = Path(directory) / netcdf_name(slot)
    xr.Dataset(data_vars, attrs=attrs).to_netcdf(path, engine="netcdf4")
    return path


# -- NWC SAF GEO cloud-top height -----------------------------------------------------------------------
def nwcsaf_ctth_name(slot: Slot, region: str = "EUROPE-VISIR") -> str:
    return f"S_NWC_CTTH_{slot.platform}_{region}_{slot.start:%Y%m%dT%H%M%S}Z.nc"


def write_nwcsaf_ctth(directory: Path, slot: Slot, window: Window,
                      height_m: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Path:
    """An NWC SAF GEO CTTH file (v2021 layout, as satpy's ``nwcsaf-geo`` reader reads it) on ``window``:
    ``ctth_alti`` (uint16 m, 65535 = no cloud) = ``height_m(x, y)`` (NaN: no cloud), the GDAL geometry
    attributes on the level-1.5 ellipsoid, and the nominal slot time."""
    import xarray as xr

    x, y = pixel_x(window.columns[::-1]), pixel_y(window.lines[::-1])  # west to east, north to south
    heights = height_m(*np.meshgrid(x, y))
    alti = np.where(np.isfinite(heights), np.rint(heights), 65535).astype("uint16")
    half = STEP_M / 2
    attrs = {
        "source": "NWC/GEO version v2021.1", "satellite_identifier": slot.platform,
        "sub-satellite_longitude": slot.lon_0,
        "nominal_product_time": f"{slot.start:%Y-%m-%dT%H:%M:%SZ}",
        "time_coverage_start": f"{slot.scan_start:%Y-%m-%dT%H:%M:%SZ}",
        "time_coverage_end": f"{slot.scan_start + slot.scan_duration:%Y-%m-%dT%H:%M:%SZ}",
        "gdal_projection": f"+proj=geos +a={EARTH_A_KM * 1000:.3f} +b={EARTH_B_KM * 1000:.3f} "
                           f"+lon_0={slot.lon_0:f} +h={SAT_HEIGHT_M:.3f}",
        "gdal_xgeo_up_left": x[0] - half, "gdal_ygeo_up_left": y[0] + half,
        "gdal_xgeo_low_right": x[-1] + half, "gdal_ygeo_low_right": y[-1] - half,
    }
    variable = xr.Variable(("ny", "nx"), alti, {
        "long_name": "Cloud Top Altitude", "units": "m", "scale_factor": np.float32(1.0),
        "add_offset": np.float32(0.0), "_FillValue": np.uint16(65535),
        "valid_range": np.array([0, 27000], "uint16")})
    path = Path(directory) / nwcsaf_ctth_name(slot)
    xr.Dataset({"ctth_alti": variable}, attrs=attrs).to_netcdf(path, engine="netcdf4")
    return path


WRITERS = {"seviri_l1b_native": write_native, "seviri_l1b_hrit": write_hrit, "seviri_l1b_nc": write_netcdf}


def write_slot(reader: str, directory: Path, slot: Slot, window: Window,
               field: BrightnessField = default_field, channels: Sequence[str] = IR_CHANNELS) -> list[Path]:
    """The files of one slot in the format of satpy reader ``reader``."""
    written = WRITERS[reader](directory, slot, window, field, channels)
    return list(written) if isinstance(written, list) else [written]
