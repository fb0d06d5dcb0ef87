"""The ibis backend of a `Workbench`: DuckDB's compiler here, execution in the gateway.

Kept apart from `amzigo_lab.client.workbench` so that importing the workbench (the CLI does,
for `home_path` and `SESSION_ENV`) does not import ibis, which costs most of a second: the
workbench imports this module when it opens a session.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import ibis.backends.duckdb as ibis_duckdb
import pyarrow as pa

from amzigo_lab.errors import AccessDenied

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from amzigo_lab.client.workbench import Workbench


class RemoteBackend(ibis_duckdb.Backend):
    """An ibis DuckDB backend that compiles locally and executes in the gateway."""

    _workbench: Workbench | None = None

    def _wb(self) -> Workbench:
        if self._workbench is None:
            raise AccessDenied("this governed session is closed; connect again")
        return self._workbench

    def _to_duckdb_relation(
        self,
        expr: ir.Expr,
        *,
        params: Mapping[ir.Scalar, Any] | None = None,
        limit: int | str | None = None,
        **kwargs: Any,
    ) -> Any:
        sql = self.compile(expr.as_table(), limit=limit, params=params, **kwargs)
        return Fetched(self._wb()._run(sql, via="ibis"))

    def to_pyarrow_batches(
        self,
        expr: ir.Expr,
        /,
        *,
        params: Mapping[ir.Scalar, Any] | None = None,
        limit: int | str | None = None,
        chunk_size: int = 1_000_000,
        **_: Any,
    ) -> pa.RecordBatchReader:
        table = self.to_pyarrow(expr.as_table(), params=params, limit=limit)
        return pa.RecordBatchReader.from_batches(
            table.schema, table.to_batches(max_chunksize=chunk_size)
        )


class Fetched:
    """The gateway's answer, shaped like the DuckDB relation ibis expects to convert."""

    def __init__(self, table: pa.Table) -> None:
        self._table = table

    def to_arrow_table(self) -> pa.Table:
        return self._table

    def torch(self) -> Any:
        raise NotImplementedError("to_torch is not available over the gateway: use to_pyarrow()")
