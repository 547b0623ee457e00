"""Rows of a parquet file (as the Hub publishes datasets) as plain dicts, a few at a time.

An ``image`` column of the Hub's image feature arrives as {"bytes": ..., "path": ...}. Rows are
read in small batches, so a set of 4K screenshots never sits in memory whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qvl_agent.evaluation.samples import DatasetError, Skipped

BATCH_ROWS = 16


def parquet_rows(path: Path, skipped: list[Skipped],
                 ) -> Iterator[tuple[Path, str, dict[str, Any], set[str]]]:
    """``(file, "FILE row N", row, column names)`` for each row; an unreadable file or row
    group is added to ``skipped`` (naming the row it stopped at) and the file ends there."""
    try:
        import pyarrow
        import pyarrow.parquet as pq
    except ImportError:
        raise DatasetError("reading parquet files needs pyarrow: "
                           "pip install 'qvl-agent[eval]'") from None
    row = 0
    try:
        parquet = pq.ParquetFile(path)
        columns = set(parquet.schema_arrow.names)
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
            for record in batch.to_pylist():
                yield path, f"{path} row {row}", record, columns
                row += 1
    except (pyarrow.ArrowException, OSError) as error:
        rest = "; the rest of this file is skipped" if row else ""
        skipped.append(Skipped(where=f"{path} row {row}", reason=f"cannot read on: {error}{rest}"))
