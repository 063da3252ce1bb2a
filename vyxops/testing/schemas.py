"""What tests assert of a frame: the columns and dtypes its schema declares (vyxops.fetch.frames.SCHEMAS)."""

from __future__ import annotations

import pandas as pd

from vyxops.fetch.frames import SCHEMAS


def check_frame(name: str, df: pd.DataFrame) -> None:
    """Raise TypeError unless ``df`` has frame ``name``'s columns and dtypes."""
    schema = SCHEMAS[name]
    if list(df.columns) != list(schema):
        raise TypeError(f"{name}: columns {list(df.columns)} != {list(schema)}")
    for column, dtype in schema.items():
        if str(df[column].dtype) != str(pd.Series([], dtype=dtype).dtype):
            raise TypeError(f"{name}.{column}: dtype {df[column].dtype} != {dtype}")
