"""The command line both model rewriters share: `SCRIPT SOURCE TARGET` writes the rewritten model (or one line
on stderr and nothing written), `SCRIPT --check SOURCE TARGET` compares a rewrite with its source."""

import sys

import onnx


def main(argv, name, doc, rewrite, check, refused=(Exception,)):
    """`rewrite(source)` gives the ONNX model to save, raising one of `refused` for input it cannot take;
    `check(source, target)` gives the disagreements found."""
    checking = argv[1:2] == ["--check"]
    if checking:
        argv = argv[1:]
    if len(argv) != 3:
        print(doc, file=sys.stderr)
        return 2
    source, target = argv[1], argv[2]
    if checking:
        failures = check(source, target)
        for failure in failures:
            print(f"{name}: {target}: {failure}", file=sys.stderr)
        return 1 if failures else 0
    try:
        model = rewrite(source)
    except refused as error:
        print(f"{name}: {source}: {error}", file=sys.stderr)
        return 1
    onnx.save(model, target)
    return 0
