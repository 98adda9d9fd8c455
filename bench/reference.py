#!/usr/bin/env python3
"""The photo-concept-bucket reference downloader, as the dataset ships it in spirit:
a thread pool over requests + PIL, resize_for_condition_image to 1024, save PNG and a
caption file. Used by `npm run bench` as the baseline; reads rows as NDJSON on stdin."""
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO

import requests
from PIL import Image


def resize_for_condition_image(input_image, resolution):
    input_image = input_image.convert("RGB")
    W, H = input_image.size
    k = float(resolution) / min(H, W)
    H *= k
    W *= k
    H = int(round(H / 64.0)) * 64
    W = int(round(W / 64.0)) * 64
    img = input_image.resize((W, H), resample=Image.LANCZOS)
    return img


def download(row, output):
    response = requests.get(row["url"], timeout=60)
    image = Image.open(BytesIO(response.content))
    image = resize_for_condition_image(image, 1024)
    image.save(os.path.join(output, f"{row['id']}.png"))
    with open(os.path.join(output, f"{row['id']}.txt"), "w") as f:
        f.write(row["cogvlm_caption"] or "")


def main():
    output = sys.argv[1]
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    os.makedirs(output, exist_ok=True)
    rows = [json.loads(line) for line in sys.stdin if line.strip()]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(lambda row: download(row, output), rows))


if __name__ == "__main__":
    main()
