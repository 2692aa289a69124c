"""A Hugging Face Hub repo as a ``LocalModel``, read only when the user asks (``--online``).

Through ``huggingface_hub`` (an optional extra, ``canirun-ai[hub]``): the file
list, config.json (downloaded into the HF cache like any other download), and
the safetensors headers (``get_safetensors_metadata``: HTTP range reads of each
shard's header) or a GGUF file's header (range reads through ``HfFileSystem``).
Never the weights. The library itself honours HF_TOKEN, HF_ENDPOINT and
HF_HUB_OFFLINE; canirun sets a timeout. ``HubClient`` is the one seam: tests
pass a fake that serves files from a folder.
"""

from __future__ import annotations

import io
import os
import re
from typing import IO, Any, Protocol, cast

from canirun.catalog.local_model import LocalModel, ModelFileError
from canirun.records import Record, record

TIMEOUT_S = 10.0
REPO_ID = re.compile(r"^(?:https?://huggingface\.co/|hf\.co/)?([\w.-]+/[\w.-]+?)(?::([\w.-]+))?/?$")


def parse_repo(query: str) -> tuple[str, str | None] | None:
    """("ORG/NAME", "QUANT" or None) for a repo id, an hf.co/ name or a Hub URL."""
    m = REPO_ID.match(query.strip())
    if m is None:
        return None
    return m[1], m[2]


class HubError(Exception):
    """The Hub said no (missing, gated, offline, timed out); the message says which."""


@record(slots=True)
class RemoteFile(Record):
    name: str
    size: int | None


class HubClient(Protocol):
    def files(self, repo: str) -> list[RemoteFile]: ...
    def json(self, repo: str, filename: str) -> Any: ...
    def safetensors_headers(self, repo: str) -> dict[str, dict[str, Any]]: ...
    def open(self, repo: str, filename: str) -> tuple[IO[bytes], int]: ...


class HfHubClient:
    """``HubClient`` over ``huggingface_hub``: every failure becomes one ``HubError``."""

    def __init__(self) -> None:
        # Read by huggingface_hub when it is imported; a user's own setting wins.
        os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", str(int(TIMEOUT_S)))
        os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", str(int(TIMEOUT_S)))
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # the report is the output
        try:
            import huggingface_hub
        except ImportError:
            raise HubError(
                "--online needs the huggingface_hub package: pip install 'canirun-ai[hub]'"
            ) from None
        self.hub = huggingface_hub
        self.api = huggingface_hub.HfApi()
        self._files: dict[str, list[RemoteFile]] = {}

    def _call(self, repo: str, what: str, fn: Any, *args: Any, **kw: Any) -> Any:
        from huggingface_hub import errors

        try:
            return fn(*args, **kw)
        except errors.GatedRepoError:
            raise HubError(
                f"{repo} is gated: accept its licence on the Hub and set HF_TOKEN"
            ) from None
        except errors.RepositoryNotFoundError:
            raise HubError(f"{repo}: no such repo on the Hub (or private: set HF_TOKEN)") from None
        except errors.EntryNotFoundError:
            raise HubError(f"{repo}: no {what} in the repo") from None
        except errors.OfflineModeIsEnabled:
            raise HubError("HF_HUB_OFFLINE is set: the Hub cannot be asked") from None
        except Exception as exc:  # the library raises many kinds (HTTP, timeouts, parsing)
            detail = str(exc).splitlines()[0][:200] if str(exc) else ""
            raise HubError(
                f"{repo}: reading {what} failed: {type(exc).__name__} {detail}"
            ) from None

    def files(self, repo: str) -> list[RemoteFile]:
        if repo not in self._files:
            info = self._call(repo, "the file list", self.api.model_info, repo, files_metadata=True)
            self._files[repo] = [RemoteFile(s.rfilename, s.size) for s in info.siblings or ()]
        return self._files[repo]

    def json(self, repo: str, filename: str) -> Any:
        import json

        path = self._call(repo, filename, self.hub.hf_hub_download, repo, filename)
        with open(path, "rb") as f:
            raw = f.read(32 * 2**20 + 1)
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise HubError(f"{repo}/{filename}: not valid JSON: {exc}") from None

    def safetensors_headers(self, repo: str) -> dict[str, dict[str, Any]]:
        meta = self._call(repo, "the safetensors headers", self.api.get_safetensors_metadata, repo)
        out: dict[str, dict[str, Any]] = {}
        for filename, fm in meta.files_metadata.items():
            out[filename] = {
                name: {
                    "dtype": t.dtype,
                    "shape": list(t.shape),
                    "data_offsets": list(t.data_offsets),
                }
                for name, t in fm.tensors.items()
            }
        return out

    def open(self, repo: str, filename: str) -> tuple[IO[bytes], int]:
        size = next((f.size for f in self.files(repo) if f.name == filename), None)
        if size is None:
            raise HubError(f"{repo}: no {filename} in the repo")
        url = self.hub.hf_hub_url(repo, filename)
        return cast(IO[bytes], _RangeReader(self, repo, url, size)), size


class _RangeReader(io.RawIOBase):
    """A remote file read by HTTP range requests (huggingface_hub's session and headers):
    the GGUF reader asks for the header in 1 MiB chunks and never for the weights."""

    def __init__(self, client: HfHubClient, repo: str, url: str, size: int) -> None:
        super().__init__()
        self.client, self.repo, self.url, self.size, self.pos = client, repo, url, size, 0

    def readable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def read(self, n: int = -1) -> bytes:
        end = self.size if n is None or n < 0 else min(self.size, self.pos + n)
        if end <= self.pos:
            return b""
        body = self.client._call(self.repo, self.url.rsplit("/", 1)[-1], self._get, end)
        self.pos += len(body)
        return bytes(body)

    def _get(self, end: int) -> bytes:
        hub: Any = self.client.hub
        headers = {**hub.utils.build_hf_headers(), "Range": f"bytes={self.pos}-{end - 1}"}
        response = hub.get_session().get(
            self.url, headers=headers, follow_redirects=True, timeout=TIMEOUT_S
        )
        hub.hf_raise_for_status(response)
        return bytes(response.content[: end - self.pos])


def hub_model(query: str, client: HubClient | None = None) -> LocalModel:
    parsed = parse_repo(query)
    if parsed is None:
        raise HubError(f"{query!r} is not a Hugging Face repo id (ORG/NAME)")
    repo, quant = parsed
    client = client or HfHubClient()
    files = client.files(repo)
    ggufs = [
        f for f in files if f.name.lower().endswith(".gguf") and "mmproj" not in f.name.lower()
    ]
    if (ggufs and not any(f.name == "config.json" for f in files)) or quant:
        return _gguf_repo(repo, quant, ggufs, client)
    return _safetensors_repo(repo, files, client)


def _pick_gguf(
    repo: str, quant: str | None, ggufs: list[RemoteFile]
) -> tuple[list[RemoteFile], str]:
    """The file(s) of one quantisation: as asked, the only one, or Q4_K_M (llama.cpp's
    default for -hf)."""
    from canirun.catalog.gguf_model import SPLIT

    def quant_of(f: RemoteFile) -> str:
        stem = SPLIT.sub(r"\g<stem>", f.name.rsplit("/", 1)[-1])
        stem = stem.removesuffix(".gguf")
        m = re.search(r"(?i)(I?Q\d_[A-Z0-9_]+|Q\d_\d|BF16|F16|F32|MXFP4(?:_MOE)?)$", stem)
        return m[1].upper() if m else stem

    if not ggufs:
        raise HubError(f"{repo}: no GGUF files in the repo")
    quants = sorted({quant_of(f) for f in ggufs})
    wanted = (
        quant.upper()
        if quant
        else ("Q4_K_M" if "Q4_K_M" in quants or len(quants) > 1 else quants[0])
    )
    chosen = sorted((f for f in ggufs if quant_of(f) == wanted), key=lambda f: f.name)
    if not chosen:
        raise HubError(f"{repo}: no {wanted} file; it has {', '.join(quants)}")
    note = (
        "" if quant or len(quants) == 1 else f"{wanted} chosen of {', '.join(quants)} (add :QUANT)"
    )
    return chosen, note


def _gguf_repo(
    repo: str, quant: str | None, ggufs: list[RemoteFile], client: HubClient
) -> LocalModel:
    import dataclasses

    from canirun.catalog.gguf_file import GgufError, read_gguf
    from canirun.catalog.gguf_model import from_headers

    chosen, note = _pick_gguf(repo, quant, ggufs)
    headers = []
    for f in chosen:
        stream, size = client.open(repo, f.name)
        try:
            with stream:
                headers.append(read_gguf(stream, size))
        except GgufError as exc:
            raise ModelFileError(f"{repo}/{f.name}", str(exc)) from None
    url = f"https://huggingface.co/{repo}"
    name = f"{repo}:{quant.upper() if quant else chosen[0].name.removesuffix('.gguf')}"
    model = from_headers(headers, name, url, tuple(f"{url}/blob/main/{f.name}" for f in chosen))
    return dataclasses.replace(model, notes=(*model.notes, *([note] if note else [])))


def _safetensors_repo(repo: str, files: list[RemoteFile], client: HubClient) -> LocalModel:
    from canirun.catalog.hf_folder import Tensors, build_model, check_header, tensors_from_headers

    names = {f.name for f in files}
    if "model_index.json" in names:
        raise HubError(f"{repo}: a diffusers pipeline; --online reads single models only so far")
    if "config.json" not in names:
        raise HubError(f"{repo}: no config.json in the repo")
    config = client.json(repo, "config.json")
    if not isinstance(config, dict):
        raise HubError(f"{repo}/config.json: not a JSON object")
    if not any(n.endswith(".safetensors") for n in names):
        raise HubError(f"{repo}: no safetensors weights (only those headers can be read remotely)")
    headers = client.safetensors_headers(repo)
    url = f"https://huggingface.co/{repo}"
    for filename, header in headers.items():
        check_header(f"{repo}/{filename}", header, None)
    tensors: Tensors = tensors_from_headers(
        {f"{url}/blob/main/{k}": v for k, v in sorted(headers.items())}
    )
    extra = {"modules.json"} & names
    return build_model(config, tensors, "safetensors", repo, url, sentence_transformers=bool(extra))
