"""Content tabs are alternatives: which one of each set the run takes, remembered by label.

A set is decided by the labels given ahead (``--tab``: exact labels first, then patterns),
by a label picked earlier in the run, by being the only tab of its set, or by asking. A
nested set matters only when the tabs around it are taken.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence

from runbook.model import Action, Origin, Step, TabRef

Ask = Callable[[Step, Origin, list[str]], str]
"""Decides a set of tabs of a step, given the set (its first tab) and its labels; raises
when no one can be asked."""
Keep = Callable[[Step, Origin, list[str], str], str]
"""Confirms the label an earlier answer picked for a set of tabs of a step, or returns
another of its labels."""


class TabChoices:
    """The alternatives the run takes, by set of tabs, and how each was decided."""

    def __init__(self, flags: Sequence[str] = ()) -> None:
        self.labels: list[str] = list(flags)
        """Labels and patterns to take, in the order given or picked."""
        self.chosen: dict[Origin, str] = {}
        """The label taken in each decided set."""
        self._how: dict[Origin, str] = {}
        self._asked: set[str] = set()
        self._recorded: set[Origin] = set()

    def taken(self, tabs: Sequence[TabRef]) -> bool | None:
        """Whether what lies inside ``tabs`` is in the alternatives taken; None if undecided."""
        for tab in tabs:
            choice = self.chosen.get(tab.group)
            if choice is None:
                return None
            if choice != tab.label:
                return False
        return True

    def actions(self, step: Step) -> list[Action]:
        """Return the blocks of ``step`` that are not in an alternative left aside."""
        return [a for a in step.actions if self.taken(a.tabs) is not False]

    @staticmethod
    def groups(step: Step) -> dict[Origin, tuple[tuple[TabRef, ...], list[str]]]:
        """Each set of alternatives of ``step``: its enclosing tabs and its labels, in order."""
        groups: dict[Origin, tuple[tuple[TabRef, ...], list[str]]] = {}
        # Every tab counts, prose-only ones too: choosing one means a person does that part.
        for path in step.tab_paths:
            for depth, tab in enumerate(path):
                _, labels = groups.setdefault(tab.group, (path[:depth], []))
                if tab.label not in labels:
                    labels.append(tab.label)
        return groups

    def decide(self, step: Step, ask: Ask, keep: Keep | None = None) -> None:
        """Decide each set of alternatives of ``step``, outer sets first; ``ask`` decides a
        set nothing else decides (it may raise, leaving the later sets undecided), ``keep``
        (when given) may change a label an earlier answer picked."""
        for group, (outer, labels) in self.groups(step).items():
            if group in self.chosen:
                continue
            # A nested set only matters when its enclosing tabs are chosen.
            if self.taken(outer) is False:
                continue
            picked = self._pick(labels)
            how = "remembered" if picked in self._asked else "flag"
            if picked is None and len(labels) == 1:
                picked, how = labels[0], "only"
            if picked is not None and how == "remembered" and keep is not None:
                kept = keep(step, group, labels, picked)
                if kept != picked:
                    # The new answer replaces the old one for the steps after this one too.
                    self.labels = [label for label in self.labels if label != picked]
                    self._asked.discard(picked)
                    picked, how = kept, "changed"
                    self.labels.append(picked)
                    self._asked.add(picked)
            if picked is None:
                picked, how = ask(step, group, labels), "asked"
                # Remembered by label: later steps offering the same tab take it unasked.
                self.labels.append(picked)
                self._asked.add(picked)
            self.chosen[group] = picked
            self._how[group] = how

    def _pick(self, labels: Sequence[str]) -> str | None:
        """Return the label to take among ``labels``: exact labels first, then patterns, each
        in the order given or picked."""
        picked = next((label for label in self.labels if label in labels), None)
        if picked is not None:
            return picked
        return next(
            (
                label
                for pattern in self.labels
                for label in labels
                if fnmatch.fnmatchcase(label, pattern)
            ),
            None,
        )

    def unrecorded(self, step: Step) -> list[tuple[Origin, str, str]]:
        """Return the decided sets of ``step`` not returned before: (set, label, how)."""
        found = []
        for group in self.groups(step):
            if group in self.chosen and group not in self._recorded:
                self._recorded.add(group)
                found.append((group, self.chosen[group], self._how.get(group, "flag")))
        return found
