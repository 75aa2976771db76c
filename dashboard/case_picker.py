"""Case picker: the dates and times that exist in the data, step back/forward, and a time player."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import panel as pn
from panel.viewable import Viewer

from dashboard.session import DashboardSession
from dashboard.state import format_time
from dashboard.text import excerpt
from qpe.data.times import utc_naive


def dates_with_data(times: pd.DatetimeIndex) -> list[dt.date]:
    """The UTC dates that hold at least one time, sorted."""
    return sorted({t.date() for t in times})


def times_on(times: pd.DatetimeIndex, date: dt.date) -> pd.DatetimeIndex:
    """The times of one UTC date."""
    return times[times.normalize() == pd.Timestamp(date)]


def parse_time(requested: str) -> pd.Timestamp | None:
    """``requested`` as a UTC time without time zone, or None when it is not a date and time.

    Years outside 1..9999 are refused too (they cannot be written back as ``YYYY-MM-DD``).
    """
    try:
        wanted = pd.Timestamp(requested)
    except (ValueError, TypeError, OverflowError):
        return None
    if pd.isna(wanted) or not 1 <= wanted.year <= 9999:
        return None
    return utc_naive(wanted)


def nearest_time(times: pd.DatetimeIndex, wanted: pd.Timestamp) -> pd.Timestamp:
    """The time of ``times`` (sorted) nearest to ``wanted`` (the earlier one on a tie)."""
    if wanted <= times[0]:
        return times[0]
    if wanted >= times[-1]:
        return times[-1]
    after = int(times.searchsorted(wanted))
    before = after - 1
    return times[before] if wanted - times[before] <= times[after] - wanted else times[after]


def resolve_time(times: pd.DatetimeIndex, requested: str) -> tuple[pd.Timestamp, str | None]:
    """The time to show for a requested one (from a link or a widget), and why it differs if it does.

    An empty request gives the middle of the data; a time not in the data gives the nearest one with
    a message saying so; anything that is not a date and time gives the middle, with a message that
    quotes it shortened to one line.
    """
    span = f"the data cover {format_time(times[0])} .. {format_time(times[-1])} UTC"
    if not requested:
        return times[len(times) // 2], None
    wanted = parse_time(requested)
    if wanted is None:
        nearest = times[len(times) // 2]
        return nearest, f"'{excerpt(requested, 40)}' is not a date and time; {span}. Showing {format_time(nearest)}."
    nearest = nearest_time(times, wanted)
    if nearest == wanted:
        return nearest, None
    dates = {t.date() for t in times}
    what = f"on {wanted:%Y-%m-%d}" if wanted.date() not in dates else f"at {format_time(wanted)}"
    return nearest, f"No data {what} UTC: {span}. Showing the nearest time, {format_time(nearest)}."


class CasePicker(Viewer):
    """Date (calendar of the dates with data), time of day, previous/next step and a player."""

    def __init__(self, session: DashboardSession, **params) -> None:
        super().__init__(**params)
        self.session = session
        self.state = session.state
        times = session.times
        dates = dates_with_data(times)
        self._syncing = False
        self.date = pn.widgets.DatePicker(
            label="Date (UTC)", start=dates[0], end=dates[-1], enabled_dates=dates, value=dates[0],
            sizing_mode="stretch_width",
        )
        self.time_of_day = pn.widgets.Select(label="Time (UTC)", options=[], sizing_mode="stretch_width")
        self.previous = pn.widgets.Button(label="◀ 15 min", width=90, description="previous time step")
        self.next = pn.widgets.Button(label="15 min ▶", width=90, description="next time step")
        self.player = pn.widgets.Player(
            label="Animate", start=0, end=len(times) - 1, value=0, interval=1200, loop_policy="once",
            show_loop_controls=False, show_value=False, scale_buttons=0.7, width=260,
        )
        self.summary = pn.pane.Markdown(
            f"{len(times)} times, {len(dates)} dates: {format_time(times[0])} .. {format_time(times[-1])}",
            styles={"font-size": "0.85em", "color": "#555"}, margin=(0, 10),
        )
        self.date.param.watch(self._on_date, "value")
        self.time_of_day.param.watch(self._on_time_of_day, "value")
        self.previous.on_click(lambda _: self.step(-1))
        self.next.on_click(lambda _: self.step(1))
        self.player.param.watch(self._on_player, "value")
        self.state.param.watch(self._on_state_time, "time")
        self.show(self.state.time)

    # -- state -> widgets ------------------------------------------------------------------------------
    def show(self, requested: str) -> None:
        """Show ``requested`` (or the nearest time with data, with a message)."""
        time, problem = resolve_time(self.session.times, requested)
        if format_time(time) != self.state.time:
            self.state.time = format_time(time)  # comes back through _on_state_time (clears the message)
        self._update_widgets(time)
        if problem:
            self.session.messages.set("case", problem)

    def _on_state_time(self, event) -> None:
        if self._syncing:
            return
        time, problem = resolve_time(self.session.times, event.new)
        if problem:
            self.show(event.new)
            return
        self.session.messages.clear("case")
        self._update_widgets(time)

    def _update_widgets(self, time: pd.Timestamp) -> None:
        self._syncing = True
        try:
            day = times_on(self.session.times, time.date())
            self.date.value = time.date()
            self.time_of_day.options = [f"{t:%H:%M}" for t in day]
            self.time_of_day.value = f"{time:%H:%M}"
            self.player.value = int(self.session.times.get_loc(time))
            index = self.player.value
            self.previous.disabled = index == 0
            self.next.disabled = index == len(self.session.times) - 1
        finally:
            self._syncing = False

    # -- widgets -> state ------------------------------------------------------------------------------
    def _set_time(self, time: pd.Timestamp) -> None:
        self.state.time = format_time(time)

    def _on_date(self, event) -> None:
        if self._syncing or event.new is None:
            return
        day = times_on(self.session.times, event.new)
        if day.empty:
            dates = dates_with_data(self.session.times)
            self.session.messages.set(
                "case", f"No data on {event.new:%Y-%m-%d}: the data cover the dates "
                f"{', '.join(f'{d:%Y-%m-%d}' for d in dates)}. Still showing {self.state.time}.",
            )
            self._update_widgets(self.state.timestamp)
            return
        current = self.state.timestamp
        same_hour = day[day.time == current.time()] if current is not None else day[:0]
        self._set_time(same_hour[0] if len(same_hour) else day[0])

    def _on_time_of_day(self, event) -> None:
        if self._syncing or not event.new:
            return
        date = self.date.value
        self._set_time(pd.Timestamp(f"{date:%Y-%m-%d}T{event.new}"))

    def _on_player(self, event) -> None:
        if self._syncing:
            return
        self._set_time(self.session.times[int(event.new)])

    def step(self, steps: int) -> None:
        """Move ``steps`` time steps forward (negative: back), staying inside the data."""
        index = int(self.session.times.get_loc(self.state.timestamp)) + steps
        self._set_time(self.session.times[min(max(index, 0), len(self.session.times) - 1)])

    def __panel__(self):
        return pn.Column(
            self.date, self.time_of_day, pn.Row(self.previous, self.next), self.player, self.summary,
            sizing_mode="stretch_width",
        )
