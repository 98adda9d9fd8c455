/**
 * The output size rule. The default is the photo-concept-bucket reference downloader's
 * `resize_for_condition_image`: scale so the shorter side is `resolution`, then round
 * each side to the nearest multiple of 64, with Python's `round` (half to even), so
 * our sizes match the reference's pixel for pixel: 2560x1600 becomes 1664x1024.
 */
export interface Size {
  readonly width: number;
  readonly height: number;
}

export function shortestSideSize(source: Size, resolution: number, multiple: number): Size {
  const k = resolution / Math.min(source.width, source.height);
  return {
    width: roundToMultiple(source.width * k, multiple),
    height: roundToMultiple(source.height * k, multiple),
  };
}

/** Nearest multiple, never below one multiple (a side of 0 is not an image). */
function roundToMultiple(value: number, multiple: number): number {
  return Math.max(1, roundHalfEven(value / multiple)) * multiple;
}

/** Python 3's `round`: halves go to the even neighbour (2.5 -> 2, 3.5 -> 4). */
export function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const fraction = value - floor;
  if (fraction > 0.5) return floor + 1;
  if (fraction < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}
