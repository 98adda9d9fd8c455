/**
 * How SimpleTuner buckets an image by aspect ratio, from its stored width and height and the
 * dataloader config's resolution settings, so the report can show the buckets a training
 * run will see (and those too small for a batch) before anyone starts one.
 *
 * Read from SimpleTuner at bghira/SimpleTuner bc8e6ab, the commit docs/simpletuner.md cites,
 * with `crop: false` (what our config writes):
 * - `TrainingSample.calculate_target_size` (simpletuner/helpers/image_manipulation/
 *   training_sample.py:587-650): `ar = round(W / H, 2)`; the target size from
 *   `calculate_new_size_by_pixel_edge` (`pixel`) or `calculate_new_size_by_pixel_area`
 *   (`area`; `pixel_area` is first turned into `area` with resolution = edge² / 1e6,
 *   factory.py:2962-2983); the bucket is `round(target_W / target_H, 2)`, and a bucket of
 *   1.0 takes a square target.
 * - `MultiaspectImage` (simpletuner/helpers/multiaspect/image.py:93-276): sides snap to
 *   `round(value / align) * align` (at least `align`), align = `--aspect_bucket_alignment`,
 *   64 by default (16 for some models, e.g. flux2).
 * - The bucket's key is Python's `str()` of that float (metadata/backends/parquet.py:635-638).
 * Python's `round` rounds the exact binary value half to even (`round(1.625, 2)` is 1.62,
 * where JavaScript's `toFixed` gives 1.63), so the arithmetic here does the same.
 */

export type ResolutionType = 'pixel' | 'area' | 'pixel_area';

export interface BucketSettings {
  /** The config's `resolution`: an edge in pixels (`pixel`, `pixel_area`) or megapixels (`area`). */
  readonly resolution: number;
  readonly resolutionType: ResolutionType;
  /** SimpleTuner's `--aspect_bucket_alignment`. */
  readonly alignment: number;
}

export const DEFAULT_ALIGNMENT = 64;

/** The bucket an image of this stored size falls in: its key as SimpleTuner writes it, and the target size. */
export function bucketOf(width: number, height: number, settings: BucketSettings): { key: string; aspect: number; width: number; height: number } {
  const align = (value: number) => Math.max(pythonRound(value / settings.alignment) * settings.alignment, settings.alignment);
  const ar = pythonRound(width / height, 2);
  let target: [number, number];
  if (settings.resolutionType === 'pixel') {
    const edge = settings.resolution;
    // calculate_new_size_by_pixel_edge: the shorter side is the resolution (portrait: width).
    target = width < height ? [align(edge), align(Math.trunc(edge / ar))] : [align(Math.trunc(edge * ar)), align(edge)];
  } else {
    const megapixels = settings.resolutionType === 'area' ? settings.resolution : settings.resolution ** 2 / 1e6;
    const edge = align(Math.trunc(Math.sqrt(megapixels * 1e6)));
    target = ar === 1 && width === height ? [edge, edge] : [align(edge * Math.sqrt(ar)), align(edge / Math.sqrt(ar))];
  }
  const aspect = pythonRound(target[0] / target[1], 2);
  if (aspect === 1) {
    // A square bucket takes the square of the pixel resolution (`_set_resolution`,
    // training_sample.py:218-252: for `area`, a few common areas have a fixed edge).
    const side = settings.resolutionType === 'pixel' ? settings.resolution : align(Math.sqrt(squareArea(settings)));
    target = [side, side];
  }
  return { key: pythonFloat(aspect), aspect, width: target[0], height: target[1] };
}

/** Areas `_set_resolution` gives a fixed square edge, within 0.05 megapixels. */
const KNOWN_AREAS: ReadonlyArray<readonly [megapixels: number, edge: number]> = [[0.25, 512], [0.5, 768], [1, 1024], [2, 1536], [4, 2048]];

function squareArea(settings: BucketSettings): number {
  const megapixels = settings.resolutionType === 'area' ? settings.resolution : settings.resolution ** 2 / 1e6;
  const known = KNOWN_AREAS.find(([area]) => Math.abs(area - megapixels) <= 0.05);
  return known ? known[1] ** 2 : megapixels * 1e6;
}

/**
 * Python 3's `round(value, digits)`: the exact binary value of the double, rounded half to
 * even at `digits` decimals, then the nearest double (no error from scaling by 10^digits).
 */
export function pythonRound(value: number, digits = 0): number {
  if (!Number.isFinite(value)) return value;
  const scale = 10n ** BigInt(digits);
  const { mantissa, exponent } = exactParts(value);
  // value * scale = mantissa * scale * 2^exponent, exactly.
  let scaled: bigint;
  if (exponent >= 0) {
    scaled = mantissa * scale * (1n << BigInt(exponent));
  } else {
    const numerator = mantissa * scale;
    const denominator = 1n << BigInt(-exponent);
    const negative = numerator < 0n;
    const magnitude = negative ? -numerator : numerator;
    let quotient = magnitude / denominator;
    const twiceRemainder = (magnitude % denominator) * 2n;
    if (twiceRemainder > denominator || (twiceRemainder === denominator && quotient % 2n === 1n)) quotient += 1n;
    scaled = negative ? -quotient : quotient;
  }
  // A correctly rounded division gives the double nearest to scaled / 10^digits.
  return Number(scaled) / Number(scale);
}

/** A finite double as mantissa × 2^exponent, both exact. */
function exactParts(value: number): { mantissa: bigint; exponent: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, value);
  const bits = view.getBigUint64(0);
  const sign = bits >> 63n ? -1n : 1n;
  const biased = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  if (biased === 0) return { mantissa: sign * fraction, exponent: -1074 };
  return { mantissa: sign * (fraction | (1n << 52n)), exponent: biased - 1075 };
}

/** Python's `str()` of a float, for the short values buckets are: `1.0`, `1.5`, `0.67`. */
export function pythonFloat(value: number): string {
  return Number.isInteger(value) ? value.toFixed(1) : String(value);
}
