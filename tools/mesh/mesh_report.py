#!/usr/bin/env python3
"""Checks what `visage detect --meshes DIR --json FILE` wrote: every OBJ has the template's
468 vertices and 898 triangles, and reports how many projected vertices fall inside their
detection's box (and inside the box grown by 10 % per side).

    python3 tools/mesh/mesh_report.py faces.json meshes/ [--threshold 0.5]

The OBJ files are `<index>_<stem>_face<k>.obj`, k counting the image's detections that scored
at least the threshold, best first (the JSON's order). Standard library only.
"""
import argparse
import json
import os
import sys


def read_obj(path):
    vertices, faces = [], 0
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "v":
                vertices.append([float(v) for v in parts[1:4]])
            elif parts[0] == "f":
                faces += 1
    return vertices, faces


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("json")
    parser.add_argument("meshes")
    parser.add_argument("--threshold", type=float, default=0.5)
    args = parser.parse_args()
    records = json.load(open(args.json))
    meshes, inside, grown, total = 0, 0, 0, 0
    for index, record in enumerate(records):
        stem = os.path.splitext(os.path.basename(record["image"]))[0]
        kept = [d for d in record["detections"] if d["score"] >= args.threshold]
        for k, d in enumerate(kept):
            path = os.path.join(args.meshes, f"{index:05}_{stem}_face{k}.obj")
            vertices, faces = read_obj(path)
            if len(vertices) != 468 or faces != 898:
                sys.exit(f"{path}: {len(vertices)} vertices, {faces} triangles")
            x1, y1, x2, y2 = d["box"]
            mx, my = 0.1 * (x2 - x1), 0.1 * (y2 - y1)
            for x, y, _ in vertices:
                total += 1
                inside += x1 <= x <= x2 and y1 <= y <= y2
                grown += x1 - mx <= x <= x2 + mx and y1 - my <= y <= y2 + my
            meshes += 1
    print(f"{meshes} meshes of {len(records)} images, each 468 vertices / 898 triangles")
    if total:
        print(f"vertices inside their detection box: {100 * inside / total:.1f} %")
        print(f"inside the box grown by 10 % per side: {100 * grown / total:.1f} %")


if __name__ == "__main__":
    main()
