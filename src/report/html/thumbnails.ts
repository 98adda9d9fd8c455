/**
 * A stored image as a small thumbnail inside the page itself, a `data:` URI: the report
 * is one file that opens from disk, and its Content-Security-Policy allows images from
 * `data:` only, so a thumbnail can never be a request.
 *
 * WebP at quality 60: a 160-px photo is about 3 KiB (the bundled photos average 2.9), so
 * a contact sheet of two hundred adds about 0.6 MiB to the page, and every browser that
 * opens the page decodes it.
 * EXIF orientation is applied first, so the thumbnail stands the way the image does.
 */
import sharp from 'sharp';
import { errorMessage } from '../../errors.js';

export interface ThumbnailImage {
  /** `data:image/webp;base64,...` */
  readonly src: string;
  readonly width: number;
  readonly height: number;
}

const QUALITY = 60;

/**
 * @param input the image's bytes, or the path of its file
 * @param size the longest side of the thumbnail at most (a smaller image is not enlarged)
 * @throws when the image cannot be decoded, naming the file (or the buffer's size)
 */
export async function thumbnailDataUri(input: Buffer | string, size = 160): Promise<ThumbnailImage> {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`thumbnail size must be a whole number of pixels, got ${size}`);
  try {
    const { data, info } = await sharp(input)
      .autoOrient()
      .resize(size, size, { fit: 'inside', withoutEnlargement: true })
      .webp({ quality: QUALITY })
      .toBuffer({ resolveWithObject: true });
    return { src: `data:image/webp;base64,${data.toString('base64')}`, width: info.width, height: info.height };
  } catch (error) {
    const what = typeof input === 'string' ? input : `an image of ${input.length} bytes`;
    throw new Error(`cannot make a thumbnail of ${what}: ${errorMessage(error)}`);
  }
}
