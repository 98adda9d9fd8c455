/**
 * How images are sized, filtered and encoded. `resolveImageOptions` fills the defaults
 * (some follow from others: the format from `--resize`, the quality from the format) and
 * checks a caller's partial once.
 */
import { availableParallelism } from 'node:os';
import { UsageError } from '../errors.js';
import type { ImageFormat } from '../types.js';
import { aboveZero, atLeastZero, defined, integer, oneOf } from '../util/validate.js';
import { RESIZE_MODES, type SizeFilters, type SizeRule } from './size-rule.js';

export type PngFilter = 'adaptive' | 'none';
export const PNG_FILTERS: readonly PngFilter[] = ['adaptive', 'none'];
export type ChromaSubsampling = '4:2:0' | '4:4:4';
export const CHROMA_SUBSAMPLINGS: readonly ChromaSubsampling[] = ['4:2:0', '4:4:4'];
export const IMAGE_FORMATS: readonly ImageFormat[] = ['png', 'jpeg', 'webp'];

export const DEFAULT_QUALITY: Readonly<Record<ImageFormat, number>> = { png: 100, jpeg: 95, webp: 90 };

export interface ImageOptions extends SizeRule, SizeFilters {
  /** Don't store images smaller than the target (with upscaling off) at all. */
  readonly skipSmall: boolean;
  /** `original` (with `--resize none`) stores the fetched bytes untouched. */
  readonly format: ImageFormat | 'original';
  /** Quality for jpeg and webp. */
  readonly quality: number;
  /** Lossless webp. */
  readonly lossless: boolean;
  /** Keep transparency (png and webp) instead of flattening onto white. */
  readonly keepAlpha: boolean;
  /** zlib level for png, 0 (fastest, largest) to 9 (slowest, smallest). */
  readonly pngCompressionLevel: number;
  /**
   * PNG row filters: `adaptive` picks the best filter per row (as PIL and libpng's own
   * default do: files about 35% smaller), `none` skips the search (faster, larger).
   */
  readonly pngFilter: PngFilter;
  /** JPEG chroma subsampling: `4:2:0` as PIL, OpenCV and img2dataset write, or full-resolution `4:4:4`. */
  readonly chromaSubsampling: ChromaSubsampling;
  /** Refuse images whose header declares more pixels than this, before decoding. */
  readonly maxPixels: number;
  /** Images decoded and encoded at once. */
  readonly concurrency: number;
}

/** The defaults that do not follow from other settings (format, quality and concurrency do). */
export const IMAGE_DEFAULTS = Object.freeze({
  resize: 'shortest',
  resolution: 1024,
  megapixels: 1,
  round: 64,
  upscale: true,
  skipSmall: false,
  minMegapixels: 0,
  minSide: 0,
  maxAspect: 0,
  lossless: false,
  keepAlpha: false,
  pngCompressionLevel: 6,
  pngFilter: 'adaptive',
  chromaSubsampling: '4:2:0',
  maxPixels: 100_000_000,
} as const satisfies Partial<ImageOptions>);

export function resolveImageOptions(given: Partial<ImageOptions> = {}): ImageOptions {
  const value = { ...IMAGE_DEFAULTS, ...defined(given) };
  oneOf('--resize', value.resize, RESIZE_MODES);
  // With --resize none and no --format, the fetched bytes are kept as they are.
  const format = value.format ?? (value.resize === 'none' ? 'original' : 'png');
  oneOf('--format', format, [...IMAGE_FORMATS, 'original']);
  if (format === 'original' && value.resize !== 'none') throw new UsageError('--format original keeps the fetched bytes: it needs --resize none');
  oneOf('--png-filter', value.pngFilter, PNG_FILTERS);
  oneOf('--chroma-subsampling', value.chromaSubsampling, CHROMA_SUBSAMPLINGS);
  if (value.keepAlpha && format === 'jpeg') throw new UsageError('--keep-alpha needs --format png or webp: jpeg has no alpha');
  return {
    resize: value.resize,
    resolution: integer('--resolution', value.resolution, 8, 65_536),
    megapixels: aboveZero('--megapixels', value.megapixels),
    round: integer('--round', value.round, 1, 4096),
    upscale: value.upscale,
    skipSmall: value.skipSmall,
    minMegapixels: atLeastZero('--min-megapixels', value.minMegapixels),
    minSide: integer('--min-side', value.minSide, 0, 1_000_000),
    maxAspect: atLeastZero('--max-aspect', value.maxAspect),
    format,
    quality: integer('--quality', value.quality ?? (format === 'original' ? 100 : DEFAULT_QUALITY[format]), 1, 100),
    lossless: value.lossless,
    keepAlpha: value.keepAlpha,
    pngCompressionLevel: integer('--png-compression', value.pngCompressionLevel, 0, 9),
    pngFilter: value.pngFilter,
    chromaSubsampling: value.chromaSubsampling,
    maxPixels: integer('--max-pixels', value.maxPixels, 1, Number.MAX_SAFE_INTEGER),
    concurrency: integer('--image-concurrency', value.concurrency ?? availableParallelism(), 1, 256),
  };
}
