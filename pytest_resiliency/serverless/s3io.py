"""Fetching a suite from S3 (a zip or a key prefix) and uploading the reports, safely."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from .event import EventError, RunRequest

MAX_SUITE_BYTES = 200 * 1024 * 1024  # /tmp is 512 MB by default; a suite is code, not data


def _inside(root: Path, relative: str, what: str) -> Path:
    """``root/relative``, refusing absolute paths and ``..`` (a zip-slip would write outside /tmp/run)."""
    pure = PurePosixPath(relative.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise EventError(f"{what}: refusing path {relative!r} (absolute or with '..')")
    return root.joinpath(*pure.parts)


def fetch_suite(s3: Any, request: RunRequest, into: Path) -> list[str]:
    """Download the suite into ``into``; returns the relative paths written."""
    written: list[str] = []
    if request.suite_key is not None:
        try:
            body = s3.get_object(Bucket=request.bucket, Key=request.suite_key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            raise EventError(f"suite s3://{request.bucket}/{request.suite_key} does not exist") from None
        if len(body) > MAX_SUITE_BYTES:
            raise EventError(f"suite s3://{request.bucket}/{request.suite_key} is larger than {MAX_SUITE_BYTES} bytes")
        try:
            archive = zipfile.ZipFile(io.BytesIO(body))
        except zipfile.BadZipFile:
            raise EventError(f"suite s3://{request.bucket}/{request.suite_key} is not a zip file") from None
        with archive:
            for info in archive.infolist():
                target = _inside(into, info.filename, f"suite {request.suite_key}")
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(info))
                written.append(info.filename)
        return written
    assert request.suite_prefix is not None
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=request.bucket, Prefix=request.suite_prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            relative = key[len(request.suite_prefix) :]
            if not relative or key.endswith("/"):
                continue
            target = _inside(into, relative, f"suite prefix {request.suite_prefix}")
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(request.bucket, key, str(target))
            written.append(relative)
    if not written:
        raise EventError(f"suite prefix s3://{request.bucket}/{request.suite_prefix} holds no objects")
    return written


def upload_reports(s3: Any, request: RunRequest, reports: Path, names: dict[str, str]) -> dict[str, str]:
    """Upload each report that exists; returns {report: key}."""
    types = {".xml": "application/xml", ".html": "text/html", ".json": "application/json"}
    uploaded: dict[str, str] = {}
    for name, filename in names.items():
        path = reports / filename
        if not path.is_file():
            continue
        key = f"{request.reports_prefix}{filename}"
        s3.upload_file(
            str(path), request.reports_bucket, key, ExtraArgs={"ContentType": types.get(path.suffix, "text/plain")}
        )
        uploaded[name] = key
    return uploaded
