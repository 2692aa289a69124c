"""`canirun local` over the stores the tools keep, and `check --online` through a fake Hub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

import pytest
from typer.testing import CliRunner

from canirun.catalog import hub
from canirun.catalog.hf_folder import safetensors_header
from canirun.catalog.local_find import ollama_name
from canirun.cli import app
from canirun.report import CheckReport, LocalReport
from tests.model_files import TINY, hf_cache_model, hf_folder, ollama_store, tiny_gguf

runner = CliRunner()
GIB = 2**30
BOX = {
    "cpu": {"logical_cores": 8, "arch": "x86_64"},
    "memory": {"total_bytes": 32 * GIB},
    "os": {"system": "Linux", "machine": "x86_64", "docker": {"cli": False}},
}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty home directory, and no store locations from the developer's environment."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("OLLAMA_MODELS", "LLAMA_CACHE", "XDG_CACHE_HOME", "HF_HUB_CACHE", "HF_HOME"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "box.json").write_text(json.dumps(BOX))
    return home


def local(home: Path, *args: str):
    box = str(home.parent / "box.json")
    return runner.invoke(app, ["local", "--hardware", box, "--ram-bandwidth", "off", *args])


def local_json(home: Path, *args: str) -> LocalReport:
    result = local(home, "--json", *args)
    assert result.exit_code == 0, result.output
    return LocalReport.model_validate_json(result.stdout)


def _stores(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub_dir = home / ".cache" / "huggingface" / "hub"
    hf_cache_model(hub_dir, "org/tiny-llama")
    gguf_repo = hub_dir / "models--org--tiny-GGUF" / "snapshots" / "r1"
    gguf_repo.mkdir(parents=True)
    tiny_gguf(gguf_repo / "tiny-Q8_0.gguf")
    tiny_gguf(gguf_repo / "tiny-F16.gguf")
    (gguf_repo / "mmproj-tiny.gguf").write_bytes(b"GGUF")  # a projector: not a model
    (hub_dir / "models--org--unfinished").mkdir()
    ollama = home / ".ollama" / "models"
    ollama_store(ollama, "llama3.2", "3b", tiny_gguf(tmp_path / "blob1"))
    manifests = ollama / "manifests" / "registry.ollama.ai" / "library"
    (manifests / "broken").mkdir(parents=True)
    (manifests / "broken" / "latest").write_text("{not json")
    (manifests / "gone").mkdir()
    (manifests / "gone" / "latest").write_text(
        json.dumps(
            {
                "layers": [
                    {
                        "mediaType": "application/vnd.ollama.image.model",
                        "digest": "sha256:" + "0" * 64,
                    }
                ]
            }
        )
    )
    lms = home / ".lmstudio" / "models" / "pub" / "repo"
    lms.mkdir(parents=True)
    tiny_gguf(lms / "model-Q4.gguf")
    cache = tmp_path / "llama-cache"
    cache.mkdir()
    tiny_gguf(cache / "org_repo_tiny.gguf")
    monkeypatch.setenv("LLAMA_CACHE", str(cache))


def test_local_finds_every_store_and_skips_what_it_cannot_read(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stores(home, tmp_path, monkeypatch)
    extra = tmp_path / "mine"
    hf_folder(extra / "projects" / "my-model", TINY, shards=2)
    (extra / "loop").mkdir()
    (extra / "loop" / "again").symlink_to(extra, target_is_directory=True)
    (extra / "bad.gguf").write_bytes(b"GGUF" + bytes(10))
    report = local_json(home, "--models-dir", str(extra))
    by_store = {(f.store, f.model_id) for f in report.found}
    assert by_store == {
        ("hf-cache", "org/tiny-llama"),
        ("hf-cache", "org/tiny-GGUF:tiny-F16"),
        ("hf-cache", "org/tiny-GGUF:tiny-Q8_0"),
        ("ollama", "llama3.2:3b"),
        ("lm-studio", "pub/repo/model-Q4"),
        ("llama.cpp", "org_repo_tiny"),
        ("models-dir", "projects/my-model"),
    }
    skipped = {Path(s.path).name: s.reason for s in report.skipped}
    assert skipped["models--org--unfinished"] == "no snapshot (an unfinished download?)"
    assert skipped["latest"].startswith(("not valid JSON", "its model blob"))
    assert len([s for s in report.skipped if Path(s.path).name == "latest"]) == 2
    assert "too short to be a GGUF file" in skipped["bad.gguf"]
    assert {s.model_id for s in report.summary} == {f.model_id for f in report.found}
    assert all(s.verdict == "cpu" for s in report.summary)
    ollama = next(f for f in report.found if f.model_id == "llama3.2:3b")
    assert ollama.format == "gguf"
    assert ollama.precision == "F16"
    folder = next(f for f in report.found if f.model_id == "projects/my-model")
    assert folder.files == 2
    assert folder.precision == "bf16"
    assert report.seconds < 10


def test_local_text_and_fleet(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _stores(home, tmp_path, monkeypatch)
    out = tmp_path / "local.json"
    result = local(home, "--output", str(out))
    assert result.exit_code == 0, result.output
    assert "Found 6 models in" in result.stdout
    assert "skipped" in result.stdout
    assert "llama3.2:3b" in result.stdout
    fleet = runner.invoke(app, ["fleet", str(out), "--format", "json"])
    assert fleet.exit_code == 0, fleet.output
    rows = {r["model_id"] for r in json.loads(fleet.stdout)["rows"]}
    assert "llama3.2:3b" in rows


def test_local_with_nothing_there(home: Path) -> None:
    report = local_json(home)
    assert report.found == ()
    assert report.summary == ()


def test_a_missing_models_dir_is_bad_input(home: Path) -> None:
    result = local(home, "--models-dir", str(home / "nope"))
    assert result.exit_code == 2
    assert "--models-dir" in result.stderr
    assert "not a folder" in result.stderr


def test_env_locations_replace_the_defaults(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ollama = tmp_path / "ollama-here"
    ollama_store(ollama, "qwen", "latest", tiny_gguf(tmp_path / "b"))
    hf_home = tmp_path / "hfhome"
    hf_cache_model(hf_home / "hub", "a/b")
    monkeypatch.setenv("OLLAMA_MODELS", str(ollama))
    monkeypatch.setenv("HF_HOME", str(hf_home))
    report = local_json(home)
    assert {f.model_id for f in report.found} == {"qwen:latest", "a/b"}


def test_ollama_names_follow_ollama_list() -> None:
    assert ollama_name(("registry.ollama.ai", "library", "llama3.2", "3b")) == "llama3.2:3b"
    assert ollama_name(("registry.ollama.ai", "me", "m", "v1")) == "me/m:v1"
    assert ollama_name(("hf.co", "org", "repo", "Q4_K_M")) == "hf.co/org/repo:Q4_K_M"


def test_an_ollama_projector_counts(home: Path, tmp_path: Path) -> None:
    import hashlib

    store = home / ".ollama" / "models"
    blob = ollama_store(store, "vision", "latest", tiny_gguf(tmp_path / "m"))
    proj = tmp_path / "p.gguf"
    from tests.model_files import write_gguf

    write_gguf(proj, "clip", {}, [("v.weight", (256, 256), "F16")])
    digest = hashlib.sha256(b"projector").hexdigest()
    proj.rename(store / "blobs" / f"sha256-{digest}")
    manifest = store / "manifests" / "registry.ollama.ai" / "library" / "vision" / "latest"
    data = json.loads(manifest.read_text())
    data["layers"].append(
        {"mediaType": "application/vnd.ollama.image.projector", "digest": f"sha256:{digest}"}
    )
    manifest.write_text(json.dumps(data))
    report = local_json(home)
    (found,) = report.found
    from canirun.catalog.gguf_model import gguf_model

    assert found.weights_bytes == gguf_model(blob).weights_bytes + 256 * 256 * 2
    (result,) = report.results
    assert result.kind == "vlm"


# --- the Hub, through a fake client at the one seam ---------------------------------------


class FakeHub:
    """Serves repos from folders: ROOT/ORG/NAME/<files>."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _repo(self, repo: str) -> Path:
        folder = self.root / repo
        if not folder.is_dir():
            raise hub.HubError(f"{repo}: no such repo on the Hub (or private: set HF_TOKEN)")
        return folder

    def files(self, repo: str) -> list[hub.RemoteFile]:
        folder = self._repo(repo)
        return [hub.RemoteFile(p.name, p.stat().st_size) for p in sorted(folder.iterdir())]

    def json(self, repo: str, filename: str) -> Any:
        return json.loads((self._repo(repo) / filename).read_text())

    def safetensors_headers(self, repo: str) -> dict[str, dict[str, Any]]:
        folder = self._repo(repo)
        return {p.name: safetensors_header(p) for p in sorted(folder.glob("*.safetensors"))}

    def open(self, repo: str, filename: str) -> tuple[IO[bytes], int]:
        path = self._repo(repo) / filename
        return path.open("rb"), path.stat().st_size


@pytest.fixture
def fake_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "hub"
    (root / "org" / "tiny-GGUF").mkdir(parents=True)
    tiny_gguf(root / "org" / "tiny-GGUF" / "tiny-Q4_K_M.gguf")
    tiny_gguf(root / "org" / "tiny-GGUF" / "tiny-Q8_0.gguf")
    hf_folder(root / "org" / "tiny", TINY, shards=2)
    monkeypatch.setattr(hub, "HfHubClient", lambda: FakeHub(root))
    (tmp_path / "box.json").write_text(json.dumps(BOX))
    return tmp_path / "box.json"


def online(box: Path, *args: str):
    return runner.invoke(app, ["check", *args, "--hardware", str(box), "--ram-bandwidth", "off"])


def test_online_gguf_repo_picks_q4_k_m_and_honours_a_quant(fake_hub: Path) -> None:
    result = online(fake_hub, "org/tiny-GGUF", "--online", "--json")
    assert result.exit_code == 0, result.output
    report = CheckReport.model_validate_json(result.stdout)
    (r,) = report.results
    assert r.model_id == "org/tiny-GGUF:tiny-Q4_K_M"
    assert any("Q4_K_M chosen of Q4_K_M, Q8_0" in x for x in r.reasons)
    assert report.matches[0].how == "hub"
    picked = online(fake_hub, "hf.co/org/tiny-GGUF:q8_0", "--online", "--json")
    assert picked.exit_code == 0, picked.output
    (r,) = CheckReport.model_validate_json(picked.stdout).results
    assert r.model_id == "org/tiny-GGUF:Q8_0"
    missing = online(fake_hub, "org/tiny-GGUF:Q2_K", "--online")
    assert missing.exit_code == 2
    assert "no Q2_K file; it has Q4_K_M, Q8_0" in missing.stderr


def test_online_safetensors_repo_is_exact(fake_hub: Path) -> None:
    data = hf_folder(fake_hub.parent / "again", TINY, shards=2)
    result = online(fake_hub, "org/tiny", "--online", "--json")
    assert result.exit_code == 0, result.output
    (r,) = CheckReport.model_validate_json(result.stdout).results
    assert r.memory is not None
    assert r.memory.weights_bytes == data
    assert r.sources == ("https://huggingface.co/org/tiny",)


def test_online_errors_are_one_line(fake_hub: Path) -> None:
    result = online(fake_hub, "org/none", "--online")
    assert result.exit_code == 2
    assert result.stderr == (
        "canirun: error: check --online: org/none: "
        "no such repo on the Hub (or private: set HF_TOKEN)\n"
    )


def test_without_online_a_repo_id_says_so(fake_hub: Path) -> None:
    result = online(fake_hub, "org/tiny")
    assert result.exit_code == 2
    assert "add --online to read it from the Hugging Face Hub" in result.stderr


def test_online_without_huggingface_hub_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(hub.HubError, match=r"pip install 'canirun-ai\[hub\]'"):
        hub.HfHubClient()


def test_the_real_client_fails_in_one_line_when_the_hub_is_unreachable(tmp_path: Path) -> None:
    """huggingface_hub itself, pointed (HF_ENDPOINT) at a closed port on this machine."""
    box = tmp_path / "box.json"
    box.write_text(json.dumps(BOX))
    env = {
        **os.environ,
        "HF_ENDPOINT": "http://127.0.0.1:9",
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_OFFLINE": "0",
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "canirun",
            "check",
            "org/repo",
            "--online",
            "--hardware",
            str(box),
            "--ram-bandwidth",
            "off",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("canirun: error: check --online: org/repo: ")
    assert proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr


def test_the_header_cache_serves_unchanged_files_and_rereads_changed_ones(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from canirun import local_eval

    _stores(home, tmp_path, monkeypatch)
    first = local_json(home)
    assert (home / ".cache" / "canirun" / "local-headers.json").is_file()
    read: list[str] = []
    real = local_eval.read_found

    def counting(found: Any) -> Any:
        read.append(found.name)
        return real(found)

    monkeypatch.setattr(local_eval, "read_found", counting)
    again = local_json(home)
    assert read == []
    assert again.found == first.found
    changed = home / ".lmstudio" / "models" / "pub" / "repo" / "model-Q4.gguf"
    os.utime(changed, ns=(1, 1))
    local_json(home)
    assert read == ["pub/repo/model-Q4"]
    local_json(home, "--no-cache")
    assert len(read) == 1 + len(first.found)


def test_a_models_dir_over_a_store_does_not_count_its_models_twice(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stores(home, tmp_path, monkeypatch)
    plain = local_json(home)
    overlapping = local_json(home, "--models-dir", str(home))
    assert overlapping.found == plain.found


def _canirun(env_extra: dict[str, str], box: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "HF_HUB_OFFLINE": "0",
        **env_extra,
    }
    env.pop("HF_TOKEN", None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "canirun",
            "check",
            *args,
            "--hardware",
            str(box),
            "--ram-bandwidth",
            "off",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_online_through_huggingface_hub_against_a_local_hub(tmp_path: Path) -> None:
    """The real client (huggingface_hub) end to end, HF_ENDPOINT on 127.0.0.1: headers only."""
    from tests.fakes.hub_server import hub_server

    root = tmp_path / "hub"
    data = hf_folder(root / "org" / "tiny", TINY, shards=2)
    (root / "org" / "tiny-GGUF").mkdir(parents=True)
    gguf = tiny_gguf(root / "org" / "tiny-GGUF" / "tiny-Q4_K_M.gguf")
    box = tmp_path / "box.json"
    box.write_text(json.dumps(BOX))
    with hub_server(root) as (endpoint, requests):
        env = {"HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf")}
        proc = _canirun(env, box, "org/tiny", "org/tiny-GGUF:Q4_K_M", "--online", "--json")
        assert proc.returncode == 0, proc.stderr
        missing = _canirun(env, box, "org/nothere", "--online")
        (root / "org" / "gated").mkdir()
        (root / "org" / "gated" / ".gated").touch()
        gated = _canirun(env, box, "org/gated", "--online")
        offline = _canirun({**env, "HF_HUB_OFFLINE": "1"}, box, "org/tiny", "--online")
    report = CheckReport.model_validate_json(proc.stdout)
    weights = {r.model_id: r.memory.weights_bytes for r in report.results if r.memory}
    from canirun.catalog.gguf_model import gguf_model

    assert weights == {"org/tiny": data, "org/tiny-GGUF:Q4_K_M": gguf_model(gguf).weights_bytes}
    # Never the weights: every GET of a model file is a header range (or a small JSON file).
    for method, path, ranged in requests:
        if method == "GET" and path.endswith((".safetensors", ".gguf")):
            assert ranged is not None, path
            start, _, end = ranged.removeprefix("bytes=").partition("-")
            assert int(end) - int(start) < 2**21, ranged
    assert (tmp_path / "hf" / "hub" / "models--org--tiny").is_dir()  # config.json cached
    assert missing.returncode == 2
    assert missing.stderr == (
        "canirun: error: check --online: org/nothere: "
        "no such repo on the Hub (or private: set HF_TOKEN)\n"
    )
    assert gated.returncode == 2
    assert gated.stderr == (
        "canirun: error: check --online: "
        "org/gated is gated: accept its licence on the Hub and set HF_TOKEN\n"
    )
    assert offline.returncode == 2
    assert "HF_HUB_OFFLINE is set" in offline.stderr


def test_the_python_api_reads_files_and_stores(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import canirun

    _stores(home, tmp_path, monkeypatch)
    box = str(home.parent / "box.json")
    report = canirun.local(hardware_file=box, ram_bandwidth="off")
    assert report.kind == "local"
    assert len(report.found) == 6
    path = tmp_path / "one.gguf"
    tiny_gguf(path)
    checked = canirun.check(str(path), hardware_file=box, ram_bandwidth="off")
    assert checked.matches[0].how == "file"
