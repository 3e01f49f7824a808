"""Which weights llama.cpp serves: the GGUF as it ships, or re-quantized once to Q8_0 (TUTOR_GGUF_WEIGHTS).

Why Q8_0 for the embedded model: llama.cpp reads a prompt through a matrix-matrix kernel that x86 has for Q8_0
and Q4_0 but not for the shipped Q4_1, so 8-bit weights read prompts about twice as fast. Measured on the 2-core
machine, 1 thread, ~780-token prompt, adapter applied: 104-140 tok/s from Q4_1, 202-272 tok/s from Q8_0; decoding
slows by 7-9% (89.5/109.3 -> 81.3/102.4 tok/s: 8.5 instead of 5 bits per weight to read), and memory grows by
~47 MB (98 MB -> 145 MB file). A grounded answer reads ~800 tokens and writes ~160, so the prompt dominates.

Fidelity: the Q4_1 values are re-rounded to an 8-bit grid (an error of at most 1/254 of each 32-weight block's
largest value), below the noise llama.cpp's 8-bit activations already add: against transformers with the
adapter, next-token log-probabilities were 0.107 nats apart on average from Q8_0 (0.089 from Q4_1; 0.107 between
the two back-ends without any adapter), with the same top token 96.3% of the time (96.4%).

The re-quantized file is written once (0.7 s) under TUTOR_DATA_DIR/models/, keyed by the source file.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import tempfile
from pathlib import Path

import llama_cpp

from tutor.config import EMBEDDED, Settings
from tutor.errors import ModelLoadError

Q8_0 = 7  # enum llama_ftype: LLAMA_FTYPE_MOSTLY_Q8_0


def wanted(settings: Settings) -> str:
    """`q8_0` or `as-is`; auto re-quantizes the embedded model only (a large Q4 model would double in size)."""
    if settings.gguf_weights != "auto":
        return settings.gguf_weights
    return "q8_0" if settings.model == EMBEDDED else "as-is"


@contextlib.contextmanager
def quiet_native_output():
    """Send what native code writes to file descriptors 1 and 2 to /dev/null for the duration."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def serving_file(settings: Settings, source: Path, file_type: int | None, threads: int) -> tuple[Path, bool]:
    """The GGUF to load, and whether it was already there (re-quantized once into the cache when asked)."""
    if wanted(settings) == "as-is" or file_type == Q8_0:
        return source, True
    stat = source.stat()
    target = settings.model_cache_dir / f"{source.stem}-q8_0-{stat.st_size}-{int(stat.st_mtime)}.gguf"
    if target.is_file():
        return target, True
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".quantizing-", suffix=".gguf")
    os.close(fd)
    try:
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype, params.allow_requantize, params.nthread = Q8_0, True, threads
        with quiet_native_output():  # llama.cpp prints a line per tensor (272 of them) to stdout
            failed = llama_cpp.llama_model_quantize(str(source).encode(), tmp.encode(), ctypes.byref(params)) != 0
        if failed:
            raise ModelLoadError(f"llama.cpp could not re-quantize {source} to Q8_0; set TUTOR_GGUF_WEIGHTS=as-is "
                                 "to serve the file as it is.")
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target, False
