"""Object storage: S3 settings from the standard AWS environment, and the S3 `Location`.

Input: `s3://bucket/prefix` and the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_SESSION_TOKEN, AWS_REGION or AWS_DEFAULT_REGION, and AWS_ENDPOINT_URL_S3 or
AWS_ENDPOINT_URL for MinIO, moto or any S3-compatible service). Output: the DuckDB
`CREATE SECRET` statement that lets httpfs read and write the lake's Parquet files, and
`S3Location` (boto3) for every other file of the warehouse, mirrored into a local cache.

The same variables drive boto3 and DuckDB, so both talk to the same service. Keys are read when a
warehouse is opened (never stored) and appear in no message: an error says which variable is
missing, never its value.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from warehouse.errors import WarehouseError
from warehouse.location import Location


@dataclass(frozen=True, repr=False)
class S3Settings:
    """Credentials and endpoint of the S3 service (repr hides the keys)."""

    key_id: str
    secret: str
    region: str
    session_token: str | None = None
    endpoint: str | None = None  # full URL (http://127.0.0.1:9000); None: AWS itself

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> S3Settings:
        """Raises: WarehouseError naming the missing variable."""
        env = os.environ if environ is None else environ
        missing = [n for n in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if not env.get(n)]
        if missing:
            raise WarehouseError(f"an s3:// warehouse needs {' and '.join(missing)} in the "
                                 "environment (and AWS_ENDPOINT_URL for MinIO or another "
                                 "S3-compatible service)")
        return cls(key_id=env["AWS_ACCESS_KEY_ID"], secret=env["AWS_SECRET_ACCESS_KEY"],
                   region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
                   session_token=env.get("AWS_SESSION_TOKEN") or None,
                   endpoint=env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None)

    def __repr__(self) -> str:
        return f"S3Settings(region={self.region!r}, endpoint={self.endpoint!r}, keys=***)"

    def duckdb_options(self) -> dict[str, str | bool]:
        """The `CREATE SECRET (TYPE s3, …)` options for DuckDB's httpfs.

        A custom endpoint (MinIO, moto) gets path-style URLs, as such services expect, and
        plain HTTP when its URL says http://.

        >>> S3Settings("k", "s", "eu-west-1", endpoint="http://127.0.0.1:9000").duckdb_options()
        ... # doctest: +NORMALIZE_WHITESPACE
        {'KEY_ID': 'k', 'SECRET': 's', 'REGION': 'eu-west-1', 'ENDPOINT': '127.0.0.1:9000',
         'URL_STYLE': 'path', 'USE_SSL': False}
        """
        options: dict[str, str | bool] = {"KEY_ID": self.key_id, "SECRET": self.secret,
                                          "REGION": self.region}
        if self.session_token:
            options["SESSION_TOKEN"] = self.session_token
        if self.endpoint:
            url = urlparse(self.endpoint if "://" in self.endpoint else f"https://{self.endpoint}")
            options["ENDPOINT"] = url.netloc
            options["URL_STYLE"] = "path"
            options["USE_SSL"] = url.scheme != "http"
        return options

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", aws_access_key_id=self.key_id,
                            aws_secret_access_key=self.secret,
                            aws_session_token=self.session_token, region_name=self.region,
                            endpoint_url=self.endpoint)


class S3Location(Location):
    """`s3://bucket/prefix`, with a local cache directory as this machine's copy."""

    is_remote = True

    def __init__(self, url: str, cache: Path) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise WarehouseError(f"--warehouse {url!r}: expected s3://bucket/prefix")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.local = cache
        self._client: Any = None

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def __repr__(self) -> str:
        return f"S3Location({self.url!r})"

    def __getstate__(self) -> dict[str, Any]:
        # Sent to Dask workers: the client (sockets, credentials) is made again over there.
        return {**self.__dict__, "_client": None}

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = S3Settings.from_env().client()
        return self._client

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def read_bytes(self, name: str) -> bytes | None:
        try:
            return bytes(self.client.get_object(Bucket=self.bucket, Key=self.key(name))
                         ["Body"].read())
        except self.client.exceptions.NoSuchKey:
            return None

    def write_bytes(self, name: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.key(name), Body=data)

    def _keys(self, name: str) -> list[str]:
        """Keys of every object in folder `name` (relative to it)."""
        folder = self.key(name).rstrip("/") + "/"
        keys = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=folder):
            keys += [item["Key"].removeprefix(folder) for item in page.get("Contents", [])]
        return keys

    def delete(self, name: str) -> None:
        keys = [self.key(f"{name}/{k}") for k in self._keys(name)] or [self.key(name)]
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
            self.client.delete_objects(Bucket=self.bucket, Delete={
                "Objects": [{"Key": k} for k in keys[start:start + 1000]]})
        self.remove_local(name)

    def upload(self, name: str, last: str | None = None) -> None:
        local = self.local / name
        if local.is_file():
            self.client.upload_file(str(local), self.bucket, self.key(name))
            return
        files = sorted(p for p in local.rglob("*") if p.is_file())
        files.sort(key=lambda p: p.name == last)  # stable: `last` goes last
        for path in files:
            self.client.upload_file(str(path), self.bucket,
                                    self.key(f"{name}/{path.relative_to(local).as_posix()}"))

    def fetch(self, name: str, marker: str) -> Path:
        local = self.local / name
        remote = self.read_bytes(f"{name}/{marker}")
        if remote is None:
            shutil.rmtree(local, ignore_errors=True)
            return local
        mine = local / marker
        if mine.is_file() and mine.read_bytes() == remote:
            return local  # unchanged since the last download: nothing to fetch
        staging = local.with_name(f".{local.name}.{os.getpid()}.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        for key in self._keys(name):
            target = staging / key
            target.parent.mkdir(parents=True, exist_ok=True)
            if key != marker:
                self.client.download_file(self.bucket, self.key(f"{name}/{key}"), str(target))
        (staging / marker).write_bytes(remote)  # the marker read first: what was checked
        shutil.rmtree(local, ignore_errors=True)
        try:
            staging.rename(local)
        except OSError:  # another process of this machine put it there first
            shutil.rmtree(staging, ignore_errors=True)
        return local
