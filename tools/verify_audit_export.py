#!/usr/bin/env python3
"""Verify a fundpool audit log export on its own: the standard library and `cryptography`.

    python tools/verify_audit_export.py EXPORT.jsonl --public-key KEY.pem
    python tools/verify_audit_export.py EXPORT.jsonl --public-key 3b6a27bc…   (raw key, hex)

Checks, line by line (docs/audit.md, "Export"): the header's key is the one given; every
entry's leaf is SHA-256(0x00 || canonical JSON of its record) and its inclusion proof leads to
the export's checkpoint root (RFC 9162 §2.1.3.2); seqs follow one another from the header's
first; every checkpoint is signed by the key, and each is joined to the one before by its
consistency proof (RFC 9162 §2.1.4.2); the trailer counts the entries and hashes every line
before it, so an export cut short is caught. Prints a verdict naming the first failing line;
exit status 0 when everything holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FORMAT = "fundpool-audit-export v1"
HEADER = "fundpool-audit-checkpoint v1"


class Failed(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def canonical(record: Any) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), sort_keys=True,
                      allow_nan=False).encode("utf-8")


def inclusion_root(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes:
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is outside a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ValueError("the inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("the inclusion proof is too short")
    return r


def consistent(first: int, second: int, first_root: bytes, second_root: bytes,
               proof: list[bytes]) -> bool:
    if not 0 < first <= second:
        raise ValueError(f"sizes out of order: {first}, {second}")
    if first == second:
        return not proof and first_root == second_root
    if not proof:
        raise ValueError("the consistency proof is empty")
    path = ([first_root] if first & (first - 1) == 0 else []) + proof
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ValueError("the consistency proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("the consistency proof is too short")
    return fr == first_root and sr == second_root


def load_key(text: str) -> Ed25519PublicKey:
    path = Path(text)
    raw = path.read_bytes() if path.is_file() else text.encode()
    if raw.strip().startswith(b"-----BEGIN"):
        if b"PRIVATE" in raw:
            private = serialization.load_pem_private_key(raw, password=None)
            public: Any = private.public_key()
        else:
            public = serialization.load_pem_public_key(raw)
        if not isinstance(public, Ed25519PublicKey):
            raise ValueError("not an Ed25519 key")
        return public
    value = raw.strip().decode()
    for decode in (bytes.fromhex, base64.b64decode):
        try:
            key = decode(value)
        except (ValueError, binascii.Error):
            continue
        if len(key) == 32:
            return Ed25519PublicKey.from_public_bytes(key)
    raise ValueError("the public key is not PEM, nor 32 bytes in hex or base64")


def raw_of(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def hexes(values: Any, line: int, what: str) -> list[bytes]:
    if not isinstance(values, list):
        raise Failed(line, f"{what} is not a list")
    out = []
    for value in values:
        try:
            item = bytes.fromhex(value)
        except (TypeError, ValueError):
            raise Failed(line, f"{what} holds something that is not hex") from None
        if len(item) != 32:
            raise Failed(line, f"{what} holds a hash of {len(item)} bytes")
        out.append(item)
    return out


def verify(path: Path, key: Ed25519PublicKey) -> dict[str, Any]:
    digest = hashlib.sha256()
    key_id = hashlib.sha256(raw_of(key)).hexdigest()[:16]
    header: dict[str, Any] | None = None
    entries: list[tuple[int, int, bytes, list[bytes]]] = []  # (line, seq, leaf, proof)
    checkpoints: list[tuple[int, dict[str, Any]]] = []
    trailer = None
    number = 0
    with path.open("rb") as source:
        for number, raw in enumerate(source, start=1):
            if trailer is not None:
                raise Failed(number, "a line after the trailer")
            if not raw.endswith(b"\n"):
                raise Failed(number, "the line is cut short (no line end): the export is "
                             "incomplete")
            try:
                doc = json.loads(raw)
            except ValueError:
                raise Failed(number, "the line is not JSON") from None
            kind = doc.get("type") if isinstance(doc, dict) else None
            if number == 1:
                if kind != "header" or doc.get("format") != FORMAT:
                    raise Failed(1, f"the first line is not a {FORMAT!r} header")
                if doc.get("key_id") != key_id or doc.get("public_key_hex") != raw_of(key).hex():
                    raise Failed(1, f"the export names key {doc.get('key_id')}, not the given "
                                 f"key {key_id}")
                header = doc
            elif kind == "entry":
                if checkpoints:
                    raise Failed(number, "an entry after the checkpoints")
                expected = header["first_seq"] + len(entries)  # type: ignore[index]
                if doc.get("seq") != expected:
                    raise Failed(number, f"seq {doc.get('seq')} where seq {expected} was due "
                                 "(entries missing, added or reordered)")
                leaf = hashlib.sha256(b"\x00" + canonical(doc.get("record"))).digest()
                if doc.get("leaf_hash") != leaf.hex():
                    raise Failed(number, f"the record of seq {expected} does not hash to its "
                                 "leaf: it was changed")
                if doc.get("tree_size") != header["checkpoint_size"]:  # type: ignore[index]
                    raise Failed(number, "the proof is not against the export's checkpoint")
                entries.append((number, expected, leaf, hexes(doc.get("proof"), number,
                                                              "the proof")))
            elif kind == "checkpoint":
                checkpoints.append((number, doc))
            elif kind == "trailer":
                trailer = doc
                if doc.get("lines") != number - 1 or doc.get("sha256") != digest.hexdigest():
                    raise Failed(number, "the trailer's hash is not that of the lines before "
                                 "it: lines were changed, removed or added")
                if doc.get("count") != len(entries):
                    raise Failed(number, f"the trailer counts {doc.get('count')} entries, the "
                                 f"export holds {len(entries)}")
                continue
            else:
                raise Failed(number, f"unknown line type {kind!r}")
            digest.update(raw)
    if header is None:
        raise Failed(max(number, 1), "the export is empty")
    if trailer is None:
        raise Failed(number, "no trailer: the export is cut short")
    if len(entries) != header["end_seq"] - header["first_seq"]:
        raise Failed(number, "the header's range and the entries disagree")
    roots: dict[int, bytes] = {}
    previous: tuple[int, bytes] | None = None
    for line, doc in checkpoints:
        try:
            size, at_us, kid = int(doc["size"]), int(doc["at_us"]), str(doc["key_id"])
            root, signature = bytes.fromhex(doc["root"]), bytes.fromhex(doc["signature"])
        except (KeyError, TypeError, ValueError):
            raise Failed(line, "the checkpoint is malformed") from None
        if len(root) != 32 or kid != key_id:
            raise Failed(line, "the checkpoint's root or key id is not right")
        text = f"{HEADER}\n{size}\n{root.hex()}\n{at_us}\n{kid}\n".encode()
        try:
            key.verify(signature, text)
        except InvalidSignature:
            raise Failed(line, f"the checkpoint of size {size} is not signed by the key") from None
        if size in roots and roots[size] != root:
            raise Failed(line, f"two roots for size {size}: a fork")
        if previous is not None and previous[0] > 0 and previous[0] != size:
            proof = hexes(doc.get("consistency"), line, "the consistency proof")
            try:
                joined = (doc.get("consistency_from") == previous[0]
                          and consistent(previous[0], size, previous[1], root, proof))
            except ValueError as error:
                raise Failed(line, str(error)) from None
            if not joined:
                raise Failed(line, f"the checkpoint of size {size} is not consistent with "
                             f"the one of size {previous[0]}")
        roots[size] = root
        previous = (size, root)
    tree = header["checkpoint_size"]
    if tree not in roots:
        raise Failed(number, f"no signed checkpoint of size {tree} in the export")
    for line, seq, leaf, proof in entries:
        try:
            if inclusion_root(seq, tree, leaf, proof) != roots[tree]:
                raise Failed(line, f"the inclusion proof of seq {seq} does not lead to the "
                             "signed root")
        except ValueError as error:
            raise Failed(line, f"seq {seq}: {error}") from None
    return {"entries": len(entries), "first_seq": header["first_seq"],
            "end_seq": header["end_seq"], "checkpoints": len(checkpoints), "tree_size": tree,
            "root": roots[tree].hex(), "key_id": key_id}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export", type=Path)
    parser.add_argument("--public-key", required=True,
                        help="PEM file, or the raw 32-byte key in hex or base64")
    args = parser.parse_args(argv)
    try:
        key = load_key(args.public_key)
    except (OSError, ValueError) as error:
        print(f"FAILED: the public key cannot be read: {error}")
        return 1
    try:
        found = verify(args.export, key)
    except Failed as failure:
        print(f"FAILED at line {failure.line}: {failure.reason}")
        return 1
    except OSError as error:
        print(f"FAILED: {error}")
        return 1
    print(f"OK: {found['entries']} entries (seq {found['first_seq']} to "
          f"{found['end_seq'] - 1}), {found['checkpoints']} signed checkpoint(s), every proof "
          f"holds against the root {found['root']} of size {found['tree_size']} "
          f"(key {found['key_id']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
