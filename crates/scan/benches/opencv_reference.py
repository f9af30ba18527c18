#!/usr/bin/env python3
"""Reference OpenCV document-scan pipeline for the bianmin-scan benchmark.

Same steps as the Rust pipeline: decode (grayscale, EXIF-oriented) -> page detection (Canny +
findContours + approxPolyDP on a ~500 px copy) -> warpPerspective to A4 at 200 DPI -> background
division (dilate + blur on a 1/8 copy, upscale, divide) -> imencode JPEG q75.

Usage: opencv_reference.py DIR REPS THREADS [OUT_DIR]
Prints one JSON object: {"photos": {name: {"decode": ms, ..., "total": ms, "bytes": n,
"detected": bool, "corners": [[x, y] x4]}}} (corners TL, TR, BR, BL in the EXIF-oriented photo).
with per-stage medians over REPS runs. THREADS=1 pins OpenCV to one thread, 0 lets it use all.
"""
import json
import os
import statistics
import sys
import time

import cv2
import numpy as np

A4 = (1654, 2339)


def order(pts):
    pts = np.asarray(pts, dtype=np.float32).reshape(4, 2)
    s = pts.sum(axis=1)
    d = np.diff(pts, axis=1).ravel()
    return np.array([pts[np.argmin(s)], pts[np.argmin(d)], pts[np.argmax(s)], pts[np.argmax(d)]], dtype=np.float32)


def detect(gray):
    h, w = gray.shape
    scale = 500.0 / max(h, w)
    small = cv2.resize(gray, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (5, 5), 0)
    edges = cv2.Canny(small, 50, 150)
    edges = cv2.dilate(edges, np.ones((3, 3), np.uint8))
    contours, _ = cv2.findContours(edges, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    for c in sorted(contours, key=cv2.contourArea, reverse=True)[:5]:
        peri = cv2.arcLength(c, True)
        approx = cv2.approxPolyDP(c, 0.02 * peri, True)
        if len(approx) == 4 and cv2.contourArea(approx) > 0.1 * small.shape[0] * small.shape[1]:
            return order(approx.reshape(4, 2) / scale), True
    return np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float32), False


def warp(gray, q):
    top = np.linalg.norm(q[1] - q[0]) + np.linalg.norm(q[2] - q[3])
    side = np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])
    w, h = (A4[1], A4[0]) if top > side else A4
    dst = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float32)
    m = cv2.getPerspectiveTransform(q, dst)
    return cv2.warpPerspective(gray, m, (w, h), flags=cv2.INTER_LINEAR)


def normalise(img):
    h, w = img.shape
    small = cv2.resize(img, (w // 8, h // 8), interpolation=cv2.INTER_AREA)
    bg = cv2.dilate(small, np.ones((5, 5), np.uint8))
    bg = cv2.GaussianBlur(bg, (0, 0), 2)
    bg = cv2.resize(bg, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.divide(img, bg, scale=255)


def run(buf):
    t = {}
    t0 = time.perf_counter()
    gray = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    t1 = time.perf_counter()
    q, found = detect(gray)
    t2 = time.perf_counter()
    page = warp(gray, q)
    t3 = time.perf_counter()
    page = normalise(page)
    t4 = time.perf_counter()
    ok, enc = cv2.imencode(".jpg", page, [cv2.IMWRITE_JPEG_QUALITY, 75])
    t5 = time.perf_counter()
    t = {"decode": t1 - t0, "detect": t2 - t1, "warp": t3 - t2, "normalise": t4 - t3, "encode": t5 - t4, "total": t5 - t0}
    return {k: v * 1000.0 for k, v in t.items()}, enc.tobytes(), found, q


def main():
    d, reps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    out_dir = sys.argv[4] if len(sys.argv) > 4 else None
    cv2.setNumThreads(threads)
    res = {}
    for name in sorted(os.listdir(d)):
        if not name.endswith(".jpg"):
            continue
        buf = np.fromfile(os.path.join(d, name), dtype=np.uint8)
        runs = []
        for _ in range(reps):
            t, enc, found, q = run(buf)
            runs.append(t)
        row = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        row["bytes"] = len(enc)
        row["detected"] = bool(found)
        row["corners"] = [[float(x), float(y)] for x, y in q]
        res[name[:-4]] = row
        if out_dir:
            with open(os.path.join(out_dir, name[:-4] + ".opencv.jpg"), "wb") as f:
                f.write(enc)
    print(json.dumps({"opencv": cv2.__version__, "threads": cv2.getNumThreads(), "photos": res}))


if __name__ == "__main__":
    main()
