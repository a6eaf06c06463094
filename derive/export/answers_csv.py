"""Every variant's answers as one CSV, for a gradebook or a spreadsheet.

One row per variant (``variant``, then one column per asked number, a
vector or matrix answer entry by entry as ``NAME[i,j]``), or, given the
class roster, one row per student (``id``, ``variant``, ...). Numbers are
written in full (``repr``); a text cell a spreadsheet would run as a
formula (one starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return, such as a student id ``=HYPERLINK(...)``) is neutralised with a
leading apostrophe (:func:`derive.safetext.csv_cell`, as OWASP advises; the
same rule as roster.csv); a plain number such as ``-0.175`` stays a number.

>>> print(answers_csv([], [("=1+1", 1)]), end="")
id,variant
'=1+1,1
"""
from __future__ import annotations

import csv
import io

from derive.safetext import csv_cell


def cell(value) -> str:
    """A cell's text, safe to open in a spreadsheet (numbers in full).

    >>> cell(-0.175), cell("-2+3"), cell("@SUM(A1)"), cell("ann")
    ('-0.175', "'-2+3", "'@SUM(A1)", 'ann')
    """
    return csv_cell(repr(float(value)) if isinstance(value, float) else value)


def answers_csv(items: list, students: list | None = None) -> str:
    """The CSV text of ``items`` (:func:`derive.export.collect`);
    ``students``: ``(id, variant number)`` pairs in roster order."""
    names = [q.name for q in items[0].quantities] if items else []
    by_number = {item.number: {q.name: q.value for q in item.quantities} for item in items}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if students is None:
        w.writerow([cell(h) for h in ["variant", *names]])
        for item in items:
            w.writerow([cell(item.number)] + [cell(by_number[item.number][n]) for n in names])
    else:
        w.writerow([cell(h) for h in ["id", "variant", *names]])
        for sid, number in students:
            answers = by_number.get(number, {})
            w.writerow([cell(sid), cell(number)] + [cell(answers[n]) for n in names if n in answers])
    return buf.getvalue()
