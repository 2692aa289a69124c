"""Measure what llama.cpp (through llama-cpp-python) allocates on the CPU backend.

Calibration data for canirun's memory estimator.  Results go to
tests/reference/llamacpp-measured.toml (one TOML table per row kind).

What it measures (every load in a fresh subprocess, so runs cannot pollute each other):

  compute_buffer  "CPU compute buffer size" printed by llama.cpp, for the widths of
                  Llama 3.2 1B, Llama 2 7B, Mistral 7B, Llama 3 8B and a Gemma-2-2B-like
                  256000-vocab model; n_ctx 512..32768 at n_batch 2048 / n_ubatch 512, and
                  n_ubatch 128/256/1024/2048 at n_ctx 4096; flash attention off and on.
                  The files have the published widths but only 4 layers (the compute buffer
                  does not depend on depth; rows with layers = 2 and 16 check this).
  kv_cache        printed KV cache size vs 2 x layers x kv_heads x head_dim x n_ctx x bytes/elt,
                  for f16 (every n_ctx above) and type_k/type_v = q8_0 and q4_0 at n_ctx 4096
                  and 32768 (quantized V needs flash attention: that row records the error).
  model_buffer    printed model buffer(s) (CPU_Mapped / CPU / CPU_REPACK) vs GGUF file size, for
                  the Llama 3.2 1B shapes with its real 16 layers at F16, Q8_0, Q4_K_M and Q4_0,
                  with use_mmap on and off.
  rss             process RSS (VmRSS, split into RssAnon / RssFile) after load, after a short
                  decode, after a full n_ubatch prompt and with the context filled, for the same
                  16-layer files at n_ctx 4096.
  baseline_rss    RSS of a Python process that imported llama_cpp (and initialised the
                  backend) but loaded nothing.
  peak_rss        (--parts peak; issue 17) peak RSS (VmHWM) of a fresh process with the context
                  filled: a prompt of n_ctx - 16 tokens, then 8 generated, use_mmap off, for
                  2-layer files of the Llama 3.2 1B (GQA, 8 KV heads), Qwen1.5-0.5B (MHA),
                  Gemma-2-2B-like (256k vocabulary) and Llama 3 8B widths at Q4_K_M and Q8_0,
                  n_ctx 512 / 2048 (flash attention off and on, f16 and q8_0 KV) and 8192 (a
                  lean subset: a filled 8k context takes 1-7 minutes on one thread), and the
                  real 16-layer 1B at 2048 (--shapes llama-3.2-1b --peak-ctx 2048); or only the
                  loads named with --peak-case SHAPE:LAYERS:WEIGHTS:N_CTX:on|off:KV (the 32k
                  rows: a filled 32k context took 10 minutes for the 2-layer 1B with flash
                  attention, with 2 threads on a shared machine).  Rows go to
                  WORKDIR/peak-rows.jsonl as they are measured (a re-run resumes);
                  --append-peak puts them at the end of --out.  Run it with `nice -n 19` and
                  --threads 1 on a shared machine.

The GGUF files are written here with the `gguf` package (GGUFWriter): llama architecture,
published widths, random F16 weights, a minimal SentencePiece-style ("llama") tokenizer with
vocab_size tokens.  Quantized files are made from the F16 file with llama_model_quantize.
Nothing is downloaded.

How to run (about 20 minutes on 2 cores, most of it filling contexts in the rss part; peak
disk ~5.5 GB under --workdir; peak RSS of one load ~5 GB):

    python -m venv /tmp/llv && . /tmp/llv/bin/activate
    pip install llama-cpp-python==0.3.36 gguf numpy     # CPU build
    python scripts/measure_llamacpp.py                  # all parts, writes the TOML
    python scripts/measure_llamacpp.py --parts compute --shapes llama-3-8b --out /tmp/x.toml

Options: --parts (baseline,compute,model,peak), --peak-ctx, --append-peak, --shapes (for the
compute and peak parts), --workdir (default /tmp/llmeasure; GGUF files are written there and
deleted when done unless --keep), --threads, --out, --json (also dump the raw rows),
--from-json (rewrite --out from such a dump).

Measured with llama-cpp-python 0.3.36 (bundled llama.cpp / ggml 0.25.3), CPU backend, on a
2-core AMD EPYC VM with 24 GiB RAM.  The bundled ggml reported
"AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | ... | REPACK = 1" (no AVX-512 flags) for that build.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT = Path(__file__).resolve()
REPO = SCRIPT.parent.parent
DEFAULT_OUT = REPO / "tests" / "reference" / "llamacpp-measured.toml"
SOURCE_NOTE = "scripts/measure_llamacpp.py (measured on a 2-core AMD EPYC, CPU backend)"

# Published widths.  head_dim = hidden / heads unless given.
SHAPES: dict[str, dict] = {
    "llama-3.2-1b": dict(
        hidden=2048,
        heads=32,
        kv_heads=8,
        head_dim=64,
        ffn=8192,
        vocab=128256,
        tied=True,
        real_layers=16,
    ),
    "llama-2-7b": dict(
        hidden=4096,
        heads=32,
        kv_heads=32,
        head_dim=128,
        ffn=11008,
        vocab=32000,
        tied=False,
        real_layers=32,
    ),
    "mistral-7b": dict(
        hidden=4096,
        heads=32,
        kv_heads=8,
        head_dim=128,
        ffn=14336,
        vocab=32000,
        tied=False,
        real_layers=32,
    ),
    "llama-3-8b": dict(
        hidden=4096,
        heads=32,
        kv_heads=8,
        head_dim=128,
        ffn=14336,
        vocab=128256,
        tied=False,
        real_layers=32,
    ),
    # Qwen1.5-0.5B widths (multi-head attention: kv_heads = heads), no qkv bias.
    "qwen1.5-0.5b-mha": dict(
        hidden=1024,
        heads=16,
        kv_heads=16,
        head_dim=64,
        ffn=2816,
        vocab=151936,
        tied=True,
        real_layers=24,
    ),
    # Gemma 2 2B widths written as a plain llama-arch file (no soft-capping, no SWA).
    "gemma-like-256k": dict(
        hidden=2304,
        heads=8,
        kv_heads=4,
        head_dim=256,
        ffn=9216,
        vocab=256000,
        tied=True,
        real_layers=26,
    ),
}

CTX_SWEEP = [512, 2048, 4096, 8192, 16384, 32768]
UBATCH_SWEEP = [128, 256, 1024, 2048]
BYTES_PER_ELT = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32, "f32": 4.0}
GGML_TYPE = {"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 8}
MiB = 1024 * 1024


# ----------------------------------------------------------------------------- GGUF writing


def write_gguf(path: Path, shape: dict, n_layers: int) -> None:
    """Write a llama-arch F16 GGUF with the given widths and random weights."""
    import gguf
    import numpy as np

    h, nh, nkv, hd, ffn, vocab = (
        shape[k] for k in ("hidden", "heads", "kv_heads", "head_dim", "ffn", "vocab")
    )
    tensors: list[tuple[str, tuple[int, ...]]] = [("token_embd.weight", (vocab, h))]
    for i in range(n_layers):
        tensors += [
            (f"blk.{i}.attn_norm.weight", (h,)),
            (f"blk.{i}.attn_q.weight", (nh * hd, h)),
            (f"blk.{i}.attn_k.weight", (nkv * hd, h)),
            (f"blk.{i}.attn_v.weight", (nkv * hd, h)),
            (f"blk.{i}.attn_output.weight", (h, nh * hd)),
            (f"blk.{i}.ffn_norm.weight", (h,)),
            (f"blk.{i}.ffn_gate.weight", (ffn, h)),
            (f"blk.{i}.ffn_up.weight", (ffn, h)),
            (f"blk.{i}.ffn_down.weight", (h, ffn)),
        ]
    tensors.append(("output_norm.weight", (h,)))
    if not shape["tied"]:
        tensors.append(("output.weight", (vocab, h)))

    # One shared pool of random F16 values; every 2-D tensor is a contiguous view of it.
    biggest = max(int(np.prod(s)) for _, s in tensors)
    rng = np.random.default_rng(0)
    pool = np.empty(biggest, dtype=np.float16)
    step = 1 << 24
    for a in range(0, biggest, step):
        b = min(biggest, a + step)
        pool[a:b] = (rng.standard_normal(b - a, dtype=np.float32) * 0.02).astype(np.float16)
    ones = np.ones(max(h, 1), dtype=np.float32)

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name(f"random-{path.stem}")
    w.add_context_length(131072)
    w.add_embedding_length(h)
    w.add_block_count(n_layers)
    w.add_feed_forward_length(ffn)
    w.add_head_count(nh)
    w.add_head_count_kv(nkv)
    w.add_key_length(hd)
    w.add_value_length(hd)
    w.add_rope_dimension_count(hd)
    w.add_rope_freq_base(500000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(vocab)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    # minimal SentencePiece ("llama") vocabulary: unk, bos, eos, 256 byte tokens, fillers
    toks = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL] + [
        gguf.TokenType.BYTE
    ] * 256
    toks += [f"\u2581t{i}" for i in range(vocab - len(toks))]
    types += [gguf.TokenType.NORMAL] * (vocab - len(types))
    w.add_tokenizer_model("llama")
    w.add_token_list(toks)
    w.add_token_scores([0.0] * vocab)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    for name, s in tensors:
        if len(s) == 1:
            w.add_tensor(name, ones[: s[0]])
        else:
            w.add_tensor(name, pool[: int(np.prod(s))].reshape(s))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ----------------------------------------------------------------------------- child side


def read_status() -> dict:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem", "VmSize"):
                out[k] = int(v.split()[0]) / 1024  # kB -> MiB
    return out


NUM = r"([0-9]+(?:\.[0-9]+)?)"
PATTERNS = {
    "model_buffers": re.compile(r"(\S+) model buffer size\s*=\s*" + NUM + " MiB"),
    "compute_buffers": re.compile(r"(\S+) compute buffer size\s*=\s*" + NUM + " MiB"),
    "output_buffers": re.compile(r"(\S+)\s+output buffer size\s*=\s*" + NUM + " MiB"),
    "kv_buffers": re.compile(r"(\S+) KV buffer size\s*=\s*" + NUM + " MiB"),
}
KV_RE = re.compile(
    r"size\s*=\s*"
    + NUM
    + r" MiB \(\s*(\d+) cells,\s*(\d+) layers.*?K \((\w+)\):\s*"
    + NUM
    + r" MiB, V \((\w+)\):\s*"
    + NUM
    + " MiB"
)
DTOR_RE = re.compile(r"CPU compute buffer size is " + NUM + " MiB")
CTX_RE = re.compile(
    r"llama_context:\s+(n_ctx|n_ctx_seq|n_batch|n_ubatch|flash_attn|n_seq_max)\s*=\s*(\S+)"
)


def parse_log(text: str) -> dict:
    res: dict = {}
    for key, pat in PATTERNS.items():
        d: dict = {}
        for name, val in pat.findall(text):
            d[name] = d.get(name, 0.0) + float(val)  # a buffer type can print more than once
        res[key] = d
    m = KV_RE.search(text)
    if m:
        res["kv"] = dict(
            size_mib=float(m.group(1)),
            cells=int(m.group(2)),
            layers=int(m.group(3)),
            type_k=m.group(4),
            k_mib=float(m.group(5)),
            type_v=m.group(6),
            v_mib=float(m.group(7)),
        )
    res["ctx"] = dict(CTX_RE.findall(text))
    return res


def child_load(spec: dict) -> dict:  # noqa: PLR0915
    """Load one model/context in this (fresh) process and report what llama.cpp printed."""
    base = read_status()
    import llama_cpp

    after_import = read_status()

    kw = dict(
        n_ctx=spec["n_ctx"],
        n_batch=spec["n_batch"],
        n_ubatch=spec["n_ubatch"],
        flash_attn=spec["flash_attn"],
        n_gpu_layers=0,
        use_mmap=spec["use_mmap"],
        n_threads=spec["threads"],
        n_threads_batch=spec["threads"],
        verbose=True,
    )
    if spec.get("type_k"):
        kw["type_k"] = GGML_TYPE[spec["type_k"]]
    if spec.get("type_v"):
        kw["type_v"] = GGML_TYPE[spec["type_v"]]

    log = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 (closed below)
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(log.fileno(), 2)
    err = None
    try:
        t0 = time.time()
        llm = llama_cpp.Llama(model_path=spec["model"], **kw)
        t_load = time.time() - t0
        after_load = read_status()
        n_vocab = llm.n_vocab()
        toks = [1] + [300 + (i * 7919) % (n_vocab - 300) for i in range(spec.get("prompt", 16) - 1)]
        t0 = time.time()
        llm.eval(toks)  # prompt (one ubatch)
        llm.eval([301])  # one single-token decode
        t_eval = time.time() - t0
        after_decode = read_status()
        after_fill = None
        after_full_ctx = None
        if spec.get("fill"):
            # a prompt of exactly n_ubatch tokens, then keep going until the context is full: the
            # last ubatch attends over all n_ctx cells, the case the compute buffer is sized for
            llm.reset()
            llm._ctx.kv_cache_clear()
            n, n_ctx = int(spec["n_ubatch"]), llm.n_ctx()
            prompt = [1] + [300 + (i * 7919) % (n_vocab - 300) for i in range(n_ctx - 2)]
            llm.eval(prompt[:n])
            after_fill = read_status()
            llm.eval(prompt[n:])
            after_full_ctx = read_status()
        del llm  # the destructor prints the compute buffer with 4 decimals
    except Exception as exc:  # report, do not hide
        err = repr(exc)
        after_load = after_decode = read_status()
        after_fill = after_full_ctx = None
        t_load = t_eval = 0.0
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
    log.seek(0)
    text = log.read().decode("utf-8", "replace")
    res = parse_log(text)
    m = DTOR_RE.search(text)
    if m:
        res["compute_exact_mib"] = float(m.group(1))
    res.update(
        rss_fill=after_fill,
        rss_full_ctx=after_full_ctx,
        spec=spec,
        rss_base=base,
        rss_import=after_import,
        rss_load=after_load,
        rss_decode=after_decode,
        t_load=round(t_load, 2),
        t_eval=round(t_eval, 2),
        error=err,
    )
    if err:
        # add llama.cpp's own reason, e.g. "quantized V cache requires flash_attn to be enabled"
        why = [
            ln.strip() for ln in text.splitlines() if re.search(r"requires|error|failed", ln, re.I)
        ]
        res["error"] = f"{err}: {why[-1]}" if why else err
    if err or spec.get("keep_log"):
        res["log_tail"] = text[-4000:]
    return res


def child_peak(spec: dict) -> dict:
    """The issue-17 workload: a prompt of n_ctx - 16 tokens, then 8 generated tokens, one at a
    time (only the last position's logits are computed, as in any generation).  Reports the
    peak resident memory (VmHWM) and what llama.cpp printed."""
    base = read_status()
    import llama_cpp

    after_import = read_status()
    kw = dict(
        n_ctx=spec["n_ctx"],
        n_batch=spec["n_batch"],
        n_ubatch=spec["n_ubatch"],
        flash_attn=spec["flash_attn"],
        n_gpu_layers=0,
        use_mmap=False,
        n_threads=spec["threads"],
        n_threads_batch=spec["threads"],
        verbose=True,
    )
    if spec.get("type_k"):
        kw["type_k"] = kw["type_v"] = GGML_TYPE[spec["type_k"]]
    log = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 (closed below)
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(log.fileno(), 2)
    err, after_load, after_prompt, t_fill = None, None, None, 0.0
    try:
        llm = llama_cpp.Llama(model_path=spec["model"], **kw)
        after_load = read_status()
        n_vocab, n_ctx = llm.n_vocab(), llm.n_ctx()
        prompt = [1] + [300 + (i * 7919) % (n_vocab - 300) for i in range(n_ctx - 17)]
        t0 = time.time()
        llm.eval(prompt)
        after_prompt = read_status()
        for i in range(8):
            llm.eval([300 + (i * 104729) % (n_vocab - 300)])
        t_fill = time.time() - t0
        del llm
    except Exception as exc:  # report, do not hide
        err = repr(exc)
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
    log.seek(0)
    text = log.read().decode("utf-8", "replace")
    res = parse_log(text)
    m = DTOR_RE.search(text)
    if m:
        res["compute_exact_mib"] = float(m.group(1))
    res.update(
        spec=spec,
        rss_base=base,
        rss_import=after_import,
        rss_load=after_load,
        rss_prompt=after_prompt,
        rss_end=read_status(),
        t_fill=round(t_fill, 1),
        error=err,
    )
    if err:
        res["log_tail"] = text[-3000:]
    return res


def child_baseline(_spec: dict) -> dict:
    bare = read_status()
    import llama_cpp

    imported = read_status()
    llama_cpp.llama_backend_init()
    init = read_status()
    import numpy  # noqa: F401  (llama_cpp already imports it; kept for clarity)

    return dict(
        rss_bare_python=bare,
        rss_import=imported,
        rss_backend_init=init,
        system_info=llama_cpp.llama_print_system_info().decode(),
    )


def child_quantize(spec: dict) -> dict:
    import llama_cpp

    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = getattr(llama_cpp, "LLAMA_FTYPE_MOSTLY_" + spec["ftype"])
    p.nthread = spec["threads"]
    t0 = time.time()
    rc = llama_cpp.llama_model_quantize(spec["src"].encode(), spec["dst"].encode(), p)
    return dict(rc=rc, seconds=round(time.time() - t0, 1))


CHILD = {
    "peak": child_peak,
    "load": child_load,
    "baseline": child_baseline,
    "quantize": child_quantize,
}


# ----------------------------------------------------------------------------- parent side


def run_child(kind: str, spec: dict, timeout: int = 1800) -> dict:
    p = subprocess.run(
        [sys.executable, str(SCRIPT), "--child", kind, json.dumps(spec)],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"child {kind} {spec} failed rc={p.returncode}\n{p.stderr[-3000:]}")
    return json.loads(lines[-1])


def model_path(workdir: Path, name: str, layers: int, ftype: str = "F16") -> Path:
    return workdir / f"{name}-L{layers}-{ftype}.gguf"


def ensure_gguf(workdir: Path, name: str, layers: int) -> Path:
    p = model_path(workdir, name, layers)
    if not p.exists():
        tmp = p.with_suffix(".part")
        t0 = time.time()
        write_gguf(tmp, SHAPES[name], layers)
        tmp.rename(p)
        log(f"wrote {p.name} ({p.stat().st_size / 1e9:.2f} GB, {time.time() - t0:.0f}s)")
    return p


def ensure_quant(
    workdir: Path, src: Path, name: str, layers: int, ftype: str, threads: int
) -> Path:
    dst = model_path(workdir, name, layers, ftype)
    if not dst.exists():
        r = run_child(
            "quantize", dict(src=str(src), dst=str(dst) + ".part", ftype=ftype, threads=threads)
        )
        if r["rc"] != 0:
            raise RuntimeError(f"quantize {ftype} failed: {r}")
        Path(str(dst) + ".part").rename(dst)
        log(f"quantized {dst.name} ({dst.stat().st_size / 1e9:.3f} GB, {r['seconds']}s)")
    return dst


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load(
    path: Path,
    threads: int,
    n_ctx: int,
    n_batch: int = 2048,
    n_ubatch: int = 512,
    flash_attn: bool = False,
    use_mmap: bool = True,
    type_k: str | None = None,
    type_v: str | None = None,
    fill: bool = False,
) -> dict:
    spec = dict(
        fill=fill,
        model=str(path),
        n_ctx=n_ctx,
        n_batch=n_batch,
        n_ubatch=n_ubatch,
        flash_attn=flash_attn,
        use_mmap=use_mmap,
        type_k=type_k,
        type_v=type_v,
        threads=threads,
    )
    r = run_child("load", spec)
    if r.get("error"):
        log(f"ERROR {path.name} {spec}: {r['error']}\n{r.get('log_tail', '')[-1500:]}")
    return r


def cpu_compute(r: dict) -> float | None:
    if r.get("compute_exact_mib") is not None:
        return round(r["compute_exact_mib"], 4)
    d = r.get("compute_buffers") or {}
    return round(sum(d.values()), 2) if d else None


def shape_fields(name: str) -> dict:
    s = SHAPES[name]
    return dict(
        shape=name,
        hidden=s["hidden"],
        heads=s["heads"],
        kv_heads=s["kv_heads"],
        head_dim=s["head_dim"],
        ffn=s["ffn"],
        vocab=s["vocab"],
    )


def kv_formula_mib(name: str, layers: int, n_ctx: int, tk: str, tv: str) -> float:
    s = SHAPES[name]
    per = s["kv_heads"] * s["head_dim"] * n_ctx * layers
    return round(per * (BYTES_PER_ELT[tk] + BYTES_PER_ELT[tv]) / MiB, 3)


def part_compute(workdir: Path, threads: int, rows: dict, keep: bool, shapes: list[str]) -> None:
    for name in shapes:
        layers = 4
        path = ensure_gguf(workdir, name, layers)
        combos = [(c, 2048, 512) for c in CTX_SWEEP] + [(4096, 2048, u) for u in UBATCH_SWEEP]
        for fa in (False, True):
            for n_ctx, nb, nub in combos:
                r = load(path, threads, n_ctx, nb, nub, flash_attn=fa)
                if r.get("error"):
                    continue
                eff = r["ctx"]
                row = dict(
                    shape_fields(name),
                    layers=layers,
                    n_ctx=int(eff.get("n_ctx", n_ctx)),
                    n_batch=int(eff.get("n_batch", nb)),
                    n_ubatch=int(eff.get("n_ubatch", nub)),
                    flash_attn=fa,
                    size_mib=cpu_compute(r),
                    output_mib=round(sum(r["output_buffers"].values()), 2),
                    rss_load_mib=round(r["rss_load"]["VmRSS"], 1),
                    rss_decode_mib=round(r["rss_decode"]["VmRSS"], 1),
                )
                rows["compute_buffer"].append(row)
                log(
                    f"compute {name} ctx={row['n_ctx']} ub={row['n_ubatch']} fa={fa}: "
                    f"{row['size_mib']} MiB"
                )
                if r.get("kv") and not fa and nub == 512:
                    kv = r["kv"]
                    rows["kv_cache"].append(
                        dict(
                            shape_fields(name),
                            layers=kv["layers"],
                            n_ctx=kv["cells"],
                            type_k=kv["type_k"],
                            type_v=kv["type_v"],
                            flash_attn=fa,
                            size_mib=kv["size_mib"],
                            k_mib=kv["k_mib"],
                            v_mib=kv["v_mib"],
                            formula_mib=kv_formula_mib(
                                name, kv["layers"], kv["cells"], kv["type_k"], kv["type_v"]
                            ),
                        )
                    )
        # KV cache types at n_ctx 4096 (and 32768 for q8_0/q4_0)
        for n_ctx, tk, tv, fa in [
            (4096, "q8_0", "q8_0", True),
            (4096, "q4_0", "q4_0", True),
            (4096, "q8_0", "f16", False),
            (4096, "q4_0", "f16", False),
            (32768, "q8_0", "q8_0", True),
            (32768, "q4_0", "q4_0", True),
            (4096, "q8_0", "q8_0", False),
        ]:
            r = load(path, threads, n_ctx, 2048, 512, flash_attn=fa, type_k=tk, type_v=tv)
            if r.get("error") or not r.get("kv"):
                rows["kv_cache"].append(
                    dict(
                        shape_fields(name),
                        layers=layers,
                        n_ctx=n_ctx,
                        type_k=tk,
                        type_v=tv,
                        flash_attn=fa,
                        error=(r.get("error") or "no KV line")[:300],
                    )
                )
                log(f"kv {name} {tk}/{tv} fa={fa}: failed: {r.get('error')}")
                continue
            kv = r["kv"]
            rows["kv_cache"].append(
                dict(
                    shape_fields(name),
                    layers=kv["layers"],
                    n_ctx=kv["cells"],
                    type_k=kv["type_k"],
                    type_v=kv["type_v"],
                    flash_attn=fa,
                    size_mib=kv["size_mib"],
                    k_mib=kv["k_mib"],
                    v_mib=kv["v_mib"],
                    formula_mib=kv_formula_mib(
                        name, kv["layers"], kv["cells"], kv["type_k"], kv["type_v"]
                    ),
                    compute_mib=cpu_compute(r),
                )
            )
            log(
                f"kv {name} ctx={n_ctx} {tk}/{tv} fa={fa}: {kv['size_mib']} MiB, "
                f"compute {cpu_compute(r)}"
            )
        if name == "llama-3.2-1b":
            # depth check: compute buffer with 2 layers (16 layers is measured in part_model)
            p2 = ensure_gguf(workdir, name, 2)
            for fa in (False, True):
                r = load(p2, threads, 4096, 2048, 512, flash_attn=fa)
                rows["compute_buffer"].append(
                    dict(
                        shape_fields(name),
                        layers=2,
                        n_ctx=4096,
                        n_batch=2048,
                        n_ubatch=512,
                        flash_attn=fa,
                        size_mib=cpu_compute(r),
                        output_mib=round(sum(r["output_buffers"].values()), 2),
                    )
                )
            if not keep:
                p2.unlink()
        if not keep:
            path.unlink()


def part_model(workdir: Path, threads: int, rows: dict, keep: bool) -> None:
    name, layers = "llama-3.2-1b", SHAPES["llama-3.2-1b"]["real_layers"]
    f16 = ensure_gguf(workdir, name, layers)
    files = {"F16": f16}
    for ft in ("Q8_0", "Q4_K_M", "Q4_0"):
        files[ft] = ensure_quant(workdir, f16, name, layers, ft, threads)
    for ft, path in files.items():
        size = path.stat().st_size
        for mmap in (True, False):
            for fa in (False, True):
                r = load(path, threads, 4096, 2048, 512, flash_attn=fa, use_mmap=mmap, fill=True)
                if r.get("error"):
                    continue
                mb = r["model_buffers"]
                if not fa:
                    rows["model_buffer"].append(
                        dict(
                            shape_fields(name),
                            layers=layers,
                            precision=ft,
                            use_mmap=mmap,
                            file_bytes=size,
                            file_mib=round(size / MiB, 2),
                            buffers=", ".join(f"{k} = {v:.2f}" for k, v in mb.items()),
                            cpu_mapped_mib=mb.get("CPU_Mapped", 0.0),
                            cpu_mib=mb.get("CPU", 0.0),
                            cpu_repack_mib=mb.get("CPU_REPACK", 0.0),
                            total_mib=round(sum(mb.values()), 2),
                        )
                    )
                kv = r.get("kv") or {}
                rows["rss"].append(
                    dict(
                        shape_fields(name),
                        layers=layers,
                        precision=ft,
                        use_mmap=mmap,
                        flash_attn=fa,
                        n_ctx=4096,
                        n_batch=2048,
                        n_ubatch=512,
                        file_mib=round(size / MiB, 2),
                        model_buffers_mib=round(sum(mb.values()), 2),
                        repack_mib=mb.get("CPU_REPACK", 0.0),
                        kv_mib=kv.get("size_mib"),
                        compute_mib=cpu_compute(r),
                        output_mib=round(sum(r["output_buffers"].values()), 2),
                        rss_import_mib=round(r["rss_import"]["VmRSS"], 1),
                        rss_load_mib=round(r["rss_load"]["VmRSS"], 1),
                        rss_load_anon_mib=round(r["rss_load"]["RssAnon"], 1),
                        rss_load_file_mib=round(r["rss_load"]["RssFile"], 1),
                        rss_decode_mib=round(r["rss_decode"]["VmRSS"], 1),
                        rss_decode_anon_mib=round(r["rss_decode"]["RssAnon"], 1),
                        rss_decode_file_mib=round(r["rss_decode"]["RssFile"], 1),
                        rss_full_ubatch_mib=round(r["rss_fill"]["VmRSS"], 1),
                        rss_full_ubatch_anon_mib=round(r["rss_fill"]["RssAnon"], 1),
                        rss_full_ubatch_file_mib=round(r["rss_fill"]["RssFile"], 1),
                        rss_full_ctx_mib=round(r["rss_full_ctx"]["VmRSS"], 1),
                        rss_full_ctx_anon_mib=round(r["rss_full_ctx"]["RssAnon"], 1),
                        rss_full_ctx_file_mib=round(r["rss_full_ctx"]["RssFile"], 1),
                        peak_rss_mib=round(r["rss_full_ctx"]["VmHWM"], 1),
                    )
                )
                if not mmap:
                    rows["compute_buffer"].append(
                        dict(
                            shape_fields(name),
                            layers=layers,
                            n_ctx=4096,
                            n_batch=2048,
                            n_ubatch=512,
                            flash_attn=fa,
                            size_mib=cpu_compute(r),
                            precision=ft,
                            use_mmap=mmap,
                        )
                    )
                log(
                    f"model {ft} mmap={mmap} fa={fa}: buffers {mb} "
                    f"rss load {r['rss_load']['VmRSS']:.0f} "
                    f"decode {r['rss_decode']['VmRSS']:.0f} MiB"
                )
    if not keep:
        for p in files.values():
            p.unlink()


# The issue-17 set: (shape, layers, weights, n_ctx, flash_attn, kv type).  Fewer layers than the
# real model keep a filled context affordable on 2 cores; what depends on depth (weights, KV)
# is printed by llama.cpp and held apart, what does not (compute buffer, scratch) is the point.
PEAK_CTX = (512, 2048, 8192)


def peak_plan(shapes: list[str], ctxs: tuple[int, ...]) -> list[tuple]:
    plan: list[tuple] = []
    for n_ctx in ctxs:  # small contexts first: they are cheap, so a cut-short run has them all
        for name in shapes:
            layers = 2
            if n_ctx >= 8192:
                # A filled 8k context costs minutes on one thread: Q4_K_M with flash attention
                # off and on for every shape, and one q8_0 cache.
                plan.append((name, layers, "Q4_K_M", n_ctx, False, "f16"))
                plan.append((name, layers, "Q4_K_M", n_ctx, True, "f16"))
                if name == "llama-3.2-1b":
                    plan.append((name, layers, "Q8_0", n_ctx, True, "q8_0"))
                continue
            for fa in (False, True):
                plan.append((name, layers, "Q4_K_M", n_ctx, fa, "f16"))
            plan.append((name, layers, "Q8_0", n_ctx, True, "f16"))
            plan.append((name, layers, "Q8_0", n_ctx, True, "q8_0"))
    if "llama-3.2-1b" in shapes and 2048 in ctxs:  # the real depth, the headline case
        plan += [("llama-3.2-1b", 16, "Q4_K_M", 2048, fa, "f16") for fa in (True, False)]
    return plan


def parse_case(text: str) -> tuple:
    """One --peak-case, SHAPE:LAYERS:WEIGHTS:N_CTX:FA:KV (FA is on or off)."""
    name, layers, ft, n_ctx, fa, kvt = text.split(":")
    if name not in SHAPES or fa not in ("on", "off") or kvt not in BYTES_PER_ELT:
        raise SystemExit(f"--peak-case {text}: expected SHAPE:LAYERS:WEIGHTS:N_CTX:on|off:KV")
    return (name, int(layers), ft, int(n_ctx), fa == "on", kvt)


def part_peak(workdir: Path, threads: int, rows: dict, keep: bool, plan: list[tuple]) -> None:
    """Peak RSS with the context filled (n_ctx - 16 prompt tokens, 8 generated), mmap off."""
    jl = workdir / "peak-rows.jsonl"
    done = set()
    if jl.exists():  # resume: rows already measured are kept, not re-run
        for ln in jl.read_text().splitlines():
            row = json.loads(ln)
            rows["peak_rss"].append(row)
            done.add(tuple(row["key"]))
    files: dict[tuple, Path] = {}
    for name, layers, ft, n_ctx, fa, kvt in plan:
        key = [name, layers, ft, n_ctx, fa, kvt]
        if tuple(key) in done:
            continue
        fk = (name, layers, ft)
        if fk not in files:
            files[fk] = model_path(workdir, name, layers, ft)
            if not files[fk].exists():  # a kept quantized file needs no F16 (16 GB at 8B)
                f16 = ensure_gguf(workdir, name, layers)
                files[fk] = (
                    f16 if ft == "F16" else ensure_quant(workdir, f16, name, layers, ft, threads)
                )
        path = files[fk]
        spec = dict(
            model=str(path),
            n_ctx=n_ctx,
            n_batch=2048,
            n_ubatch=512,
            flash_attn=fa,
            type_k=None if kvt == "f16" else kvt,
            threads=threads,
        )
        r = run_child("peak", spec, timeout=3600)
        if r.get("error"):
            log(f"ERROR peak {key}: {r['error']}\n{r.get('log_tail', '')[-1500:]}")
            continue
        mb, kv, eff = r["model_buffers"], r.get("kv") or {}, r["ctx"]
        row = dict(
            shape_fields(name),
            key=key,
            layers=layers,
            precision=ft,
            file_bytes=path.stat().st_size,
            n_ctx=int(eff.get("n_ctx", n_ctx)),
            n_batch=int(eff.get("n_batch", 2048)),
            n_ubatch=int(eff.get("n_ubatch", 512)),
            flash_attn=fa,
            kv_type=kvt,
            threads=threads,
            prompt_tokens=int(eff.get("n_ctx", n_ctx)) - 16,
            generated_tokens=8,
            model_buffers=", ".join(f"{k} = {v:.2f}" for k, v in mb.items()),
            model_buffers_mib=round(sum(mb.values()), 2),
            repack_mib=mb.get("CPU_REPACK", 0.0),
            kv_mib=kv.get("size_mib"),
            compute_mib=cpu_compute(r),
            output_mib=round(sum(r["output_buffers"].values()), 2),
            rss_import_mib=round(r["rss_import"]["VmRSS"], 1),
            rss_load_mib=round(r["rss_load"]["VmRSS"], 1),
            rss_prompt_mib=round(r["rss_prompt"]["VmRSS"], 1),
            peak_rss_mib=round(r["rss_end"]["VmHWM"], 1),
            fill_seconds=r["t_fill"],
        )
        row = {k: v for k, v in row.items() if v is not None}
        rows["peak_rss"].append(row)
        with jl.open("a") as f:
            f.write(json.dumps(row) + "\n")
        log(
            f"peak {key}: load {row['rss_load_mib']} peak {row['peak_rss_mib']} MiB "
            f"(model {row['model_buffers_mib']}, kv {row.get('kv_mib')}, compute "
            f"{row.get('compute_mib')}) {row['fill_seconds']}s"
        )
    if not keep:
        for p in {*files.values()}:
            p.unlink(missing_ok=True)


def part_baseline(rows: dict) -> None:
    r = run_child("baseline", {})
    rows["baseline_rss"].append(
        dict(
            what="python + import llama_cpp + llama_backend_init, nothing loaded",
            bare_python_mib=round(r["rss_bare_python"]["VmRSS"], 1),
            after_import_mib=round(r["rss_import"]["VmRSS"], 1),
            after_backend_init_mib=round(r["rss_backend_init"]["VmRSS"], 1),
            system_info=r["system_info"].strip(),
        )
    )
    log(f"baseline {rows['baseline_rss'][-1]}")


# ----------------------------------------------------------------------------- TOML output


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v), ensure_ascii=False)


HEADER = """\
# llama.cpp memory allocations measured with llama-cpp-python {ver} (bundled ggml 0.25.3),
# CPU backend, n_gpu_layers = 0, on a 2-core AMD EPYC VM.  Produced by
# {src}; re-run it to reproduce.
# Not read by canirun at run time.
#
# Model files are random-weight llama-arch GGUFs with the named model's published widths
# (hidden, heads, kv_heads, head_dim, ffn, vocab).  compute_buffer and kv_cache rows use 4-layer
# F16 files unless `layers` says otherwise: the compute buffer does not depend on depth or weight
# type (rows with layers = 2 and 16, and with `precision`, check this); the KV cache is per layer.
# "gemma-like-256k" is Gemma 2 2B's widths written as a plain llama file (no soft-capping, no
# sliding window).
#
# Sizes are MiB (2^20 bytes).  compute_buffer.size_mib is "CPU compute buffer size" (4 decimals,
# from the line llama.cpp prints when the context is freed); other sizes are as printed
# (2 decimals).  n_batch and n_ubatch are the effective values (llama.cpp clamps n_batch to
# n_ctx).  kv_cache.formula_mib = layers x kv_heads x head_dim x n_ctx x (bytes/elt of K + of V),
# f16 = 2, q8_0 = 34/32, q4_0 = 18/32.
#
# rss_* are VmRSS (and its RssAnon / RssFile parts) from /proc/self/status of a fresh process:
# rss_import after `import llama_cpp`, rss_load after Llama() returned, rss_decode after a
# 16-token prompt and one single-token decode, rss_full_ubatch after a fresh n_ubatch-token
# prompt, rss_full_ctx after that prompt was continued until the context was full (n_ctx - 1
# tokens).  The reserved compute buffer is malloc'd but becomes resident only as it is touched;
# file pages of an mmap'd model count in RssFile.
"""


PEAK_MARK = "# ---- [[peak_rss]]"
PEAK_HEADER = f"""
{PEAK_MARK}: issue 17's workload (scripts/measure_llamacpp.py --parts peak).  A fresh process,
# use_mmap off, n_batch 2048, n_ubatch 512, CPU backend; a prompt of n_ctx - 16 tokens (evaluated
# in n_batch chunks, the last token of each chunk asking for logits), then 8 tokens generated
# one at a time.  peak_rss_mib is VmHWM at the end (the peak over load and generation).
# model_buffers_mib is the sum of the printed model buffers (CPU + CPU_REPACK), file_bytes the
# GGUF file.  `layers` is less than the real model's to keep a filled context affordable on two
# cores: depth changes the weights and the KV cache, which llama.cpp prints, not the compute
# buffer or the work buffer.  threads = n_threads and n_threads_batch; 2 threads gave the same
# peak as 1 (qwen1.5-0.5b-mha Q4_K_M, n_ctx 2048, flash attention off: 342.3 MiB each time,
# in this set and in two re-runs with 1 and 2 threads).
"""


def append_peak(rows: list[dict], out: Path, ver: str) -> None:
    """Replace the [[peak_rss]] tables at the end of --out, keeping everything before them."""
    text = (
        out.read_text(encoding="utf-8") if out.exists() else HEADER.format(ver=ver, src=SOURCE_NOTE)
    )
    text = text.split("\n" + PEAK_MARK)[0].rstrip("\n") + "\n"
    parts = [text, PEAK_HEADER]
    for item in rows:
        row = dict({k: v for k, v in item.items() if k != "key"}, llama_cpp_python=ver)
        parts.append(
            "\n[[peak_rss]]\n"
            + "\n".join(f"{k} = {toml_value(v)}" for k, v in row.items() if v is not None)
            + "\n"
        )
    out.write_text("".join(parts), encoding="utf-8")


def write_toml(rows: dict, out: Path, ver: str) -> None:
    parts = [HEADER.format(ver=ver, src=SOURCE_NOTE)]
    for kind, items in rows.items():
        for item in items:
            row = dict(item, llama_cpp_python=ver, source=SOURCE_NOTE)
            parts.append(
                f"\n[[{kind}]]\n"
                + "\n".join(f"{k} = {toml_value(v)}" for k, v in row.items() if v is not None)
                + "\n"
            )
    out.write_text("".join(parts), encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--child", nargs=2, metavar=("KIND", "JSON"), help=argparse.SUPPRESS)
    ap.add_argument("--workdir", default="/tmp/llmeasure")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument(
        "--parts", default="baseline,compute,model", help="comma list of baseline,compute,model"
    )
    ap.add_argument("--shapes", default=",".join(SHAPES), help="shapes for the compute/kv part")
    ap.add_argument("--peak-ctx", default=",".join(map(str, PEAK_CTX)), help="n_ctx for peak")
    ap.add_argument(
        "--peak-case",
        action="append",
        metavar="SHAPE:LAYERS:WEIGHTS:N_CTX:FA:KV",
        help="measure only these peak loads, e.g. llama-3.2-1b:2:Q4_K_M:32768:on:f16 (repeatable)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the generated GGUF files")
    ap.add_argument("--json", help="also dump the raw rows to this JSON file")
    ap.add_argument(
        "--append-peak", help="measure nothing: put a peak-rows.jsonl's rows at the end of --out"
    )
    ap.add_argument("--from-json", help="measure nothing: rewrite --out from a --json dump")
    a = ap.parse_args()

    if a.child:
        print(json.dumps(CHILD[a.child[0]](json.loads(a.child[1]))))
        return 0

    from importlib.metadata import version

    ver = version("llama_cpp_python")
    if a.append_peak:
        peak = [json.loads(ln) for ln in Path(a.append_peak).read_text().splitlines() if ln]
        append_peak(peak, Path(a.out), ver)
        log(f"appended {len(peak)} [[peak_rss]] rows to {a.out}")
        return 0
    if a.from_json:
        write_toml(json.loads(Path(a.from_json).read_text()), Path(a.out), ver)
        log(f"wrote {a.out}")
        return 0
    workdir = Path(a.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    rows: dict = {
        k: []
        for k in ("compute_buffer", "kv_cache", "model_buffer", "rss", "baseline_rss", "peak_rss")
    }
    parts = set(a.parts.split(","))
    if "baseline" in parts:
        part_baseline(rows)
    if "compute" in parts:
        part_compute(workdir, a.threads, rows, a.keep, a.shapes.split(","))
    if "model" in parts:
        part_model(workdir, a.threads, rows, a.keep)
    if "peak" in parts:
        ctxs = tuple(int(c) for c in a.peak_ctx.split(","))
        plan = (
            [parse_case(c) for c in a.peak_case]
            if a.peak_case
            else peak_plan(a.shapes.split(","), ctxs)
        )
        part_peak(workdir, a.threads, rows, a.keep, plan)
    rows = {k: v for k, v in rows.items() if v}
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    write_toml(rows, Path(a.out), ver)
    log(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
