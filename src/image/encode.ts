/**
 * Decode, orient, resize and encode one image with sharp.
 *
 * The header is read first (no pixels decoded) so that a decompression bomb is refused
 * by its declared size before any memory is spent on it. Then one libvips pipeline does
 * the rest: EXIF orientation applied, shrink-on-load for JPEG (libvips picks it when the
 * target is much smaller), Lanczos3 to the exact target, alpha flattened onto white,
 * 8-bit sRGB (embedded ICC profiles and CMYK are converted), metadata stripped.
 */
import sharp, { type Metadata, type Sharp } from 'sharp';
import type { ImageOptions } from '../options.js';
import type { FailureReason, ImageFormat } from '../types.js';
import { errorMessage } from '../errors.js';
import { shortestSideSize, type Size } from './size-rule.js';

// libvips' operation cache keeps recent images alive; each input here is seen once.
sharp.cache(false);

export type EncodeResult =
  | {
      readonly ok: true;
      readonly image: Buffer;
      readonly format: ImageFormat;
      readonly width: number;
      readonly height: number;
      readonly originalWidth: number;
      readonly originalHeight: number;
    }
  | { readonly ok: false; readonly reason: FailureReason; readonly detail: string };

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
    metadata = await sharp(input, decoderOptions).metadata();
  } catch (error) {
    return { ok: false, reason: 'decode_error', detail: `cannot read image header: ${errorMessage(error)}` };
  }
  const { width, height } = metadata.autoOrient;
  if (!width || !height) {
    return { ok: false, reason: 'decode_error', detail: 'image header has no size' };
  }
  if (width * height > options.maxPixels) {
    return { ok: false, reason: 'too_many_pixels', detail: `${width}x${height} is more than --max-pixels ${options.maxPixels}` };
  }

  const fetched = { width, height };
  const original = originalSize && sameShape(originalSize, fetched) ? originalSize : fetched;
  const { width: originalWidth, height: originalHeight } = original;
  const target = shortestSideSize(original, options.resolution, options.round);
  try {
    const pipeline = sharp(input, decoderOptions)
      .autoOrient()
      .resize(target.width, target.height, { fit: 'fill', kernel: 'lanczos3' })
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb');
    const { data, info } = await withFormat(pipeline, options).toBuffer({ resolveWithObject: true });
    return {
      ok: true,
      image: data,
      format: options.format,
      width: info.width,
      height: info.height,
      originalWidth,
      originalHeight,
    };
  } catch (error) {
    return { ok: false, reason: 'decode_error', detail: errorMessage(error) };
  }
}

/** Whether a scaled copy has the original's aspect ratio (within CDN rounding). */
function sameShape(a: Size, b: Size): boolean {
  return Math.abs(a.width / a.height - b.width / b.height) <= 0.02 * (a.width / a.height);
}

function withFormat(pipeline: Sharp, options: ImageOptions): Sharp {
  switch (options.format) {
    case 'png':
      return pipeline.png({ compressionLevel: options.pngCompressionLevel });
    case 'jpeg':
      // 4:4:4: chroma subsampling would blur colour edges in the training data.
      return pipeline.jpeg({ quality: options.quality, chromaSubsampling: '4:4:4' });
    case 'webp':
      return pipeline.webp({ quality: options.quality });
  }
}

/** The file extension for a format: what trainers and image viewers expect. */
export function extensionOf(format: ImageFormat): string {
  return format === 'jpeg' ? 'jpg' : format;
}
