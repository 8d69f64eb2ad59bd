#!/usr/bin/env python3
"""Writes an OCI image layout with LAYERS layers, each a gzip'd tar of one file of SIZE random
bytes (incompressible: the compressed layer is about SIZE bytes too), under the name `img`.
Prints the manifest digest and the total size of the layers in bytes.

Usage: mkimage.py DIR LAYERS SIZE
"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile


def blob(root, data):
    digest = hashlib.sha256(data).hexdigest()
    path = os.path.join(root, "blobs", "sha256")
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, digest), "wb") as f:
        f.write(data)
    return "sha256:" + digest


def main():
    root, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    os.makedirs(root, exist_ok=True)
    layers, diff_ids = [], []
    for i in range(count):
        tar = io.BytesIO()
        with tarfile.open(fileobj=tar, mode="w", format=tarfile.PAX_FORMAT) as t:
            info = tarfile.TarInfo(f"data/layer{i}.bin")
            info.size, info.mtime, info.mode = size, 0, 0o644
            t.addfile(info, io.BytesIO(os.urandom(size)))
        raw = tar.getvalue()
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        gz = gzip.compress(raw, compresslevel=1, mtime=0)
        layers.append({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": blob(root, gz),
            "size": len(gz),
        })
    config = json.dumps({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": blob(root, config),
            "size": len(config),
        },
        "layers": layers,
    }).encode()
    digest = blob(root, manifest)
    with open(os.path.join(root, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(root, "index.json"), "w") as f:
        json.dump({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest,
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": "img"},
            }],
        }, f)
    print(digest, sum(l["size"] for l in layers))


if __name__ == "__main__":
    main()
