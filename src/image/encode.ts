/**
 * Decode, orient, resize and encode one image with sharp.
 *
 * The header is read first (no pixels decoded), so a decompression bomb is refused by its
 * declared size before any memory is spent on it, and size filters run on the real size.
 * Then one libvips pipeline does the rest: EXIF orientation applied, shrink-on-load for
 * JPEG (libvips picks it when the target is much smaller), Lanczos3 to the exact target,
 * alpha flattened onto white (unless kept), 8-bit sRGB (embedded ICC profiles, CMYK, grey
 * and 16-bit are converted), metadata stripped, first frame of an animation.
 */
import sharp, { type Metadata, type Sharp } from 'sharp';
import type { ImageOptions } from './options.js';
import type { FailureReason, StoredFormat } from '../types.js';
import { errorMessage } from '../errors.js';
import { planSize, sizeFilterProblem, type Size } from './size-rule.js';

// libvips' operation cache keeps recent images alive; each input here is seen once.
sharp.cache(false);
// One libvips thread per image: the parallelism comes from --image-concurrency images in
// flight (one per core by default), which keeps every core busy through the serial parts
// of decoding and encoding that extra threads on one image cannot share. Measured: two
// images with one thread each are ~1.7x faster to JPEG than one image with two threads.
sharp.concurrency(1);

export type EncodeResult =
  | {
      readonly ok: true;
      readonly image: Buffer;
      readonly format: StoredFormat;
      readonly width: number;
      readonly height: number;
      readonly originalWidth: number;
      readonly originalHeight: number;
    }
  | { readonly ok: false; readonly reason: FailureReason; readonly detail: string };

const fail = (reason: FailureReason, detail: string): EncodeResult => ({ ok: false, reason, detail });

/**
 * @param originalSize when the CDN sent a scaled copy, the original's size: the target is
 * computed from it, so the output has the size the original would have given.
 */
export async function encodeImage(input: Buffer, options: ImageOptions, originalSize?: Size): Promise<EncodeResult> {
  // failOn 'warning': a truncated or corrupt JPEG decodes with grey bands under libvips'
  // default; for training data that is a broken sample, not a usable one.
  const decoderOptions = { failOn: 'warning', limitInputPixels: options.maxPixels } as const;
  let metadata: Metadata;
  try {
    // The header only (no pixels): the pixel limit is checked below, with a clear reason.
    metadata = await sharp(input, { ...decoderOptions, limitInputPixels: false }).metadata();
  } catch (error) {
    return fail('decode_error', `cannot read image header: ${errorMessage(error)}`);
  }
  const { width, height } = metadata.autoOrient;
  if (!width || !height) return fail('decode_error', 'image header has no size');
  if (width * height > options.maxPixels) {
    return fail('too_many_pixels', `${width}x${height} is more than --max-pixels ${options.maxPixels}`);
  }

  const fetched = { width, height };
  const original = originalSize && sameShape(originalSize, fetched) ? originalSize : fetched;
  const tooSmall = sizeFilterProblem(original, options);
  if (tooSmall) return fail('filtered_size', tooSmall);
  const plan = planSize(original, options);
  if (plan.kind === 'small' && options.skipSmall) {
    return fail('filtered_size', `${original.width}x${original.height} is smaller than the target (--no-upscale --skip-small)`);
  }
  const sizes = { originalWidth: original.width, originalHeight: original.height };

  try {
    if (options.format === 'original') {
      // Kept byte for byte; a full decode proves the bytes are a whole image first.
      await sharp(input, decoderOptions).stats();
      return { ok: true, image: input, format: storedFormat(metadata), width, height, ...sizes };
    }
    let pipeline = sharp(input, decoderOptions).autoOrient();
    if (plan.kind === 'scale') pipeline = pipeline.resize(plan.width, plan.height, { fit: 'fill', kernel: 'lanczos3' });
    if (plan.kind === 'crop') pipeline = pipeline.resize(plan.width, plan.height, { fit: 'cover', position: 'centre', kernel: 'lanczos3' });
    // 'keep' and 'small' (no upscaling): the image keeps the size it was fetched at.
    if (!options.keepAlpha) pipeline = pipeline.flatten({ background: '#ffffff' });
    pipeline = pipeline.toColourspace('srgb');
    const { data, info } = await withFormat(pipeline, options).toBuffer({ resolveWithObject: true });
    return { ok: true, image: data, format: options.format, width: info.width, height: info.height, ...sizes };
  } catch (error) {
    return fail('decode_error', errorMessage(error));
  }
}

/** Whether a scaled copy has the original's aspect ratio (within CDN rounding). */
function sameShape(a: Size, b: Size): boolean {
  return Math.abs(a.width / a.height - b.width / b.height) <= 0.02 * (a.width / a.height);
}

function withFormat(pipeline: Sharp, options: ImageOptions): Sharp {
  switch (options.format) {
    case 'png':
      return pipeline.png({ compressionLevel: options.pngCompressionLevel, adaptiveFiltering: options.pngFilter === 'adaptive' });
    case 'jpeg':
      // Standard Huffman tables, as PIL and OpenCV write by default: optimised tables save
      // about 2% of the size and cost 5-15% of the time per image (measured by npm run bench).
      return pipeline.jpeg({ quality: options.quality, chromaSubsampling: options.chromaSubsampling, optimiseCoding: false });
    case 'webp':
      return pipeline.webp({ quality: options.quality, lossless: options.lossless });
    case 'original':
      throw new Error('unreachable: originals are not encoded');
  }
}

function storedFormat(metadata: Metadata): StoredFormat {
  switch (metadata.format) {
    case 'jpeg':
    case 'png':
    case 'webp':
    case 'gif':
    case 'tiff':
      return metadata.format;
    case 'heif':
      return metadata.compression === 'av1' ? 'avif' : 'heif';
    default:
      return 'png'; // unreachable: the fetch stage lets only these formats through
  }
}

/** The file extension for a format: what trainers and image viewers expect. */
export function extensionOf(format: StoredFormat): string {
  switch (format) {
    case 'jpeg':
      return 'jpg';
    case 'tiff':
      return 'tif';
    default:
      return format;
  }
}
