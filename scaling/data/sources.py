"""Where documents come from: the stdlib's Python sources, or the user's .txt / .jsonl / .parquet files.

Every document carries a `split_key` (a file's relative path, plus the line or row for jsonl/parquet)
whose hash decides train vs held-out: the split depends on names only, never on random state or on
the order files were found, so every machine with the same files gets the same split.
"""
from __future__ import annotations

import glob
import json
import os
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from scaling.config.data import DataConfig
from scaling.data.cache import bucket_of, stable_hash
from scaling.errors import UserError

SUPPORTED_SUFFIXES = (".txt", ".jsonl", ".parquet")
# Many distributions ship the stdlib without its test suites; leaving them out by default keeps
# the corpus the same on every machine with the same Python version.
_STDLIB_TEST_DIRS = {"test", "tests", "idle_test"}
_STDLIB_NEVER = {"site-packages", "dist-packages", "__pycache__"}
_SPLIT_BUCKETS = 10_000


@dataclass(frozen=True)
class SourceFile:
    path: Path
    key: str  # stable relative name: the unit of the train/eval split


@dataclass(frozen=True)
class Document:
    split_key: str
    text: str


def is_eval_document(split_key: str, eval_fraction: float) -> bool:
    return bucket_of(split_key, _SPLIT_BUCKETS) < round(eval_fraction * _SPLIT_BUCKETS)


def stdlib_files(include_tests: bool) -> list[SourceFile]:
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = _STDLIB_NEVER | (set() if include_tests else _STDLIB_TEST_DIRS)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in skip]  # prune: site-packages can be huge
        for name in filenames:
            if name.endswith(".py"):
                path = Path(dirpath) / name
                found.append(SourceFile(path, path.relative_to(root).as_posix()))
    if not found:
        raise UserError(f"data.source: no Python standard library sources found under {root}")
    return sorted(found, key=lambda f: f.key)


def user_files(patterns: list[str], label: str = "data.paths") -> list[SourceFile]:
    """Expand paths, directories and globs; every problem is a one-line UserError naming the path
    (`label` names where the patterns came from: a config field or a command's argument)."""
    paths: list[Path] = []
    for pattern in patterns:
        expanded = os.path.expanduser(pattern)
        if any(c in expanded for c in "*?["):
            matches = sorted(glob.glob(expanded, recursive=True))
            if not matches:
                raise UserError(f"{label}: {pattern!r} matches no files")
            for match in matches:
                paths.extend(_files_under(Path(match), pattern, label) if os.path.isdir(match) else [Path(match)])
        elif os.path.isdir(expanded):
            paths.extend(_files_under(Path(expanded), pattern, label))
        elif os.path.isfile(expanded):
            paths.append(Path(expanded))
        else:
            raise UserError(f"{label}: {pattern}: no such file or directory")
    unique = list(dict.fromkeys(p.resolve() for p in paths))
    for path in unique:
        if path.suffix.lower() not in SUPPORTED_SUFFIXES:
            raise UserError(f"{path}: unsupported file type {path.suffix or '(none)'!r} (expected .txt, .jsonl or .parquet)")
    root = Path(os.path.commonpath([p.parent for p in unique]))
    return [SourceFile(p, p.relative_to(root).as_posix()) for p in unique]


def _files_under(directory: Path, pattern: str, label: str) -> list[Path]:
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
    if not files:
        raise UserError(f"{label}: {pattern}: directory holds no .txt, .jsonl or .parquet files")
    return files


def source_files(cfg: DataConfig) -> list[SourceFile]:
    if cfg.source == "stdlib-code":
        return stdlib_files(cfg.stdlib_include_tests)
    if cfg.source == "files":
        return user_files(cfg.paths)
    raise ValueError(f"{cfg.source} is procedural: it has no source files")


def corpus_fingerprint(cfg: DataConfig) -> dict:
    """Everything the corpus's content depends on; changes (an edited file) invalidate caches."""
    if cfg.source == "synthetic-math":
        return {"source": cfg.source, "math": cfg.math.model_dump()}
    files = source_files(cfg)
    stats = [(f.key, st.st_size, st.st_mtime_ns) for f in files for st in [f.path.stat()]]
    fingerprint = {"source": cfg.source, "files": stable_hash(stats), "n_files": len(files)}
    if cfg.source == "stdlib-code":
        fingerprint.update(python=list(sys.version_info[:3]), tests=cfg.stdlib_include_tests)
    else:
        fingerprint.update(paths=[str(f.path) for f in files], text_field=cfg.text_field)
    return fingerprint


def read_documents(source: SourceFile, text_field: str) -> Iterator[Document]:
    """The non-empty documents of one file: the whole file (.py, .txt), a line (.jsonl) or a row (.parquet)."""
    suffix = source.path.suffix.lower()
    if suffix == ".jsonl":
        yield from _jsonl_documents(source, text_field)
    elif suffix == ".parquet":
        yield from _parquet_documents(source, text_field)
    else:
        text = _read_utf8(source.path)
        if text:
            yield Document(source.key, text)


def iter_text_blocks(source: SourceFile, block_bytes: int) -> Iterator[Document]:
    """A .txt file streamed as UTF-8 blocks of about `block_bytes`, cut after a newline where there is one
    (else at a character boundary), so a file larger than memory never has to be read whole.
    Block b's split_key is `key#b`."""
    carry, offset, block = b"", 0, 0
    with open(source.path, "rb") as f:
        while True:
            chunk = f.read(block_bytes)
            data = carry + chunk
            if not data:
                return
            cut = len(data) if not chunk else data.rfind(b"\n") + 1 or _char_boundary(data)
            piece, carry = data[:cut], data[cut:]
            try:
                text = piece.decode("utf-8")
            except UnicodeDecodeError as e:
                raise UserError(f"{source.path}: not valid UTF-8 text (bad byte at offset {offset + e.start})") \
                    from None
            offset += len(piece)
            if text:
                yield Document(f"{source.key}#{block}", text)
                block += 1


def _char_boundary(data: bytes) -> int:
    """Where the last character of `data` starts (UTF-8 continuation bytes are 0b10xxxxxx): cutting there
    never splits a character; the last one simply moves to the next block."""
    cut = len(data) - 1
    while cut > 0 and data[cut] & 0xC0 == 0x80 and len(data) - cut < 4:
        cut -= 1
    return max(cut, 0)  # 0: too little read yet; the next read extends it


def _read_utf8(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not valid UTF-8 text (bad byte at offset {e.start})") from None


def _jsonl_documents(source: SourceFile, field: str) -> Iterator[Document]:
    try:
        with open(source.path, encoding="utf-8") as lines:  # streamed: jsonl files can be huge
            for lineno, line in enumerate(lines, start=1):
                if line.strip():
                    text = _jsonl_text(source.path, lineno, line, field)
                    if text:
                        yield Document(f"{source.key}:{lineno}", text)
    except UnicodeDecodeError as e:
        raise UserError(f"{source.path}: not valid UTF-8 text (bad byte at offset {e.start} of a line)") from None


def _jsonl_text(path: Path, lineno: int, line: str, field: str) -> str:
    try:
        record = json.loads(line)
    except ValueError as e:
        raise UserError(f"{path}:{lineno}: invalid JSON ({getattr(e, 'msg', e)})") from None
    if not isinstance(record, dict) or field not in record:
        raise UserError(f"{path}:{lineno}: no {field!r} field (data.text_field)")
    text = record[field]
    if not isinstance(text, str):
        raise UserError(f"{path}:{lineno}: field {field!r} is {type(text).__name__}, not text")
    return text


def _parquet_documents(source: SourceFile, field: str) -> Iterator[Document]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError(f"{source.path}: reading .parquet needs pyarrow (pip install 'scaling[parquet]')") from None
    try:
        parquet = pq.ParquetFile(source.path)
    except Exception as e:  # pyarrow raises ArrowInvalid/OSError subclasses for corrupt files
        raise UserError(f"{source.path}: not a readable parquet file ({type(e).__name__})") from None
    names = parquet.schema_arrow.names
    if field not in names:
        raise UserError(f"{source.path}: no column {field!r} (data.text_field); columns: {', '.join(names)}")
    row = 0
    for batch in parquet.iter_batches(columns=[field], batch_size=8192):
        for text in batch.column(0).to_pylist():
            row += 1
            if text is None:
                continue
            if not isinstance(text, str):
                raise UserError(f"{source.path}: row {row}: column {field!r} is {type(text).__name__}, not text")
            if text:
                yield Document(f"{source.key}:{row}", text)


def iter_documents(cfg: DataConfig) -> Iterator[Document]:
    for source in source_files(cfg):
        if cfg.source == "stdlib-code":
            # A handful of stdlib files are deliberately not UTF-8 (encoding tests): skip them.
            try:
                text = source.path.read_bytes().decode("utf-8")
            except UnicodeDecodeError:
                continue
            if text:
                yield Document(source.key, text)
        else:
            yield from read_documents(source, cfg.text_field)


def training_texts(cfg: DataConfig) -> Iterator[str]:
    """Train-split texts in corpus order: what a BPE tokenizer is fitted on (held-out text never is)."""
    if cfg.source == "synthetic-math":
        from scaling.data.arithmetic import corpus_documents

        window = 0
        while True:
            docs = corpus_documents(cfg.math, seed=0, window=window)
            yield "\n".join(next(docs) for _ in range(64))
            window += 1
    for doc in iter_documents(cfg):
        if not is_eval_document(doc.split_key, cfg.eval_fraction):
            yield doc.text
