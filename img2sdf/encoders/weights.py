"""Hash-checked, cached downloads of the DINOv2 weights (paper §2.3 encoder) from the Hugging Face hub.

STYLE.md's shap-e habit — the SHA-256 of every fetched checkpoint is checked before use — with the expected
hashes taken from the hub's own metadata (``HfApi.model_info(files_metadata=True)``): the LFS SHA-256 of
``model.safetensors`` and the git blob id of the small, non-LFS ``config.json`` (the only hash the hub keeps
for it). Only these two files are fetched, never pickled ``.bin`` weights. Downloads go through
``huggingface_hub.hf_hub_download`` pinned to the commit whose hashes were read; it honours ``HF_ENDPOINT``
and writes each file under a temporary name before renaming it, so an interrupted download never leaves a
file under its final name — and any file that does not match the hub's hash is re-downloaded or removed.
The verified SHA-256s are recorded in ``DIR/img2sdf-weights.json`` (written last, atomically), which also
lets a machine without network check a copied DIR.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from ..errors import UserError
from ..io import read_json, write_json, write_text

HUB_IDS = {
    "dinov2-small": "facebook/dinov2-small",
    "dinov2-base": "facebook/dinov2-base",
    "dinov2-large": "facebook/dinov2-large",
}
FILES = ("config.json", "model.safetensors")
RECORD = "img2sdf-weights.json"


def file_hashes(path: Path) -> tuple[int, str, str]:
    """(size, SHA-256, git blob SHA-1) of a file, read once in 1 MiB chunks."""
    size = path.stat().st_size
    sha256, git_sha1 = hashlib.sha256(), hashlib.sha1(b"blob %d\0" % size)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha256.update(chunk)
            git_sha1.update(chunk)
    return size, sha256.hexdigest(), git_sha1.hexdigest()


def mismatch(path: Path, sibling) -> str | None:
    """Why ``path`` is not the hub file described by ``sibling`` (a ``RepoSibling``); None if it is."""
    if not path.is_file():
        return "missing"
    size, sha256, git_sha1 = file_hashes(path)
    if sibling.lfs is not None:
        expected_size, got, want, kind = sibling.lfs.size, sha256, sibling.lfs.sha256, "SHA-256"
    else:
        expected_size, got, want, kind = sibling.size, git_sha1, sibling.blob_id, "git blob id"
    if size != expected_size:
        return f"size {size} bytes, the hub says {expected_size}"
    if got != want:
        return f"{kind} {got[:12]}…, the hub says {want[:12]}… (corrupted)"
    return None


def fetch_weights(name: str, to: str | Path | None = None, revision: str | None = None,
                  endpoint: str | None = None, say: Callable[[str], None] = print) -> Path:
    """Download (or find already downloaded) and verify the weights of DINOv2 ``name``; return their folder.

    ``to`` is a plain folder to fill (for ``--weights DIR``); without it the files go to the Hugging Face
    cache, where ``encode --encoder NAME`` finds them. ``endpoint`` defaults to ``HF_ENDPOINT``.
    """
    import httpx2
    from huggingface_hub import HfApi, constants, hf_hub_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    from huggingface_hub.file_download import repo_folder_name

    if name not in HUB_IDS:
        raise UserError(f"unknown model {name!r}; choose one of {', '.join(HUB_IDS)}")
    hub_id, revision = HUB_IDS[name], revision or "main"
    endpoint = (endpoint or constants.ENDPOINT).rstrip("/")
    unreachable = (httpx2.TransportError, OfflineModeIsEnabled, LocalEntryNotFoundError)
    cache_repo = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=hub_id, repo_type="model")
    try:
        info = HfApi(endpoint=endpoint).model_info(hub_id, revision=revision, files_metadata=True)
    except (RepositoryNotFoundError, RevisionNotFoundError) as e:
        raise UserError(f"--revision {revision}: {hub_id} at that revision is not on {endpoint}") from e
    except unreachable + (HfHubHTTPError,) as e:
        if isinstance(e, HfHubHTTPError) and e.response.status_code < 500:
            raise UserError(f"{endpoint}: {hub_id}: {e}".splitlines()[0]) from e
        local = Path(to) if to else _cached_snapshot(cache_repo, revision)
        return _verify_offline(name, local, endpoint, e, say)

    siblings = {s.rfilename: s for s in info.siblings or []}
    if absent := [f for f in FILES if f not in siblings]:
        raise UserError(f"{hub_id}@{revision} on {endpoint} has no {', '.join(absent)}; only safetensors "
                        f"weights are fetched, never pickled .bin files")
    folder = Path(to) if to else cache_repo / "snapshots" / info.sha
    stale = {f: problem for f in FILES if (problem := mismatch(folder / f, siblings[f]))}
    if not stale:
        say(f"{folder}: {hub_id} @ {info.sha[:12]} already fetched and verified; nothing downloaded")
    for f, problem in stale.items():
        if problem != "missing":
            say(f"{folder / f}: {problem}; downloading it again")
            (folder / f).unlink()
        try:
            path = Path(hf_hub_download(hub_id, f, revision=info.sha, local_dir=to, endpoint=endpoint,
                                        force_download=True))
        except (*unreachable, ValueError) as e:  # force_download turns a failed HEAD into a ValueError
            cause = e.__cause__ if isinstance(e, ValueError) else e
            if not isinstance(cause, unreachable):
                raise
            raise _offline_error(name, folder, list(stale), endpoint, cause) from e
        except OSError as e:  # e.g. a body shorter than the hub's size: the temporary file is already gone
            raise UserError(f"{folder / f}: download from {endpoint} failed ({str(e).splitlines()[0]}); "
                            f"no partial file was kept, rerun `img2sdf fetch {name}`") from e
        if problem := mismatch(path, siblings[f]):
            path.unlink()
            raise UserError(f"{path}: downloaded from {endpoint} but {problem}; removed it, rerun "
                            f"`img2sdf fetch {name}`")
    if not to and revision != info.sha:  # so that the cache lookup by branch name finds this commit
        write_text(cache_repo / "refs" / revision, info.sha)
    record = {"model": name, "repo_id": hub_id, "revision": revision, "commit": info.sha,
              "endpoint": endpoint, "files": {f: _record_entry(folder / f, siblings[f]) for f in FILES}}
    if stale or not (folder / RECORD).is_file() or read_json(folder / RECORD) != record:
        write_json(folder / RECORD, record)
    if stale:
        say(f"{folder}: {hub_id} @ {info.sha[:12]} fetched and verified ({', '.join(stale)})")
    return folder


def _record_entry(path: Path, sibling) -> dict:
    """Record of a file already verified against ``sibling``: its LFS SHA-256 is the file's own."""
    if sibling.lfs is not None:
        return {"size": sibling.lfs.size, "sha256": sibling.lfs.sha256, "verified_against": "hub LFS SHA-256"}
    size, sha256, git_sha1 = file_hashes(path)  # small non-LFS file: hash it here
    return {"size": size, "sha256": sha256, "verified_against": f"hub git blob id {git_sha1}"}


def _cached_snapshot(cache_repo: Path, revision: str) -> Path:
    """The cache's snapshot folder for a branch, tag or commit; the repo's cache folder if it has none."""
    ref = cache_repo / "refs" / revision
    if ref.is_file():
        return cache_repo / "snapshots" / ref.read_text().strip()
    snapshot = cache_repo / "snapshots" / revision  # a commit hash names its snapshot directly
    return snapshot if snapshot.is_dir() else cache_repo


def unverified_files(folder: Path) -> list[str]:
    """The weight files of ``folder`` that are absent or differ from the SHA-256 its record holds."""
    record = read_json(folder / RECORD) if (folder / RECORD).is_file() else {"files": {}}
    return [f for f in FILES if f not in record["files"] or not (folder / f).is_file()
            or file_hashes(folder / f)[1] != record["files"][f]["sha256"]]


def _verify_offline(name: str, folder: Path, endpoint: str, cause: Exception, say) -> Path:
    """Hub unreachable: accept ``folder`` only if every file matches the SHA-256 its record holds."""
    if bad := unverified_files(folder):
        raise _offline_error(name, folder, bad, endpoint, cause)
    say(f"{folder}: hub unreachable; {', '.join(FILES)} match the SHA-256s of {RECORD}")
    return folder


def _offline_error(name: str, folder: Path, missing: list[str], endpoint: str, cause: Exception) -> UserError:
    return UserError(
        f"cannot reach the Hugging Face hub at {endpoint} ({type(cause).__name__}) and {folder} holds no "
        f"verified {HUB_IDS[name]} {' or '.join(missing)}; on a connected machine run "
        f"`img2sdf fetch {name} --to DIR`, copy DIR here and pass --weights DIR"
    )
